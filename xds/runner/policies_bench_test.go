package runner

import (
	"testing"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
)

// BenchmarkPoliciesOf is what every sync adds to resolve the policies of
// the OSM-shaped mesh (1,000 services, 2,000 groups, 2,000 TrafficTargets,
// 50 TrafficSplits) to their groups, for the Enforced condition; and of
// that, mesh.Scopes.
func BenchmarkPoliciesOf(b *testing.B) {
	in := meshtest.Synthetic(meshtest.Size{Namespaces: 10, Services: 1000, PodsPerService: 10, IdentitiesPerService: 2, Splits: 50})
	m, ps := mesh.Build(in)
	deps := map[string]map[mesh.ServiceKey]bool{}
	for _, g := range m.Groups {
		d := map[mesh.ServiceKey]bool{}
		for _, k := range m.View(g).Dependencies() {
			d[k] = true
		}
		deps[g.String()] = d
	}
	b.Run("all", func(b *testing.B) {
		for b.Loop() {
			policiesOf(&in, m, ps, deps)
		}
	})
	b.Run("scopes", func(b *testing.B) {
		for b.Loop() {
			mesh.Scopes(&in, m)
		}
	})
}
