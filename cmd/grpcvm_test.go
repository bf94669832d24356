package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/controllers"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/internal/vmbootstrap"
	"github.com/open-service-mesh/osm-operator/webhooks/inject"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/xdstest"
)

// TestProxylessGRPCVM: the folder `osm-operator vm bootstrap` writes for a
// proxyless gRPC MeshVM is all its application needs: grpc-go's xDS client
// reads the gRPC bootstrap and the identity files cert-manager issued, gets
// its config from the operator's xDS server and calls a proxyless pod the
// policy lets it call.
func TestProxylessGRPCVM(t *testing.T) {
	ctx, k, xdsAddr := startOperator(t)
	ledgerCalls(t, ctx, k, xdsAddr)
}

// TestProxylessGRPCInItsOwnMesh: with two meshes, the proxyless pod and VM of
// the second are answered with their own mesh's serving certificate: they
// dial and verify a name of their mesh's own, and the xDS server picks the
// certificate by it. They dialled the one xDS Service name every mesh's
// certificate listed, and were answered with the first mesh's.
func TestProxylessGRPCInItsOwnMesh(t *testing.T) {
	ctx, k, xdsAddr := startOperator(t)
	if err := k.Create(ctx, &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "alpha"}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 90*time.Second, func() error {
		var l corev1.SecretList
		if err := k.List(ctx, &l, client.InNamespace("osm-system"), client.MatchingLabels{meshv1alpha1.XDSServingSecretLabel: "alpha"}); err != nil {
			return err
		}
		if len(l.Items) == 0 {
			return fmt.Errorf("mesh alpha has no serving certificate yet")
		}
		return nil
	})
	ledgerCalls(t, ctx, k, xdsAddr)
}

// ledgerCalls runs a proxyless pod serving the ledger and a proxyless VM
// calling it, in mesh ledgers, and waits for a call to succeed.
func ledgerCalls(t *testing.T, ctx context.Context, k client.Client, xdsAddr string) {
	r := manual.NewBuilderWithScheme(xdsScheme)
	r.InitialState(resolver.State{Addresses: []resolver.Address{{Addr: xdsAddr}}})
	resolver.Register(r)

	lis, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	serverPort := int32(lis.Addr().(*net.TCPAddr).Port)
	ns := "ledgers"
	server := testPod(ns, "ledger-1", "ledger")
	server.Annotations = map[string]string{mesh.ProxyKindAnnotation: string(mesh.ProxyGRPC)}
	vm := &meshv1alpha1.MeshVM{
		ObjectMeta: metav1.ObjectMeta{Name: "teller-vm", Namespace: ns},
		Spec: meshv1alpha1.MeshVMSpec{
			Mesh: "ledgers", ServiceAccountName: "teller", Proxy: meshv1alpha1.ProxyProxylessGRPC,
			Addresses: []string{"192.0.2.97"},
			Ports:     []meshv1alpha1.VMPort{{Name: "grpc", Port: 9090, Protocol: meshv1alpha1.ProtocolGRPC}},
		},
	}
	objs := []client.Object{
		&meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "ledgers"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "ledgers", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "ledgers"}},
		server, grpcService(ns, "ledger"), podEndpoints(ns, "ledger", "1", "ledger-1", "192.0.2.96", serverPort),
		&specsv1alpha4.HTTPRouteGroup{ObjectMeta: metav1.ObjectMeta{Name: "all", Namespace: ns}, Spec: specsv1alpha4.HTTPRouteGroupSpec{Matches: []specsv1alpha4.HTTPMatch{{Name: "all", PathRegex: ".*"}}}},
		&accessv1alpha3.TrafficTarget{ObjectMeta: metav1.ObjectMeta{Name: "teller-to-ledger", Namespace: ns}, Spec: accessv1alpha3.TrafficTargetSpec{
			Destination: accessv1alpha3.IdentityBindingSubject{Kind: "ServiceAccount", Name: "ledger"},
			Sources:     []accessv1alpha3.IdentityBindingSubject{{Kind: "ServiceAccount", Name: "teller"}},
			Rules:       []accessv1alpha3.TrafficTargetRule{{Kind: "HTTPRouteGroup", Name: "all"}},
		}},
		vm,
	}
	for _, o := range objs {
		if err := k.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}

	// The proxyless pod serving the ledger, as in TestProxylessGRPCWithCertManager.
	podDir := t.TempDir()
	injected := server.DeepCopy()
	if err := inject.Pod(injected, inject.ConfigFor(&meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "ledgers"}}, "osm-system", inject.Images{})); err != nil {
		t.Fatal(err)
	}
	mountIdentity(t, ctx, k, injected, podDir)
	for _, e := range injected.Spec.Containers[0].Env {
		if e.Name == inject.GRPCBootstrapEnv {
			xdstest.GRPCServer(t, lis, localGRPCBootstrap(t, []byte(e.Value), podDir, "sidecar~"+ns+"~ledger-1"))
		}
	}

	// The VM's folder, as the command writes it, once the VM's bootstrap is ready.
	dir := filepath.Join(t.TempDir(), "teller-vm")
	var files map[string][]byte
	testenv.Eventually(t, 90*time.Second, func() error {
		_, files, err = vmbootstrap.Fetch(ctx, k, ns, vm.Name)
		return err
	})
	if err := vmbootstrap.Write(dir, files); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{controllers.BootstrapKey, vmbootstrap.IptablesScript, vmbootstrap.SystemdUnit} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("the proxyless VM's folder holds %s", f)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, controllers.GRPCBootstrapKey))
	if err != nil {
		t.Fatal(err)
	}
	conn := xdstest.GRPCClient(t, fmt.Sprintf("xds:///ledger.%s.svc.cluster.local:14001", ns), localGRPCBootstrap(t, raw, dir, "vm~"+ns+"~teller-vm"))
	testenv.Eventually(t, 60*time.Second, func() error {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{})
		if code := status.Code(err); code != codes.OK {
			return fmt.Errorf("the VM's call: %v", err)
		}
		return nil
	})
	// The replica's census reports the VM's xDS stream, and the MeshVM
	// controller writes it into the VM's status.
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := k.Get(ctx, client.ObjectKeyFromObject(vm), vm); err != nil {
			return err
		}
		if p := vm.Status.Proxy; p == nil || !p.Connected || p.Replica == "" {
			return fmt.Errorf("status.proxy = %+v", p)
		}
		return nil
	})
}
