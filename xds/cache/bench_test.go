package cache_test

import (
	"context"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

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

// BenchmarkFullPush is the CPU of a full push to the fleet: the
// model built and every group translated (the translation), then every
// group published and, for each of the 10,000 proxies (5 per group), each
// type's response made and encoded as the gRPC stream encodes it. It
// reports the push's cost as a multiple of the translation's alone, and
// the bytes each proxy is sent.
func BenchmarkFullPush(b *testing.B) {
	for _, c := range []struct {
		name string
		sz   meshtest.Size
	}{
		{"SMI", meshtest.Size{Namespaces: 10, Services: 1000, PodsPerService: 10, IdentitiesPerService: 2}},
		{"Permissive", meshtest.Size{Namespaces: 10, Services: 1000, PodsPerService: 10, IdentitiesPerService: 2, Permissive: true}},
		{"Permissive+scoped", meshtest.Size{Namespaces: 10, Services: 1000, PodsPerService: 10, IdentitiesPerService: 2, Permissive: true, Scoped: true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			in := meshtest.Synthetic(c.sz)
			const proxiesPerGroup = 5
			var translating, pushing time.Duration
			var sent int
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				m, _ := mesh.Build(in)
				sh := translate.NewShared()
				groups := map[string]*translate.Resources{}
				for _, g := range m.Groups {
					r, err := sh.Translate(m.View(g), certs)
					if err != nil {
						b.Fatal(err)
					}
					groups[g.String()] = r
				}
				translated := time.Now()
				translating += translated.Sub(start)
				nodes := &cache.Nodes{}
				c := cache.New(nodes, nil)
				sent = 0
				for g, r := range groups {
					if _, err := c.Update(context.Background(), g, r); err != nil {
						b.Fatal(err)
					}
					node := nodes.Pin(&corev3.Node{Id: g}, g)
					for range proxiesPerGroup {
						for _, url := range []string{resourcev3.ListenerType, resourcev3.RouteType, resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.SecretType} {
							resp, err := c.Fetch(context.Background(), &discoveryv3.DiscoveryRequest{Node: node, TypeUrl: url})
							if err != nil {
								b.Fatal(err)
							}
							out, err := resp.GetDiscoveryResponse()
							if err != nil {
								b.Fatal(err)
							}
							wire, err := proto.Marshal(out)
							if err != nil {
								b.Fatal(err)
							}
							sent += len(wire)
						}
					}
				}
				pushing += time.Since(translated)
			}
			b.ReportMetric(float64(translating+pushing)/float64(translating), "push/translation")
			b.ReportMetric(float64(sent)/float64(len(in.Pods)), "bytes/proxy")
		})
	}
}
