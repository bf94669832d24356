package translate_test

import (
	"fmt"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// The mesh: 1,000 services, 10,000 endpoints, 2,000 identities and
// 2,000 TrafficTargets.
var large = meshtest.Size{Namespaces: 10, Services: 1000, PodsPerService: 10, IdentitiesPerService: 2}

// BenchmarkFullTranslation builds the model and translates every proxy group:
// what a cold start or a policy change costs.
func BenchmarkFullTranslation(b *testing.B) {
	permissive := large
	permissive.Permissive = true
	for _, sz := range []meshtest.Size{large, permissive, routed(large), routed(permissive)} {
		name := "SMI"
		if sz.Permissive {
			name = "Permissive"
		}
		if sz.HTTPRoutes > 0 {
			name += "+routes"
		}
		b.Run(fmt.Sprintf("%s/services=%d/endpoints=%d", name, sz.Services, sz.Services*sz.PodsPerService), func(b *testing.B) {
			groups, bytes := fullUpdates(b, meshtest.Synthetic(sz))
			// What the proxies of one group are sent, on average.
			b.ReportMetric(float64(bytes)/float64(groups), "bytes/group")
			b.ReportMetric(float64(groups), "groups")
		})
	}
}

// BenchmarkOSMShape is the mesh OSM v1.2.4 was measured with (issue 8): S
// services of one HTTP port 8080 and one service account each, P=10 pods per
// service, a TrafficTarget svc-i → svc-(i+1) mod S with one match-all
// HTTPRouteGroup per destination, or the same mesh permissive. One op is a
// full update: the model built and the config of every proxy translated
// (once per group: the S*P proxies fall into S groups). bytes/proxy is the
// config each proxy is sent; OSM took ~3 s (S=100) and ~413 s (S=1,000) in
// SMI mode, ~10 s and ~1,150 s permissive, generating per proxy.
func BenchmarkOSMShape(b *testing.B) {
	for _, permissive := range []bool{false, true} {
		for _, services := range []int{100, 1000} {
			sz := meshtest.Size{Namespaces: 10, Services: services, PodsPerService: 10, IdentitiesPerService: 1, Permissive: permissive}
			mode := "SMI"
			if permissive {
				mode = "Permissive"
			}
			b.Run(fmt.Sprintf("%s/S=%d/P=10", mode, services), func(b *testing.B) {
				groups, bytes := fullUpdates(b, meshtest.Synthetic(sz))
				proxies := services * sz.PodsPerService
				b.ReportMetric(float64(bytes)/float64(groups), "bytes/proxy")
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(proxies), "µs/proxy")
				b.ReportMetric(float64(groups), "groups")
			})
		}
	}
}

// fullUpdates builds the model of in and translates every group, b.N times;
// it returns the number of groups and the bytes of config they hold.
func fullUpdates(b *testing.B, in mesh.Inputs) (groups, bytes int) {
	b.ReportAllocs()
	var out []*translate.Resources
	for b.Loop() {
		m, _ := mesh.Build(in)
		sh := translate.NewShared()
		out = out[:0]
		for _, g := range m.Groups {
			res, err := sh.Translate(m.View(g), certs)
			if err != nil {
				b.Fatal(err)
			}
			out = append(out, res)
		}
	}
	b.StopTimer()
	for _, res := range out {
		bytes += size(res)
	}
	return len(out), bytes
}

// routed is sz with an HTTPRoute of three rules and a ResiliencePolicy
// per service.
func routed(sz meshtest.Size) meshtest.Size {
	sz.HTTPRoutes, sz.ResiliencePolicies = sz.Services, sz.Services
	return sz
}

// BenchmarkEndpointChange is the work one endpoint change costs the runner:
// rebuild the model, then translate the groups whose last translation
// depended on the changed service (its callers and its own identities).
func BenchmarkEndpointChange(b *testing.B) {
	b.Run("SMI", func(b *testing.B) { endpointChange(b, large) })
	b.Run("SMI+routes", func(b *testing.B) { endpointChange(b, routed(large)) })
	permissive := large
	permissive.Permissive = true
	b.Run("Permissive", func(b *testing.B) { endpointChange(b, permissive) })
}

func endpointChange(b *testing.B, sz meshtest.Size) {
	in := meshtest.Synthetic(sz)
	es := in.EndpointSlices[500]
	key := mesh.ServiceKey{Namespace: es.Namespace, Name: es.Labels["kubernetes.io/service-name"]}
	m, _ := mesh.Build(in)
	var touched []mesh.Group
	for _, g := range m.Groups {
		if slices.Contains(m.View(g).Dependencies(), key) {
			touched = append(touched, g)
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		es.Endpoints[0].Addresses[0] = fmt.Sprintf("10.200.%d.%d", i/250%250, i%250+1)
		m, _ := mesh.Build(in)
		sh := translate.NewShared()
		for _, g := range touched {
			if _, err := sh.Translate(m.View(g), certs); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(touched)), "groups-translated")
}

// BenchmarkModelBuild is the model rebuild alone.
func BenchmarkModelBuild(b *testing.B) {
	for name, sz := range map[string]meshtest.Size{"SMI": large, "SMI+routes": routed(large)} {
		b.Run(name, func(b *testing.B) {
			in := meshtest.Synthetic(sz)
			b.ReportAllocs()
			for b.Loop() {
				mesh.Build(in)
			}
		})
	}
}

var certs = &translate.Certificates{CertChain: []byte("cert"), PrivateKey: []byte("key"), TrustBundle: []byte("ca")}

func size(r *translate.Resources) int {
	n := 0
	for _, x := range r.Listeners {
		n += protoSize(x)
	}
	for _, x := range r.Routes {
		n += protoSize(x)
	}
	for _, x := range r.Clusters {
		n += protoSize(x)
	}
	for _, x := range r.Endpoints {
		n += protoSize(x)
	}
	return n
}

func protoSize(m proto.Message) int { return proto.Size(m) }
