package translate_test

import (
	"math/rand/v2"
	"testing"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// The same inputs must give the same config, byte for byte, in whatever
// order the informer cache lists them, or every sync would push changes no
// one made. Chained TrafficSplits (a backend that is
// the root of another split, here in a ring of ten) once gave views that
// depended on map order: callers of a split root saw a different part of the
// chain from one sync to the next.
func TestTranslationIsDeterministic(t *testing.T) {
	in := meshtest.Synthetic(meshtest.Size{Namespaces: 10, Services: 100, PodsPerService: 2, IdentitiesPerService: 2, Splits: 10, VMs: 5})
	hashes := func() map[string]string {
		m, problems := mesh.Build(in)
		shuffle(&in)
		if len(problems) > 0 {
			t.Fatal(problems)
		}
		sh := translate.NewShared()
		out := map[string]string{}
		for _, g := range m.Groups {
			r, err := sh.Translate(m.View(g), certs)
			if err != nil {
				t.Fatal(err)
			}
			add := func(kind, name string, h string, err error) {
				if err != nil {
					t.Fatal(err)
				}
				out[g.String()+" "+kind+" "+name] = h
			}
			for _, x := range r.Listeners {
				h, err := r.Hash(x)
				add("listener", x.GetName(), h, err)
			}
			for _, x := range r.Routes {
				h, err := r.Hash(x)
				add("route", x.GetName(), h, err)
			}
			for _, x := range r.Clusters {
				h, err := r.Hash(x)
				add("cluster", x.GetName(), h, err)
			}
			for _, x := range r.Endpoints {
				h, err := r.Hash(x)
				add("endpoints", x.GetClusterName(), h, err)
			}
		}
		return out
	}
	first := hashes()
	for range 5 {
		again := hashes()
		if len(again) != len(first) {
			t.Fatalf("%d resources, then %d", len(first), len(again))
		}
		for k, h := range first {
			if again[k] != h {
				t.Errorf("%s changed between two translations of the same inputs", k)
			}
		}
	}
}

// shuffle reorders every list of inputs, as the informer cache's map does.
func shuffle(in *mesh.Inputs) {
	shuffleAll(in.Namespaces)
	shuffleAll(in.Services)
	shuffleAll(in.EndpointSlices)
	shuffleAll(in.Pods)
	shuffleAll(in.VMs)
	shuffleAll(in.TrafficTargets)
	shuffleAll(in.HTTPRouteGroups)
	shuffleAll(in.TrafficSplits)
	for _, es := range in.EndpointSlices {
		shuffleAll(es.Endpoints)
	}
}

func shuffleAll[T any](s []T) { rand.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] }) }
