package plan_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/plan"
)

// bookstore is the live state of the bookstore golden's mesh.
func bookstore(t *testing.T) plan.State {
	t.Helper()
	in, err := meshtest.ReadFile("../translate/testdata/in/bookstore.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return plan.State{Inputs: in, Meshes: []*meshv1alpha1.MeshInstance{in.Mesh}}
}

func trafficTarget(name, rules string, sources ...string) *accessv1alpha3.TrafficTarget {
	tt := &accessv1alpha3.TrafficTarget{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "bookstore"}, Spec: accessv1alpha3.TrafficTargetSpec{
		Destination: accessv1alpha3.IdentityBindingSubject{Kind: "ServiceAccount", Name: "bookstore", Namespace: "bookstore"},
		Rules:       []accessv1alpha3.TrafficTargetRule{{Kind: "HTTPRouteGroup", Name: rules}},
	}}
	for _, s := range sources {
		tt.Spec.Sources = append(tt.Spec.Sources, accessv1alpha3.IdentityBindingSubject{Kind: "ServiceAccount", Name: s, Namespace: s})
	}
	return tt
}

func run(t *testing.T, objs ...client.Object) (plan.MeshPlan, []client.Object, string) {
	t.Helper()
	live := bookstore(t)
	after, ignored, err := plan.Apply(live, objs)
	if err != nil {
		t.Fatal(err)
	}
	plans := plan.Compute(bookstore(t), after)
	if len(plans) != 1 {
		t.Fatalf("%d plans, want the one mesh's", len(plans))
	}
	var out bytes.Buffer
	if err := plan.Write(&out, plans); err != nil {
		t.Fatal(err)
	}
	return plans[0], ignored, out.String()
}

// groups are the groups of the plan's changes.
func groups(p plan.MeshPlan) []string {
	var out []string
	for _, c := range p.Changes {
		out = append(out, c.Groups...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestUnchangedPlanIsEmpty: applying the live objects again changes nothing.
func TestUnchangedPlanIsEmpty(t *testing.T) {
	live := bookstore(t)
	p, _, out := run(t, live.Inputs.Objects()...)
	if !p.Empty() || len(p.Changes) != 0 {
		t.Errorf("re-applying the live objects: %+v", p)
	}
	if !strings.Contains(out, "mesh osm: no change (6 proxy groups)") {
		t.Errorf("output: %s", out)
	}
}

// TestNewTrafficTargetChangesItsGroupsOnly: a TrafficTarget letting
// bookthief call the bookstore changes the bookstore's config (its RBAC)
// and the bookthief's (which now sees the bookstore), and no other group's.
func TestNewTrafficTargetChangesItsGroupsOnly(t *testing.T) {
	p, _, out := run(t, trafficTarget("bookthief-to-bookstore", "bookstore-service-routes", "bookthief"))
	want := []string{"envoy/bookstore/bookstore", "envoy/bookthief/bookthief"}
	if got := groups(p); !slices.Equal(got, want) || p.Changed != 2 {
		t.Errorf("changed groups %v (%d), want %v\n%s", got, p.Changed, want, out)
	}
	if len(p.NewProblems)+len(p.GoneProblems) != 0 {
		t.Errorf("problems changed: %v, %v", p.NewProblems, p.GoneProblems)
	}
	// The bookstore's inbound listener names the new source; the diff says so.
	if !strings.Contains(out, "spiffe://cluster.local/ns/bookthief/sa/bookthief") || !strings.Contains(out, "~ listener") {
		t.Errorf("the diff does not show the new principal:\n%s", out)
	}
	t.Logf("plan:\n%s", out)
}

// TestInvalidObjectIsReported: a TrafficTarget whose rules name no
// HTTPRouteGroup that exists is a new problem, and a Deployment, which the
// mesh does not read, is returned unapplied.
func TestInvalidObjectIsReported(t *testing.T) {
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "bookstore"}}
	p, ignored, out := run(t, trafficTarget("broken", "no-such-routes", "bookthief"), dep)
	if len(p.NewProblems) != 1 || !strings.Contains(p.NewProblems[0], "TrafficTarget bookstore/broken") {
		t.Errorf("new problems %v, want the broken TrafficTarget's", p.NewProblems)
	}
	if !strings.Contains(out, "! new problem: TrafficTarget bookstore/broken") {
		t.Errorf("output does not print the problem:\n%s", out)
	}
	if len(ignored) != 1 || ignored[0] != dep {
		t.Errorf("ignored %v, want the Deployment", ignored)
	}
}
