package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
)

// policyKstatus computes the kstatus of a policy object as Flux does.
func policyKstatus(t *testing.T, obj client.Object, kind string) status.Status {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(policyv1alpha1.GroupVersion.WithKind(kind))
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), u); err != nil {
		t.Fatal(err)
	}
	res, err := status.Compute(u)
	if err != nil {
		t.Fatal(err)
	}
	return res.Status
}

// readyIs waits for the Ready condition of obj, of the generation it has,
// to have status s, reason and a message containing msg; check looks at
// the rest of obj.
func readyIs(t *testing.T, obj interface {
	client.Object
	StatusConditions() *[]metav1.Condition
}, s metav1.ConditionStatus, reason, msg string, check func() error) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		c := meta.FindStatusCondition(*obj.StatusConditions(), meshv1alpha1.ConditionReady)
		if c == nil || c.Status != s || c.Reason != reason || !strings.Contains(c.Message, msg) || c.ObservedGeneration != obj.GetGeneration() {
			return fmt.Errorf("Ready %+v, want %s %s containing %q of generation %d", c, s, reason, msg, obj.GetGeneration())
		}
		if check != nil {
			return check()
		}
		return nil
	})
}

// TestPolicyStatusSaysWhetherAMeshReadsIt: an IngressBackend or an Egress
// whose namespace is in no mesh says that no mesh reads it (kstatus
// Failed, OSM's currentStatus error); once the namespace joins a mesh, the
// mesh says the policy is in effect (committed); a namespace labelled for
// a mesh that does not exist says so.
func TestPolicyStatusSaysWhetherAMeshReadsIt(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, nil)
	ib, eg := testPolicies(ns)
	for _, o := range []client.Object{ib, eg} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	currentStatus := func(want string) func() error {
		return func() error {
			if ib.Status.CurrentStatus != want || ib.Status.ObservedGeneration != ib.Generation {
				return fmt.Errorf("currentStatus %q of generation %d, want %q of %d", ib.Status.CurrentStatus, ib.Status.ObservedGeneration, want, ib.Generation)
			}
			return nil
		}
	}
	readyIs(t, ib, metav1.ConditionFalse, policyv1alpha1.ReasonNamespaceNotInMesh, "no mesh reads this IngressBackend", currentStatus(policyv1alpha1.IngressBackendError))
	readyIs(t, eg, metav1.ConditionFalse, policyv1alpha1.ReasonNamespaceNotInMesh, "no mesh reads this Egress", nil)
	if s := policyKstatus(t, ib, "IngressBackend"); s != status.FailedStatus {
		t.Errorf("kstatus of an IngressBackend no mesh reads %s, want Failed", s)
	}

	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "policy-status"}}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	labelNamespace(t, ns, func(l map[string]string) { l[meshv1alpha1.MonitorLabel] = mi.Name })
	readyIs(t, ib, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "In effect in mesh policy-status", currentStatus(policyv1alpha1.IngressBackendCommitted))
	readyIs(t, eg, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "In effect in mesh policy-status", nil)
	// Each backend and source says whether it resolved: the backend's
	// Service does not exist yet, which the Ready message says too.
	parts := func(backend string) func() error {
		return func() error {
			st := ib.Status
			if len(st.Backends) != 1 || st.Backends[0].Name != "web" || st.Backends[0].Resolved || !strings.Contains(st.Backends[0].Message, backend) {
				return fmt.Errorf("status.backends %+v, want web unresolved: %s", st.Backends, backend)
			}
			if len(st.Sources) != 1 || st.Sources[0].Name != "10.0.0.0/8" || !st.Sources[0].Resolved {
				return fmt.Errorf("status.sources %+v, want 10.0.0.0/8 resolved", st.Sources)
			}
			return nil
		}
	}
	readyIs(t, ib, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "not resolved yet", parts("Service "+ns+"/web does not exist"))
	web := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	if err := k8s.Create(ctx, web); err != nil {
		t.Fatal(err)
	}
	readyIs(t, ib, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "not resolved yet", parts("no endpoint with a proxy of Service "+ns+"/web serves port 8080"))
	if s := policyKstatus(t, ib, "IngressBackend"); s != status.CurrentStatus {
		t.Errorf("kstatus of a committed IngressBackend %s, want Current", s)
	}

	// The mesh follows its own spec: with egress allowed, an Egress adds nothing.
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
			return err
		}
		mi.Spec.Egress.Mode = meshv1alpha1.EgressAllow
		return k8s.Update(ctx, mi)
	})
	readyIs(t, eg, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "restricts nothing until the mode is Deny", nil)

	// A new generation of the policy is judged again.
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(ib), ib); err != nil {
			return err
		}
		ib.Spec.Sources[0].Name = "192.168.0.0/16"
		return k8s.Update(ctx, ib)
	})
	readyIs(t, ib, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "In effect", currentStatus(policyv1alpha1.IngressBackendCommitted))

	labelNamespace(t, ns, func(l map[string]string) { l[meshv1alpha1.MonitorLabel] = "no-such-mesh" })
	readyIs(t, ib, metav1.ConditionFalse, meshv1alpha1.ReasonMeshNotFound, "labelled for mesh no-such-mesh, which does not exist or is being deleted", currentStatus(policyv1alpha1.IngressBackendError))

	labelNamespace(t, ns, func(l map[string]string) { delete(l, meshv1alpha1.MonitorLabel) })
	readyIs(t, eg, metav1.ConditionFalse, policyv1alpha1.ReasonNamespaceNotInMesh, "no mesh reads this Egress", nil)
}

// testPolicies are an IngressBackend and an Egress of namespace ns, each
// valid and naming one backend or destination.
func testPolicies(ns string) (*policyv1alpha1.IngressBackend, *policyv1alpha1.Egress) {
	ib := &policyv1alpha1.IngressBackend{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: policyv1alpha1.IngressBackendSpec{
			Backends: []policyv1alpha1.IngressBackendTarget{{Name: "web", Port: policyv1alpha1.BackendPort{Number: 8080, Protocol: policyv1alpha1.BackendProtocolHTTP}}},
			Sources:  []policyv1alpha1.IngressSource{{Kind: policyv1alpha1.IngressSourceIPRange, Name: "10.0.0.0/8"}},
		},
	}
	eg := &policyv1alpha1.Egress{
		ObjectMeta: metav1.ObjectMeta{Name: "httpbin", Namespace: ns},
		Spec: policyv1alpha1.EgressSpec{
			Sources: []policyv1alpha1.EgressSource{{Kind: policyv1alpha1.EgressSourceServiceAccount, Name: "web", Namespace: ns}},
			Hosts:   []string{"httpbin.org"},
			Ports:   []policyv1alpha1.EgressPort{{Number: 80, Protocol: policyv1alpha1.EgressProtocolHTTP}},
		},
	}
	return ib, eg
}

// TestOSMResilienceStatus: an UpstreamTrafficSetting and a Retry say, as
// the other OSM kinds do, whether a mesh reads them; a mesh that reads
// them says what it left out and what that comes to (the callers keep the
// mesh's defaults, no retries), then that they are in effect once what
// they name exists.
func TestOSMResilienceStatus(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, nil)
	uts := &policyv1alpha1.UpstreamTrafficSetting{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: policyv1alpha1.UpstreamTrafficSettingSpec{
		Host:               "web." + ns + ".svc.cluster.local",
		ConnectionSettings: &policyv1alpha1.ConnectionSettings{TCP: &policyv1alpha1.TCPConnectionSettings{MaxConnections: ptr.To[int64](10)}}}}
	retry := &policyv1alpha1.Retry{ObjectMeta: metav1.ObjectMeta{Name: "client", Namespace: ns}, Spec: policyv1alpha1.RetrySpec{
		Source:       policyv1alpha1.RetrySource{Kind: policyv1alpha1.RetrySourceServiceAccount, Name: "client", Namespace: ns},
		Destinations: []policyv1alpha1.RetryDestination{{Kind: policyv1alpha1.RetryDestinationService, Name: "web", Namespace: ns}},
		RetryPolicy:  policyv1alpha1.RetryPolicySpec{RetryOn: "5xx"}}}
	for _, o := range []client.Object{uts, retry} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	readyIs(t, uts, metav1.ConditionFalse, policyv1alpha1.ReasonNamespaceNotInMesh, "no mesh reads this UpstreamTrafficSetting", nil)
	readyIs(t, retry, metav1.ConditionFalse, policyv1alpha1.ReasonNamespaceNotInMesh, "no mesh reads this Retry", nil)

	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "osm-resilience-status"}}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	labelNamespace(t, ns, func(l map[string]string) { l[meshv1alpha1.MonitorLabel] = mi.Name })
	readyIs(t, uts, metav1.ConditionFalse, policyv1alpha1.ReasonLeftOut, "its callers keep the mesh's defaults", func() error {
		if uts.Status.CurrentStatus != policyv1alpha1.IngressBackendError || !strings.Contains(uts.Status.Reason, "is not a Service of mesh") {
			return fmt.Errorf("OSM status %q: %s", uts.Status.CurrentStatus, uts.Status.Reason)
		}
		return nil
	})
	readyIs(t, retry, metav1.ConditionFalse, policyv1alpha1.ReasonLeftOut, "no retries where it is left out", nil)
	if s := policyKstatus(t, uts, "UpstreamTrafficSetting"); s != status.FailedStatus {
		t.Errorf("kstatus of a setting left out %s, want Failed", s)
	}

	web := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
	if err := k8s.Create(ctx, web); err != nil {
		t.Fatal(err)
	}
	readyIs(t, uts, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "In effect in mesh "+mi.Name, func() error {
		if uts.Status.CurrentStatus != policyv1alpha1.IngressBackendCommitted {
			return fmt.Errorf("OSM status %q", uts.Status.CurrentStatus)
		}
		return nil
	})
	readyIs(t, retry, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "In effect in mesh "+mi.Name, nil)
	for kind, o := range map[string]client.Object{"UpstreamTrafficSetting": uts, "Retry": retry} {
		if s := policyKstatus(t, o, kind); s != status.CurrentStatus {
			t.Errorf("kstatus of a %s in effect %s, want Current", kind, s)
		}
	}
}
