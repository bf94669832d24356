package cache_test

import (
	"context"
	"testing"

	"github.com/open-service-mesh/osm-operator/xds/cache"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// BenchmarkPublishAll is the cache's share of a full sync: versioning and
// setting the snapshots of every group of the mesh (1,000 services,
// 10,000 endpoints, 2,000 identities), as a fresh replica does at start.
func BenchmarkPublishAll(b *testing.B) {
	for _, permissive := range []bool{false, true} {
		name := "SMI"
		if permissive {
			name = "Permissive"
		}
		b.Run(name, func(b *testing.B) {
			in := meshtest.Synthetic(meshtest.Size{Namespaces: 10, Services: 1000, PodsPerService: 10, IdentitiesPerService: 2, Permissive: permissive})
			m, _ := mesh.Build(in)
			sh := translate.NewShared()
			groups := map[string]*translate.Resources{}
			for _, g := range m.Groups {
				r, err := sh.Translate(m.View(g), &translate.Certificates{CertChain: []byte("c"), PrivateKey: []byte("k"), TrustBundle: []byte("ca")})
				if err != nil {
					b.Fatal(err)
				}
				groups[g.String()] = r
			}
			b.ReportAllocs()
			for b.Loop() {
				c := cache.New(&cache.Nodes{}, nil)
				for g, r := range groups {
					if _, err := c.Update(context.Background(), g, r); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
