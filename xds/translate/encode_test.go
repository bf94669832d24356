package translate_test

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// Every resource's encoding, shared or spliced from shared chains, is the
// deterministic encoding of the resource, in every group, and encoding a
// group leaves its resources (shared ones too) as they were.
func TestEncodingsAreTheResources(t *testing.T) {
	in := meshtest.Synthetic(meshtest.Size{Namespaces: 3, Services: 30, PodsPerService: 3, IdentitiesPerService: 2, Splits: 3, Permissive: true, HTTPRoutes: 3, ResiliencePolicies: 3})
	m, _ := mesh.Build(in)
	sh := translate.NewShared()
	var all []*translate.Resources
	for _, g := range m.Groups {
		r, err := sh.Translate(m.View(g), certs)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, r)
	}
	for _, r := range all {
		for _, msg := range allResources(r) {
			want, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
			if err != nil {
				t.Fatal(err)
			}
			e, err := r.Encode(msg)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.Wire.Bytes(); !bytes.Equal(got, want) {
				t.Fatalf("%T %s: encoding differs from the resource's (%d vs %d bytes)", msg, e.Wire.GetName(), len(got), len(want))
			}
			again, _ := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
			if !bytes.Equal(again, want) {
				t.Fatalf("%T %s changed while encoded", msg, e.Wire.GetName())
			}
		}
	}
}
