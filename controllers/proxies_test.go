package controllers_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/xds/census"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// TestConnectedProxiesAreCountedAcrossReplicas: two xDS replicas publish
// their connected sidecars; the MeshMember counts those of its namespace
// and the MeshInstance those of all its member namespaces. A replica that
// stops takes its proxies out of the counts, and the Lease of a replica that
// died without cleaning up stops counting once expired and is deleted.
func TestConnectedProxiesAreCountedAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "census"}}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	a, b := newNamespace(t, nil), newNamespace(t, nil)
	for _, ns := range []string{a, b} {
		if err := k8s.Create(ctx, &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "census"}}); err != nil {
			t.Fatal(err)
		}
	}
	outside := newNamespace(t, nil) // not a member: its proxies are not the mesh's

	startReplica := func(name string, c census.Counts) context.CancelFunc {
		rctx, cancel := context.WithCancel(ctx)
		p := census.NewPublisher(census.Options{
			Client: k8s, Namespace: operatorNamespace, Replica: name, FieldManager: "test",
			Count: func() census.Counts { return c }, Settle: 10 * time.Millisecond, Log: logr.Discard(),
		})
		done := make(chan struct{})
		go func() { _ = p.Start(rctx); close(done) }()
		return func() { cancel(); <-done }
	}
	stop1 := startReplica("xds-1", census.Counts{a: 3, outside: 7})
	defer stop1()
	stop2 := startReplica("xds-2", census.Counts{a: 1, b: 2})
	defer stop2()

	expect := func(wantA, wantB, wantMesh int32) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, func() error {
			var got []int32
			for _, ns := range []string{a, b} {
				mm := &meshv1alpha1.MeshMember{}
				if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "m"}, mm); err != nil {
					return err
				}
				got = append(got, mm.Status.ProxiesConnected)
			}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
				return err
			}
			got = append(got, mi.Status.ConnectedProxies)
			if want := []int32{wantA, wantB, wantMesh}; fmt.Sprint(got) != fmt.Sprint(want) {
				return fmt.Errorf("member %s, member %s, mesh: %v, want %v", a, b, got, want)
			}
			return nil
		})
	}
	expect(4, 2, 6)

	stop2() // a graceful stop deletes the replica's Lease
	expect(3, 0, 3)

	// A replica that died: its Lease was last renewed a minute ago for 30 s.
	dead := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: census.LeasePrefix + "dead", Namespace: operatorNamespace,
			Labels:      map[string]string{census.ComponentLabel: census.Component},
			Annotations: map[string]string{census.CountsAnnotation: fmt.Sprintf(`{%q: 50}`, b)}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("dead"), LeaseDurationSeconds: ptr.To[int32](30),
			RenewTime: ptr.To(metav1.NewMicroTime(time.Now().Add(-time.Minute)))},
	}
	// A namespace's user labels a Lease of their own as a replica's: it is
	// no census (only the operator's namespace's are), and the operator
	// neither counts nor deletes it.
	forged := dead.DeepCopy()
	forged.Namespace = outside
	if err := k8s.Create(ctx, forged); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, dead); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		err := k8s.Get(ctx, client.ObjectKeyFromObject(dead), &coordinationv1.Lease{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("the expired Lease is still there (%v)", err)
	})
	expect(3, 0, 3)
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(forged), &coordinationv1.Lease{}); err != nil {
		t.Errorf("the operator deleted a Lease of namespace %s: %v", outside, err)
	}
}

// TestFailingProxyGroupsAreReportedInStatus: a replica whose translation of
// a group failed says so in its Lease; the MeshMember of the group's
// namespace turns ProxyConfigReady=False and Ready=False (Stalled), the
// MeshInstance ProxyConfigReady=False, both naming the group and its error.
// When the replica reports the group fixed, both recover.
func TestFailingProxyGroupsAreReportedInStatus(t *testing.T) {
	ctx := context.Background()
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "failing"}}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	ns, other := newNamespace(t, nil), newNamespace(t, nil)
	for _, n := range []string{ns, other} {
		if err := k8s.Create(ctx, &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: n}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: mi.Name}}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	failing := census.Failing{}
	p := census.NewPublisher(census.Options{
		Client: k8s, Namespace: operatorNamespace, Replica: "xds-failing", FieldManager: "test",
		Count: func() census.Counts { return census.Counts{} },
		Failing: func() census.Failing {
			mu.Lock()
			defer mu.Unlock()
			return maps.Clone(failing)
		},
		Settle: 10 * time.Millisecond, Log: logr.Discard(),
	})
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = p.Start(pctx); close(done) }()
	defer func() { cancel(); <-done }()

	// Two VMs of the namespace: the store's shares the failing group.
	vm := func(name, sa string) *meshv1alpha1.MeshVM {
		return &meshv1alpha1.MeshVM{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: meshv1alpha1.MeshVMSpec{
			Mesh: mi.Name, ServiceAccountName: sa, Addresses: []string{"192.0.2.20"},
			Ports: []meshv1alpha1.VMPort{{Name: "http", Port: 8080, Protocol: meshv1alpha1.ProtocolHTTP}}}}
	}
	storeVM, warehouseVM := vm("store-vm", "store"), vm("warehouse-vm", "warehouse")
	for _, v := range []client.Object{storeVM, warehouseVM} {
		if err := k8s.Create(ctx, v); err != nil {
			t.Fatal(err)
		}
	}

	group := mesh.Group{Kind: mesh.ProxyEnvoy, Identity: mesh.Identity{Namespace: ns, ServiceAccount: "store"}}.String()
	mu.Lock()
	failing.Fail(ns, group, errors.New("identity Secret: tls: private key does not match public key"))
	mu.Unlock()
	p.Changed()

	member := func(n string) *meshv1alpha1.MeshMember {
		return &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Namespace: n, Name: "m"}}
	}
	expect := func(obj client.Object, conds func() []metav1.Condition, typ string, status metav1.ConditionStatus, reason, contains string) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, func() error {
			c := condition(t, obj, conds, typ)
			if c == nil || c.Status != status || c.Reason != reason || !strings.Contains(c.Message, contains) {
				return fmt.Errorf("%s of %s: %+v, want %s %s mentioning %q", typ, obj.GetNamespace()+"/"+obj.GetName(), c, status, reason, contains)
			}
			return nil
		})
	}
	failed := member(ns)
	fconds := func() []metav1.Condition { return failed.Status.Conditions }
	expect(failed, fconds, meshv1alpha1.ConditionProxyConfigReady, metav1.ConditionFalse, meshv1alpha1.ReasonTranslationFailed, group+": identity Secret: tls: private key does not match public key")
	expect(failed, fconds, meshv1alpha1.ConditionReady, metav1.ConditionFalse, meshv1alpha1.ReasonTranslationFailed, group)
	expect(failed, fconds, meshv1alpha1.ConditionStalled, metav1.ConditionTrue, meshv1alpha1.ReasonTranslationFailed, group)
	mconds := func() []metav1.Condition { return mi.Status.Conditions }
	expect(mi, mconds, meshv1alpha1.ConditionProxyConfigReady, metav1.ConditionFalse, meshv1alpha1.ReasonTranslationFailed, "1 proxy groups")
	// The other member's groups are fine.
	fine := member(other)
	expect(fine, func() []metav1.Condition { return fine.Status.Conditions }, meshv1alpha1.ConditionProxyConfigReady, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "")
	expect(fine, func() []metav1.Condition { return fine.Status.Conditions }, meshv1alpha1.ConditionReady, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "")
	// The store's VM says its own group failed; the warehouse's is fine and
	// waits only for its proxy.
	sconds := func() []metav1.Condition { return storeVM.Status.Conditions }
	wconds := func() []metav1.Condition { return warehouseVM.Status.Conditions }
	expect(storeVM, sconds, meshv1alpha1.ConditionProxyConfigReady, metav1.ConditionFalse, meshv1alpha1.ReasonTranslationFailed,
		"the translation of its group "+group+" failed: identity Secret: tls: private key does not match public key")
	expect(storeVM, sconds, meshv1alpha1.ConditionReady, metav1.ConditionFalse, meshv1alpha1.ReasonTranslationFailed, group)
	expect(storeVM, sconds, meshv1alpha1.ConditionStalled, metav1.ConditionTrue, meshv1alpha1.ReasonTranslationFailed, group)
	expect(warehouseVM, wconds, meshv1alpha1.ConditionProxyConfigReady, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "")
	expect(warehouseVM, wconds, meshv1alpha1.ConditionReady, metav1.ConditionFalse, "AwaitingProxy", "no proxy has connected yet")

	// With more failing groups than a Lease names, one not named can't be
	// told apart: the store's VM says so rather than claim either way.
	mu.Lock()
	for _, sa := range []string{"a", "b", "c", "d", "e"} {
		failing.Fail(ns, mesh.Group{Kind: mesh.ProxyEnvoy, Identity: mesh.Identity{Namespace: ns, ServiceAccount: sa}}.String(), errors.New("bad"))
	}
	mu.Unlock()
	p.Changed()
	expect(storeVM, sconds, meshv1alpha1.ConditionProxyConfigReady, metav1.ConditionUnknown, meshv1alpha1.ReasonTranslationFailed,
		"6 proxy groups of namespace "+ns+" failed their translation and the census names only 5; group "+group+" may be one of the others")
	expect(failed, fconds, meshv1alpha1.ConditionProxyConfigReady, metav1.ConditionFalse, meshv1alpha1.ReasonTranslationFailed, "6 proxy groups")

	mu.Lock()
	delete(failing, ns)
	mu.Unlock()
	p.Changed()
	expect(failed, fconds, meshv1alpha1.ConditionProxyConfigReady, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "")
	expect(failed, fconds, meshv1alpha1.ConditionReady, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "")
	expect(mi, mconds, meshv1alpha1.ConditionProxyConfigReady, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "")
	expect(storeVM, sconds, meshv1alpha1.ConditionProxyConfigReady, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "")
	expect(storeVM, sconds, meshv1alpha1.ConditionReady, metav1.ConditionFalse, "AwaitingProxy", "no proxy has connected yet")
}

// A proxyless gRPC MeshVM's group is of the grpc kind, as the model and
// the xDS server make it: its failing translation shows on the VM. Before,
// the controller looked for the VM's group with the Envoy kind always, and
// a proxyless VM's failure never matched.
func TestAProxylessVMSeesItsFailingGroup(t *testing.T) {
	ctx := context.Background()
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "proxyless-failing"}}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, nil)
	if err := k8s.Create(ctx, &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: mi.Name}}); err != nil {
		t.Fatal(err)
	}
	vm := &meshv1alpha1.MeshVM{ObjectMeta: metav1.ObjectMeta{Name: "catalog-vm", Namespace: ns}, Spec: meshv1alpha1.MeshVMSpec{
		Mesh: mi.Name, ServiceAccountName: "catalog", Addresses: []string{"192.0.2.21"}, Proxy: meshv1alpha1.ProxyProxylessGRPC,
		Ports: []meshv1alpha1.VMPort{{Name: "grpc", Port: 9090, Protocol: meshv1alpha1.ProtocolGRPC}}}}
	if err := k8s.Create(ctx, vm); err != nil {
		t.Fatal(err)
	}
	group := mesh.Group{Kind: mesh.ProxyGRPC, Identity: mesh.Identity{Namespace: ns, ServiceAccount: "catalog"}}.String()
	failing := census.Failing{}
	failing.Fail(ns, group, errors.New("bad listener"))
	p := census.NewPublisher(census.Options{
		Client: k8s, Namespace: operatorNamespace, Replica: "xds-proxyless-failing", FieldManager: "test",
		Count:   func() census.Counts { return census.Counts{} },
		Failing: func() census.Failing { return failing },
		Settle:  10 * time.Millisecond, Log: logr.Discard(),
	})
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = p.Start(pctx); close(done) }()
	defer func() { cancel(); <-done }()
	p.Changed()
	testenv.Eventually(t, 30*time.Second, func() error {
		c := condition(t, vm, func() []metav1.Condition { return vm.Status.Conditions }, meshv1alpha1.ConditionProxyConfigReady)
		if c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, group) {
			return fmt.Errorf("ProxyConfigReady of the proxyless VM: %+v, want False naming %s", c, group)
		}
		return nil
	})
}
