package controllers

import (
	"errors"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

func TestIngressBackendStatus(t *testing.T) {
	ready, reconciling, stalled := meshv1alpha1.ConditionReady, meshv1alpha1.ConditionReconciling, meshv1alpha1.ConditionStalled
	for _, tc := range []struct {
		name   string
		facts  policyFacts
		status string
		reason string // part of status.reason
		wants  map[string]want
	}{
		{
			name: "in effect", facts: policyFacts{mesh: "books"}, status: policyv1alpha1.IngressBackendCommitted, reason: "In effect in mesh books",
			wants: map[string]want{
				ready:       {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "In effect in mesh books"},
				reconciling: {}, stalled: {},
			},
		},
		{
			name:   "namespace in no mesh",
			facts:  policyFacts{},
			status: policyv1alpha1.IngressBackendError, reason: "namespace shop is a member of no mesh: no mesh reads this IngressBackend",
			wants: map[string]want{
				ready:       {metav1.ConditionFalse, policyv1alpha1.ReasonNamespaceNotInMesh, "no mesh reads this IngressBackend"},
				stalled:     {metav1.ConditionTrue, policyv1alpha1.ReasonNamespaceNotInMesh, "member of no mesh"},
				reconciling: {},
			},
		},
		{
			name:   "labelled for a mesh that does not exist",
			facts:  policyFacts{label: "gone"},
			status: policyv1alpha1.IngressBackendError, reason: "labelled for mesh gone, which does not exist or is being deleted",
			wants: map[string]want{
				ready:       {metav1.ConditionFalse, meshv1alpha1.ReasonMeshNotFound, "mesh gone, which does not exist or is being deleted"},
				reconciling: {metav1.ConditionTrue, meshv1alpha1.ReasonMeshNotFound, ""},
				stalled:     {},
			},
		},
		{
			name: "what does not resolve is listed",
			facts: policyFacts{mesh: "books", problems: []string{
				"spec.backends[0].name: Service shop/web not found", "spec.sources[1]: Service ingress/nginx not found",
			}},
			status: policyv1alpha1.IngressBackendError, reason: "Service shop/web not found; spec.sources[1]: Service ingress/nginx not found",
			wants: map[string]want{
				ready:       {metav1.ConditionFalse, policyv1alpha1.ReasonLeftOut, "mesh books left out what does not resolve"},
				stalled:     {metav1.ConditionTrue, policyv1alpha1.ReasonLeftOut, "spec.backends[0].name: Service shop/web not found"},
				reconciling: {},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ib := &policyv1alpha1.IngressBackend{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Generation: 3}}
			// A status of an older generation, of the other outcome, is replaced.
			ib.Status.Conditions = []metav1.Condition{{Type: stalled, Status: metav1.ConditionTrue, Reason: "Old", ObservedGeneration: 2}}
			st := ingressBackendStatus(ib, tc.facts)
			if st.CurrentStatus != tc.status || !strings.Contains(st.Reason, tc.reason) {
				t.Errorf("currentStatus %q, reason %q; want %q containing %q", st.CurrentStatus, st.Reason, tc.status, tc.reason)
			}
			if st.ObservedGeneration != 3 {
				t.Errorf("observedGeneration %d, want 3", st.ObservedGeneration)
			}
			for _, c := range st.Conditions {
				if c.ObservedGeneration != 3 {
					t.Errorf("%s of generation %d, want 3", c.Type, c.ObservedGeneration)
				}
			}
			checkConditions(t, st.Conditions, tc.wants)
		})
	}
}

func TestEgressStatus(t *testing.T) {
	eg := &policyv1alpha1.Egress{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "out", Generation: 1}}
	st := egressStatus(eg, policyFacts{mesh: "books", egressAllowed: true})
	checkConditions(t, st.Conditions, map[string]want{
		meshv1alpha1.ConditionReady: {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "spec.egress.mode Allow lets every workload out already"},
	})
	st = egressStatus(eg, policyFacts{mesh: "books", problems: []string{"spec.sources[0]: service account shop/web does not exist"}})
	checkConditions(t, st.Conditions, map[string]want{
		meshv1alpha1.ConditionReady:   {metav1.ConditionFalse, policyv1alpha1.ReasonLeftOut, "service account shop/web does not exist"},
		meshv1alpha1.ConditionStalled: {metav1.ConditionTrue, policyv1alpha1.ReasonLeftOut, ""},
	})
}

// A problem message quotes what the user wrote, and the API server refuses
// a condition message past 32 kB: the status stays writable.
func TestPolicyMessageIsBounded(t *testing.T) {
	eg := &policyv1alpha1.Egress{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "out"}}
	st := egressStatus(eg, policyFacts{mesh: "books", problems: []string{strings.Repeat("x", 40000), strings.Repeat("y", 40000)}})
	for _, c := range st.Conditions {
		if len(c.Message) > maxPolicyMessage {
			t.Errorf("%s message of %d bytes, want at most %d", c.Type, len(c.Message), maxPolicyMessage)
		}
	}
}

// The problems of a policy are those naming it whose Source is it: not
// another kind's of the same name, nor those of an object of the same name
// deleted and made again.
func TestProblemsOf(t *testing.T) {
	ib := &policyv1alpha1.IngressBackend{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: types.UID("ib")}}
	eg := &policyv1alpha1.Egress{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: types.UID("eg")}}
	old := &policyv1alpha1.IngressBackend{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: types.UID("old")}}
	problems := []mesh.Problem{
		{Object: "Egress shop/web", Err: errors.New("egress"), Source: eg},
		{Object: "IngressBackend shop/web", Err: errors.New("mine"), Source: ib},
		{Object: "IngressBackend shop/web", Err: errors.New("old"), Source: old},
		{Object: "IngressBackend shop/web2", Err: errors.New("other"), Source: ib},
	}
	if got := problemsOf("IngressBackend", ib, problems); !slices.Equal(got, []string{"mine"}) {
		t.Errorf("problems of the IngressBackend %v, want [mine]", got)
	}
	if got := problemsOf("Egress", eg, problems); !slices.Equal(got, []string{"egress"}) {
		t.Errorf("problems of the Egress %v, want [egress]", got)
	}
}

// The mesh reports on the policies of its namespaces only, and never
// changes the cache's objects.
func TestMeshPolicyReports(t *testing.T) {
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "books"}}
	mine := &policyv1alpha1.IngressBackend{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "1"}}
	theirs := &policyv1alpha1.IngressBackend{ObjectMeta: metav1.ObjectMeta{Namespace: "elsewhere", Name: "web", UID: "2"}}
	eg := &policyv1alpha1.Egress{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "out", UID: "3"}}
	in := mesh.Inputs{IngressBackends: []*policyv1alpha1.IngressBackend{mine, theirs}, Egresses: []*policyv1alpha1.Egress{eg}}
	reports := meshPolicyReports(mi, []string{"shop"}, in, &mesh.Mesh{}, []mesh.Problem{{Object: "Egress shop/out", Err: errors.New("unresolved"), Source: eg}})
	if len(reports) != 2 {
		t.Fatalf("%d reports, want 2 (the policies of namespace shop)", len(reports))
	}
	if got := reports[0].obj.(*policyv1alpha1.IngressBackend); got.Name != "web" || got.Namespace != "shop" || got.Status.CurrentStatus != policyv1alpha1.IngressBackendCommitted {
		t.Errorf("first report %s/%s %q, want shop/web committed", got.Namespace, got.Name, got.Status.CurrentStatus)
	}
	checkConditions(t, *reports[1].obj.StatusConditions(), map[string]want{
		meshv1alpha1.ConditionReady: {metav1.ConditionFalse, policyv1alpha1.ReasonLeftOut, "unresolved"},
	})
	if mine.Status.CurrentStatus != "" || len(eg.Status.Conditions) != 0 || len(*reports[0].before.StatusConditions()) != 0 {
		t.Error("the cache's objects were changed")
	}
}
