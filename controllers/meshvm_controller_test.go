package controllers_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/encoding/protojson"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/controllers"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/internal/vmbootstrap"
)

// TestVMJoinsTheMesh: a MeshVM gets its service account, a certificate issued
// by cert-manager, a bootstrap Secret whose Envoy bootstrap passes Envoy's
// validation, and EndpointSlices for the Services it backs; a missing Service
// is reported until the VM stops naming it.
func TestVMJoinsTheMesh(t *testing.T) {
	ctx := context.Background()
	if err := k8s.Create(ctx, &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "vms"}}); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, nil)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "warehouse", Namespace: ns},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}
	vm := &meshv1alpha1.MeshVM{
		ObjectMeta: metav1.ObjectMeta{Name: "warehouse-vm", Namespace: ns},
		Spec: meshv1alpha1.MeshVMSpec{
			Mesh: "vms", ServiceAccountName: "warehouse",
			Addresses: []string{"192.0.2.10", "2001:db8::10"},
			Ports:     []meshv1alpha1.VMPort{{Name: "http", Port: 8080, Protocol: meshv1alpha1.ProtocolHTTP}},
			Services:  []string{"warehouse", "ghost"},
		},
	}
	for _, o := range []client.Object{svc, vm} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(vm), vm); err != nil {
			return err
		}
		c := meta.FindStatusCondition(vm.Status.Conditions, meshv1alpha1.ConditionReady)
		if c == nil || c.Reason != "ServiceNotFound" || !strings.Contains(c.Message, "ghost") {
			return fmt.Errorf("Ready = %+v", c)
		}
		return nil
	})
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "warehouse"}, &corev1.ServiceAccount{}); err != nil {
		t.Errorf("the VM's service account: %v", err)
	}

	boot := &corev1.Secret{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: vm.Status.BootstrapSecretName}, boot); err != nil {
		t.Fatal(err)
	}
	b := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal(boot.Data[controllers.BootstrapKey], b); err != nil {
		t.Fatalf("the bootstrap does not parse: %v", err)
	}
	if err := b.ValidateAll(); err != nil {
		t.Errorf("the bootstrap is invalid: %v", err)
	}
	if b.GetNode().GetId() != "vm~"+ns+"~warehouse-vm" || b.GetAdmin().GetAddress().GetSocketAddress().GetAddress() != "127.0.0.1" {
		t.Errorf("node %q, admin %v", b.GetNode().GetId(), b.GetAdmin().GetAddress())
	}
	for _, k := range []string{controllers.CertKey, controllers.KeyKey, controllers.CAKey, controllers.ClientCertSDSKey, controllers.TrustSDSKey} {
		if len(boot.Data[k]) == 0 {
			t.Errorf("the bootstrap Secret lacks %s", k)
		}
	}

	var slices discoveryv1.EndpointSliceList
	if err := k8s.List(ctx, &slices, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelServiceName: "warehouse"}); err != nil {
		t.Fatal(err)
	}
	families := map[discoveryv1.AddressType]string{}
	for _, es := range slices.Items {
		if len(es.Endpoints) != 1 || len(es.Ports) != 1 || *es.Ports[0].Port != 8080 || *es.Ports[0].Name != "http" ||
			es.Endpoints[0].TargetRef.Kind != "MeshVM" || es.Labels[discoveryv1.LabelManagedBy] != controllers.EndpointSliceManager {
			t.Errorf("EndpointSlice %s: %+v", es.Name, es)
			continue
		}
		families[es.AddressType] = es.Endpoints[0].Addresses[0]
	}
	if families[discoveryv1.AddressTypeIPv4] != "192.0.2.10" || families[discoveryv1.AddressTypeIPv6] != "2001:db8::10" {
		t.Errorf("VM endpoints by family: %v", families)
	}

	// The VM's status is written meanwhile: update the spec as read last.
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(vm), vm); err != nil {
			return err
		}
		vm.Spec.Services = []string{"warehouse"}
		return k8s.Update(ctx, vm)
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(vm), vm); err != nil {
			return err
		}
		c := meta.FindStatusCondition(vm.Status.Conditions, meshv1alpha1.ConditionReady)
		if c == nil || c.Reason != "AwaitingProxy" || !strings.Contains(c.Message, "osm-operator vm bootstrap warehouse-vm") {
			return fmt.Errorf("Ready = %+v", c)
		}
		return nil
	})
	// The census of the replica holding the VM's stream reports it (its
	// xDS server tells the publisher, as in xds/controlplane).
	publishConnected(t, "replica-a", &corev3.Node{Id: "vm~" + ns + "~warehouse-vm", UserAgentName: "envoy"})
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(vm), vm); err != nil {
			return err
		}
		if vm.Status.ObservedGeneration != vm.Generation {
			return fmt.Errorf("observed generation %d of %d", vm.Status.ObservedGeneration, vm.Generation)
		}
		return ready(vm.Status.Conditions)
	})
	if s := kstatusOf(t, vm, "MeshVM"); s != status.CurrentStatus {
		t.Errorf("kstatus %s, want Current", s)
	}
	// The folder a VM admin copies: what `osm-operator vm bootstrap` writes.
	_, files, err := vmbootstrap.Fetch(ctx, k8s, ns, vm.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{controllers.BootstrapKey, controllers.CertKey, controllers.KeyKey, controllers.CAKey, controllers.ClientCertSDSKey, controllers.TrustSDSKey, vmbootstrap.IptablesScript, vmbootstrap.SystemdUnit} {
		if len(files[f]) == 0 {
			t.Errorf("the VM folder lacks %s", f)
		}
	}
	if vm.Status.Certificate == nil || vm.Status.Certificate.NotAfter == nil || !strings.HasSuffix(vm.Status.Certificate.Identity, "/ns/"+ns+"/sa/warehouse") {
		t.Errorf("certificate status %+v", vm.Status.Certificate)
	}
}

// TestVMAndMemberShareAnIdentity: a MeshVM running as the service account of
// member pods shares their identity Certificate; whichever leaves first
// leaves it to the other, and the last one takes it and its Secret away.
func TestVMAndMemberShareAnIdentity(t *testing.T) {
	ctx := context.Background()
	if err := k8s.Create(ctx, &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "shared"}}); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, nil)
	mm := &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "shared"}}
	vm := &meshv1alpha1.MeshVM{
		ObjectMeta: metav1.ObjectMeta{Name: "api-vm", Namespace: ns},
		Spec: meshv1alpha1.MeshVMSpec{Mesh: "shared", ServiceAccountName: "api", Addresses: []string{"192.0.2.20"},
			Ports: []meshv1alpha1.VMPort{{Name: "http", Port: 8080, Protocol: meshv1alpha1.ProtocolHTTP}}},
	}
	for _, o := range []client.Object{mm, meshedPod("shared", ns, "api-1", "api"), vm} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	name := meshv1alpha1.IdentitySecretName("api")
	owners := func(want ...string) error {
		cert := &cmapi.Certificate{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cert); err != nil {
			return err
		}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &corev1.Secret{}); err != nil {
			return fmt.Errorf("the identity Secret: %w", err)
		}
		var kinds []string
		for _, ref := range cert.OwnerReferences {
			kinds = append(kinds, ref.Kind)
		}
		slices.Sort(kinds)
		if !slices.Equal(kinds, want) {
			return fmt.Errorf("the Certificate is owned by %v, want %v", kinds, want)
		}
		return nil
	}
	testenv.Eventually(t, 60*time.Second, func() error { return owners("MeshMember", "MeshVM") })

	if err := k8s.Delete(ctx, vm); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(vm), vm); !apierrors.IsNotFound(err) {
			return fmt.Errorf("the MeshVM is still there (%v)", err)
		}
		return owners("MeshMember")
	})

	if err := k8s.Delete(ctx, mm); err != nil {
		t.Fatal(err)
	}
	identityGone(t, ns, name)
}

// TestAVMCannotTakeAPodsAddress: a MeshVM claiming the IP of a running pod
// (of any namespace: admission cannot check it race-free) has that address
// left out of its EndpointSlices, and says so in AddressesAccepted, naming
// the pod; its other address is published. Once the pod is gone, the address
// is published too.
func TestAVMCannotTakeAPodsAddress(t *testing.T) {
	ctx := context.Background()
	if err := k8s.Create(ctx, &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "taken"}}); err != nil {
		t.Fatal(err)
	}
	ns, elsewhere := newNamespace(t, nil), newNamespace(t, nil)
	web := pod(elsewhere, "web-1", "web")
	if err := k8s.Create(ctx, web); err != nil {
		t.Fatal(err)
	}
	web.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "192.0.2.70", PodIPs: []corev1.PodIP{{IP: "192.0.2.70"}}}
	if err := k8s.Status().Update(ctx, web); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "warehouse", Namespace: ns},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}
	vm := &meshv1alpha1.MeshVM{
		ObjectMeta: metav1.ObjectMeta{Name: "impostor", Namespace: ns},
		Spec: meshv1alpha1.MeshVMSpec{
			Mesh: "taken", ServiceAccountName: "warehouse", Addresses: []string{"192.0.2.70", "192.0.2.71"},
			Ports:    []meshv1alpha1.VMPort{{Name: "http", Port: 8080, Protocol: meshv1alpha1.ProtocolHTTP}},
			Services: []string{"warehouse"},
		},
	}
	for _, o := range []client.Object{svc, vm} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	published := func(want ...string) error {
		var l discoveryv1.EndpointSliceList
		if err := k8s.List(ctx, &l, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelServiceName: "warehouse"}); err != nil {
			return err
		}
		var got []string
		for _, es := range l.Items {
			for _, e := range es.Endpoints {
				got = append(got, e.Addresses...)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return fmt.Errorf("the VM's EndpointSlices hold %v, want %v", got, want)
		}
		return nil
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(vm), vm); err != nil {
			return err
		}
		want := fmt.Sprintf("192.0.2.70 is the IP of pod %s/web-1", elsewhere)
		c := meta.FindStatusCondition(vm.Status.Conditions, meshv1alpha1.ConditionAddressesAccepted)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != meshv1alpha1.ReasonAddressConflict || !strings.Contains(c.Message, want) {
			return fmt.Errorf("AddressesAccepted = %+v, want AddressConflict saying %q", c, want)
		}
		if r := meta.FindStatusCondition(vm.Status.Conditions, meshv1alpha1.ConditionReady); r == nil || r.Reason != meshv1alpha1.ReasonAddressConflict {
			return fmt.Errorf("Ready = %+v, want AddressConflict", r)
		}
		return published("192.0.2.71")
	})

	if err := k8s.Delete(ctx, web, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(vm), vm); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(vm.Status.Conditions, meshv1alpha1.ConditionAddressesAccepted); c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("AddressesAccepted = %+v", c)
		}
		return published("192.0.2.70", "192.0.2.71")
	})
}
