package mesh_test

import (
	"slices"
	"testing"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
)

// TestIngressSourcesAreMeshedIdentities: an IngressBackend's source names
// an ingress source by a Service of the mesh (the identities of its
// endpoints with a proxy) or by an AuthenticatedPrincipal that is a mesh
// identity, as a SPIFFE ID of the mesh's trust domain or as OSM's
// sa.namespace.trustDomain; an IPRange, another trust domain's ID or a
// namespace outside the mesh names none.
func TestIngressSourcesAreMeshedIdentities(t *testing.T) {
	in, err := meshtest.Decode([]byte(base + `
---
apiVersion: policy.openservicemesh.io/v1alpha1
kind: IngressBackend
metadata: {name: web, namespace: shop}
spec:
  backends:
  - {name: web, port: {number: 8080, protocol: https}}
  sources:
  - {kind: AuthenticatedPrincipal, name: "spiffe://cluster.local/ns/shop/sa/edge"}
  - {kind: AuthenticatedPrincipal, name: "gateway.shop.cluster.local"}
  - {kind: AuthenticatedPrincipal, name: "spiffe://other.domain/ns/shop/sa/intruder"}
  - {kind: AuthenticatedPrincipal, name: "nginx.elsewhere.cluster.local"}
  - {kind: IPRange, name: 10.0.0.0/8}
`))
	if err != nil {
		t.Fatal(err)
	}
	in.Mesh.Spec.TrustDomain = "cluster.local"
	m, _ := mesh.Build(in)
	want := []mesh.IngressSourceTarget{{Service: mesh.ServiceKey{Namespace: "shop", Name: "web"}, TargetPort: 8080}}
	for _, sa := range []string{"edge", "gateway"} {
		if got := m.IngressTargets(mesh.Identity{Namespace: "shop", ServiceAccount: sa}); !slices.Equal(got, want) {
			t.Errorf("shop/%s calls %v by endpoint, want %v", sa, got, want)
		}
	}
	for _, id := range []mesh.Identity{{Namespace: "shop", ServiceAccount: "intruder"}, {Namespace: "elsewhere", ServiceAccount: "nginx"}} {
		if got := m.IngressTargets(id); len(got) != 0 {
			t.Errorf("%s is no ingress source of the mesh, yet calls %v by endpoint", id, got)
		}
	}
}
