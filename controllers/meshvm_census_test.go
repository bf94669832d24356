package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/xds/census"
)

// publishConnected runs a replica's census publisher, as xds/controlplane
// wires it to its xDS server, told that node connected; it returns the
// publisher, which stops (deleting its Lease) when the test ends.
func publishConnected(t *testing.T, replica string, node *corev3.Node) *census.Publisher {
	t.Helper()
	p := census.NewPublisher(census.Options{
		Client: k8s, Namespace: operatorNamespace, Replica: replica,
		Count:        func() census.Counts { return census.Counts{} },
		Settle:       10 * time.Millisecond,
		FieldManager: meshv1alpha1.FieldManager, Log: logr.Discard(),
	})
	p.Connected(node)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return p
}

// TestVMStatusFromTheCensus: a MeshVM's status.proxy is written by the
// MeshVM controller from the census (the replicas' Leases), not by the xDS
// server: connected with the proxy's version and replica while a replica
// reports it, disconnected once it reports it no more.
func TestVMStatusFromTheCensus(t *testing.T) {
	ctx := context.Background()
	if err := k8s.Create(ctx, &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "census-vms"}}); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, nil)
	vm := &meshv1alpha1.MeshVM{
		ObjectMeta: metav1.ObjectMeta{Name: "counted-vm", Namespace: ns},
		Spec: meshv1alpha1.MeshVMSpec{Mesh: "census-vms", ServiceAccountName: "counted", Addresses: []string{"192.0.2.50"},
			Ports: []meshv1alpha1.VMPort{{Name: "http", Port: 8080, Protocol: meshv1alpha1.ProtocolHTTP}}},
	}
	if err := k8s.Create(ctx, vm); err != nil {
		t.Fatal(err)
	}
	readyOf(t, vm, func(c *metav1.Condition) bool { return c.Reason == "AwaitingProxy" })

	p := publishConnected(t, "replica-census", &corev3.Node{Id: "vm~" + ns + "~counted-vm", UserAgentName: "envoy", UserAgentVersionType: &corev3.Node_UserAgentVersion{UserAgentVersion: "1.36.2"}})
	readyOf(t, vm, func(c *metav1.Condition) bool { return c.Status == metav1.ConditionTrue })
	if px := vm.Status.Proxy; px == nil || !px.Connected || px.Version != "envoy/1.36.2" || px.Replica != "replica-census" || px.LastSeen == nil {
		t.Errorf("status.proxy = %+v", px)
	}

	p.Disconnected("vm~" + ns + "~counted-vm")
	readyOf(t, vm, func(c *metav1.Condition) bool { return c.Reason == "ProxyDisconnected" })
	if px := vm.Status.Proxy; px == nil || px.Connected || px.Replica != "replica-census" {
		t.Errorf("status.proxy = %+v, want disconnected", px)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(vm), vm); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(vm.Status.Conditions, meshv1alpha1.ConditionProxyConnected); c == nil || c.Reason != "Disconnected" {
			return fmt.Errorf("ProxyConnected = %+v", c)
		}
		return nil
	})
}
