package mesh_test

import (
	"os"
	"slices"
	"testing"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
)

// TestIngressSourcesAreMeshedIdentities: a meshed ingress controller is
// the identity of a Service source's endpoints with a proxy; it calls the
// IngressBackend's http backends by endpoint address, its sidecar carrying
// its plaintext HTTP in the mesh's mutual TLS (and SMI authorizing it). An
// https backend is none of its endpoint targets: the controller sends its
// own TLS there, which the sidecar's HTTP chain would break. An
// AuthenticatedPrincipal names the certificate of a caller outside the
// mesh, never a meshed group, even when it reads as a mesh identity; an
// IPRange names none.
func TestIngressSourcesAreMeshedIdentities(t *testing.T) {
	data, err := os.ReadFile("../translate/testdata/in/ingress-by-endpoint.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in, err := meshtest.Decode(append(data, []byte(`
---
apiVersion: policy.openservicemesh.io/v1alpha1
kind: IngressBackend
metadata: {name: web-https, namespace: web}
spec:
  backends:
  - {name: web, port: {number: 8443, protocol: https}}
  sources:
  - {kind: Service, name: ingress-nginx, namespace: ingress}
  - {kind: AuthenticatedPrincipal, name: "spiffe://cluster.local/ns/web/sa/client"}
  - {kind: AuthenticatedPrincipal, name: "client.web.cluster.local"}
  - {kind: IPRange, name: 10.0.0.0/8}
`)...))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := mesh.Build(in)
	want := []mesh.IngressSourceTarget{{Service: mesh.ServiceKey{Namespace: "web", Name: "web"}, TargetPort: 8080}}
	if got := m.IngressTargets(mesh.Identity{Namespace: "ingress", ServiceAccount: "ingress-nginx"}); !slices.Equal(got, want) {
		t.Errorf("ingress/ingress-nginx calls %v by endpoint, want %v (the http backend only)", got, want)
	}
	if got := m.IngressTargets(mesh.Identity{Namespace: "web", ServiceAccount: "client"}); len(got) != 0 {
		t.Errorf("web/client, named only as an AuthenticatedPrincipal, calls %v by endpoint", got)
	}
}
