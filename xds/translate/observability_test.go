package translate_test

import (
	"os"
	"slices"
	"testing"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// Resources shared between groups carry observability settings of one
// namespace: groups whose settings differ (bookbuyer's MeshMember turns
// everything off) get their own chains and clusters, whatever the order
// in which one Shared translates them, and exactly what each gets when
// translated alone. In a Permissive mesh every group has the chains of
// every service, so the shared ones are many.
func TestSharedResourcesFollowObservability(t *testing.T) {
	data, err := os.ReadFile("testdata/in/observability.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in, err := meshtest.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	in.Mesh.Spec.TrafficPolicy.Mode = meshv1alpha1.TrafficPolicyPermissive
	m, _ := mesh.Build(in)
	alone := map[mesh.Group]*translate.Resources{}
	for _, g := range m.Groups {
		r, err := translate.Translate(m.View(g), fakeCerts(g))
		if err != nil {
			t.Fatal(err)
		}
		alone[g] = r
	}
	backward := slices.Clone(m.Groups)
	slices.Reverse(backward)
	for _, order := range [][]mesh.Group{m.Groups, backward} {
		sh := translate.NewShared()
		for _, g := range order {
			r, err := sh.Translate(m.View(g), fakeCerts(g))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(resourcesYAML(t, r)), string(resourcesYAML(t, alone[g])); got != want {
				t.Errorf("%s differs when translated with the other groups, %s first", g, order[0])
			}
		}
	}
}

// A JSON log format is a map: the same config must still pack to the same
// bytes, and hash alike, from one translation to the next, or every sync
// would push a change no one made.
func TestObservedConfigHashesAlike(t *testing.T) {
	data, err := os.ReadFile("testdata/in/observability.yaml")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for range 10 {
		in, err := meshtest.Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := mesh.Build(in)
		sh := translate.NewShared()
		for _, g := range m.Groups {
			r, err := sh.Translate(m.View(g), fakeCerts(g))
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range r.Listeners {
				h, err := r.Hash(l)
				if err != nil {
					t.Fatal(err)
				}
				k := g.String() + " listener " + l.GetName()
				if prev, ok := seen[k]; ok && prev != h {
					t.Fatalf("%s hashes differently from one translation to the next", k)
				}
				seen[k] = h
			}
		}
	}
}
