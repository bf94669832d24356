package mesh_test

import (
	"testing"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
)

// A Service's DNS name, which callers send as SNI and proxyless gRPC
// clients dial, has the cluster's domain, a setting (the operator's
// --cluster-domain), not cluster.local always.
func TestServiceNamesHaveTheClusterDomain(t *testing.T) {
	for domain, want := range map[string]string{
		"":             "web.shop.svc.cluster.local",
		"corp.example": "web.shop.svc.corp.example",
	} {
		in, err := meshtest.Decode([]byte(base))
		if err != nil {
			t.Fatal(err)
		}
		in.ClusterDomain = domain
		m, _ := mesh.Build(in)
		web := m.Service(mesh.ServiceKey{Namespace: "shop", Name: "web"})
		if web == nil {
			t.Fatal("no service shop/web in the fixture")
		}
		if got := m.FQDN(web.Key); got != want {
			t.Errorf("domain %q: FQDN %q, want %q", domain, got, want)
		}
	}
}
