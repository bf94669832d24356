package mesh_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
)

func setting(ns, name, host string, created time.Time, maxConnections int64) *policyv1alpha1.UpstreamTrafficSetting {
	return &policyv1alpha1.UpstreamTrafficSetting{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, CreationTimestamp: metav1.NewTime(created)},
		Spec: policyv1alpha1.UpstreamTrafficSettingSpec{Host: host, ConnectionSettings: &policyv1alpha1.ConnectionSettings{
			TCP: &policyv1alpha1.TCPConnectionSettings{MaxConnections: ptr.To(maxConnections)}}},
	}
}

func maxConnections(m *mesh.Mesh, s mesh.ServiceKey) int32 {
	r := m.Resilience(s, 8080)
	if r == nil || r.Connections == nil || r.Connections.MaxConnections == nil {
		return 0
	}
	return *r.Connections.MaxConnections
}

// TestUpstreamTrafficSettingsMergeWithResiliencePolicies: an
// UpstreamTrafficSetting is a policy of its whole host Service, ranked
// with the ResiliencePolicies: a policy of the port wins over it, and of
// two of the whole Service the older wins; the loser is reported. A host
// is matched as a cluster DNS name, in any case, of the cluster's domain.
func TestUpstreamTrafficSettingsMergeWithResiliencePolicies(t *testing.T) {
	in := meshtest.Synthetic(meshtest.Size{Namespaces: 3, Services: 6, PodsPerService: 1, IdentitiesPerService: 1, Permissive: true})
	in.ClusterDomain = "corp.example"
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	svc0, svc1, svc2 := mesh.ServiceKey{Namespace: "ns-0", Name: "svc-0"}, mesh.ServiceKey{Namespace: "ns-1", Name: "svc-1"}, mesh.ServiceKey{Namespace: "ns-2", Name: "svc-2"}
	in.UpstreamTrafficSettings = append(in.UpstreamTrafficSettings,
		setting("ns-0", "uts-0", "SVC-0.ns-0.svc.corp.example", t0, 10),
		setting("ns-1", "uts-1", "svc-1.ns-1.svc.corp.example", t0, 11),
		setting("ns-2", "uts-2", "svc-2.ns-2.svc.corp.example", t0.Add(time.Hour), 12),
		// The default domain is not this cluster's.
		setting("ns-0", "wrong-domain", "svc-3.ns-0.svc.cluster.local", t0, 13),
	)
	policy := func(ns, name string, created time.Time, section *gwv1.SectionName, n int32) *meshv1alpha1.ResiliencePolicy {
		return &meshv1alpha1.ResiliencePolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, CreationTimestamp: metav1.NewTime(created)},
			Spec: meshv1alpha1.ResiliencePolicySpec{TargetRefs: []gwv1.LocalPolicyTargetReferenceWithSectionName{{
				LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{Kind: "Service", Name: gwv1.ObjectName("svc-" + ns[3:])}, SectionName: section}},
				Resilience: meshv1alpha1.Resilience{Connections: &meshv1alpha1.ConnectionLimits{MaxConnections: ptr.To(n)}}}}
	}
	in.ResiliencePolicies = append(in.ResiliencePolicies,
		// Newer, but of the port: wins over uts-1.
		policy("ns-1", "port", t0.Add(time.Hour), ptr.To(gwv1.SectionName("http")), 21),
		// Older, of the whole Service: wins over uts-2.
		policy("ns-2", "older", t0, nil, 22),
	)
	m, problems := mesh.Build(in)
	for s, want := range map[mesh.ServiceKey]int32{svc0: 10, svc1: 21, svc2: 22} {
		if got := maxConnections(m, s); got != want {
			t.Errorf("%s: maxConnections %d, want %d", s, got, want)
		}
	}
	if got := maxConnections(m, mesh.ServiceKey{Namespace: "ns-0", Name: "svc-3"}); got != 0 {
		t.Errorf("a host of another cluster domain applied: maxConnections %d", got)
	}
	want := map[string]string{
		"UpstreamTrafficSetting ns-1/uts-1":        "to ResiliencePolicy port",
		"UpstreamTrafficSetting ns-2/uts-2":        "to ResiliencePolicy older",
		"UpstreamTrafficSetting ns-0/wrong-domain": "is not the name of a Service",
	}
	for _, p := range problems {
		if w, ok := want[p.Object]; ok && strings.Contains(p.Err.Error(), w) {
			delete(want, p.Object)
		}
	}
	if len(want) > 0 {
		t.Errorf("problems %v do not report %v", problems, want)
	}
	for _, st := range m.ResilienceStatuses {
		if !st.Accepted.OK {
			t.Errorf("ResiliencePolicy %s/%s not accepted: %s", st.Namespace, st.Name, st.Accepted.Message)
		}
	}
}

// TestOSMPoliciesCannotReachPastTheirNamespace: what a namespace's OSM
// policies can do to others. An UpstreamTrafficSetting tunes every
// caller's proxies to its host, so only the host's namespace may write
// it; a Retry changes what its source's proxies send, so only the
// source's namespace may. Neither applies from a namespace of no mesh.
func TestOSMPoliciesCannotReachPastTheirNamespace(t *testing.T) {
	in := meshtest.Synthetic(meshtest.Size{Namespaces: 3, Services: 6, PodsPerService: 1, IdentitiesPerService: 1, Permissive: true})
	in.Namespaces = append(in.Namespaces, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "outside"}})
	victim := mesh.ServiceKey{Namespace: "ns-0", Name: "svc-0"}
	victimCaller := mesh.Identity{Namespace: "ns-0", ServiceAccount: "svc-3-sa-0"}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	retry := func(ns, name string, src mesh.Identity, dst mesh.ServiceKey) *policyv1alpha1.Retry {
		return &policyv1alpha1.Retry{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, CreationTimestamp: metav1.NewTime(t0)},
			Spec: policyv1alpha1.RetrySpec{
				Source:       policyv1alpha1.RetrySource{Kind: policyv1alpha1.RetrySourceServiceAccount, Name: src.ServiceAccount, Namespace: src.Namespace},
				Destinations: []policyv1alpha1.RetryDestination{{Kind: policyv1alpha1.RetryDestinationService, Name: dst.Name, Namespace: dst.Namespace}},
				RetryPolicy:  policyv1alpha1.RetryPolicySpec{RetryOn: "5xx", NumRetries: ptr.To[int64](1000)},
			}}
	}
	in.UpstreamTrafficSettings = append(in.UpstreamTrafficSettings,
		// ns-1 would cut every caller of ns-0's svc-0 to one connection.
		setting("ns-1", "throttle", "svc-0.ns-0.svc.cluster.local", t0, 1),
		setting("outside", "throttle", "svc-0.ns-0.svc.cluster.local", t0, 1),
	)
	in.Retries = append(in.Retries,
		// ns-1 would make ns-0's callers retry a thousand times.
		retry("ns-1", "storm", victimCaller, victim),
		retry("outside", "storm", victimCaller, victim),
	)
	m, problems := mesh.Build(in)
	if got := maxConnections(m, victim); got != 0 {
		t.Errorf("another namespace's setting applies to %s: maxConnections %d", victim, got)
	}
	if r := m.RetryTo(victimCaller, victim); r != nil {
		t.Errorf("another namespace's Retry applies to %s: %+v", victimCaller, r)
	}
	reported := map[string]bool{}
	for _, p := range problems {
		reported[p.Object] = true
	}
	for _, o := range []string{"UpstreamTrafficSetting ns-1/throttle", "Retry ns-1/storm"} {
		if !reported[o] {
			t.Errorf("%s is not reported: %v", o, problems)
		}
	}
	for _, o := range []string{"UpstreamTrafficSetting outside/throttle", "Retry outside/storm"} {
		if reported[o] {
			t.Errorf("%s, of a namespace of no mesh, is reported by this mesh", o)
		}
	}

	// The source's own namespace may; the older of two Retries applies.
	in.Retries = append(in.Retries, retry("ns-0", "own", victimCaller, victim), retry("ns-0", "own-later", victimCaller, victim))
	in.Retries[len(in.Retries)-1].CreationTimestamp = metav1.NewTime(t0.Add(time.Minute))
	in.Retries[len(in.Retries)-1].Spec.RetryPolicy.NumRetries = ptr.To[int64](7)
	m, _ = mesh.Build(in)
	if r := m.RetryTo(victimCaller, victim); r == nil || r.NumRetries != 1000 || r.BackoffBase != 25*time.Millisecond {
		t.Errorf("the source namespace's older Retry: got %+v", r)
	}
}

// TestObjectsHoldsEveryInput: Objects lists every object field of the
// inputs, so that what reads them whole (plan) misses none.
func TestObjectsHoldsEveryInput(t *testing.T) {
	var in mesh.Inputs
	v := reflect.ValueOf(&in).Elem()
	fields := 0
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() != reflect.Slice {
			continue
		}
		fields++
		elem := reflect.New(f.Type().Elem().Elem())
		f.Set(reflect.Append(f, elem))
	}
	if got := len(in.Objects()); got != fields {
		t.Errorf("Objects returns %d objects of inputs with one in each of %d fields", got, fields)
	}
}
