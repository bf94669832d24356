package translate_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/open-service-mesh/osm-operator/xds/envoyrules"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// FuzzTranslate feeds the model builder and the translator arbitrary
// manifests (Namespaces, Services, EndpointSlices, Pods, MeshVMs, SMI
// objects): nothing may panic, and every group either translates into
// resources that pass Envoy's validation rules and load rules and are
// consistent, or fails with an error that is not a load rule's (the group
// then keeps its last good snapshot): the translator never makes a config
// Envoy would refuse. The seeds are
// the golden inputs; `go test -fuzz FuzzTranslate ./xds/translate` explores
// from them, and what it finds lands in testdata/fuzz.
func FuzzTranslate(f *testing.F) {
	ins, err := filepath.Glob("testdata/in/*.yaml")
	if err != nil || len(ins) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, in := range ins {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, manifest []byte) {
		// A small manifest that takes seconds is a way to stall every
		// replica's runner: crash, so the fuzzer keeps the input.
		stall := time.AfterFunc(10*time.Second, func() { panic("translating a fuzzed manifest took over 10 s") })
		defer stall.Stop()
		in, err := meshtest.Decode(manifest)
		if err != nil || in.Mesh == nil {
			return // not a mesh: the API server would not have served it
		}
		m, _ := mesh.Build(in)
		sh := translate.NewShared()
		for _, g := range m.Groups {
			r, err := sh.Translate(m.View(g), fakeCerts(g))
			if envoyrules.IsViolation(err) {
				t.Errorf("group %s: the translator made a config Envoy would refuse: %v", g, err)
			}
			if err != nil {
				continue // reported; the group keeps its last good config
			}
			if err := r.Consistent(); err != nil {
				t.Errorf("group %s: translated resources are inconsistent: %v", g, err)
			}
			for _, res := range allResources(r) {
				if err := res.(interface{ ValidateAll() error }).ValidateAll(); err != nil {
					t.Errorf("group %s: %T %v is invalid: %v", g, res, res, err)
				}
			}
		}
	})
}

func allResources(r *translate.Resources) []proto.Message {
	var out []proto.Message
	for _, x := range r.Listeners {
		out = append(out, x)
	}
	for _, x := range r.Routes {
		out = append(out, x)
	}
	for _, x := range r.Clusters {
		out = append(out, x)
	}
	for _, x := range r.Endpoints {
		out = append(out, x)
	}
	for _, x := range r.Secrets {
		out = append(out, x)
	}
	return out
}
