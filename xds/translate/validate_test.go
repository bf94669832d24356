package translate_test

import (
	"strings"
	"testing"

	"github.com/open-service-mesh/osm-operator/xds/envoyrules"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// TestInvalidResourcesAreRefused: a model that would give Envoy an invalid
// resource (here an empty header regex, which the model builder turns into ".*") makes
// Translate fail, naming the typed config that holds it, so the group keeps its last good
// snapshot instead of proxies receiving config they would reject. An empty
// regex sits deep inside an RBAC filter packed in an Any, where Envoy's
// validation rules of the listener do not reach.
func TestInvalidResourcesAreRefused(t *testing.T) {
	v := webView(mesh.HTTPMatch{Name: "bad", Headers: map[string]string{"user-agent": ""}})
	_, err := translate.Translate(v, nil)
	if err == nil {
		t.Fatal("an invalid header matcher was translated")
	}
	if !strings.Contains(err.Error(), "envoy.extensions.filters.http.rbac.v3.RBAC") || !strings.Contains(err.Error(), "Regex") {
		t.Errorf("the error does not name the resource: %v", err)
	}
}

// TestConfigEnvoyWouldRefuseIsRefused: a model the model builder would not
// make (a path regex past the proxies' RE2 program size, which the builder
// and the webhook refuse) makes Translate fail with a load rule's
// violation, so that the group keeps its last good snapshot instead of
// every proxy of the group NACKing its listeners.
func TestConfigEnvoyWouldRefuseIsRefused(t *testing.T) {
	v := webView(mesh.HTTPMatch{Name: "big", PathRegex: "/[a-z]{600}/[0-9]{600}"})
	_, err := translate.Translate(v, nil)
	if !envoyrules.IsViolation(err) {
		t.Fatalf("a regex Envoy refuses was translated: %v", err)
	}
	if !strings.Contains(err.Error(), "RE2 program size of 1206 > max program size of 1000") {
		t.Errorf("the error does not say what Envoy would: %v", err)
	}
}

// webView is the view of shop/web's group, which serves HTTP on port 80 and
// lets shop/client make the requests match describes: made by hand, as the
// model builder would not make it.
func webView(match mesh.HTTPMatch) *mesh.View {
	dst := mesh.Identity{Namespace: "shop", ServiceAccount: "web"}
	svc := &mesh.Service{
		Key:        mesh.ServiceKey{Namespace: "shop", Name: "web"},
		ClusterIPs: []string{"10.96.0.1"},
		Ports:      []mesh.Port{{Name: "http", Port: 80, Protocol: mesh.ProtocolHTTP}},
		Endpoints:  []mesh.Endpoint{{Address: "10.1.0.1", Ports: map[string]int32{"http": 8080}, Ready: true, Serving: true, Identity: dst}},
		Identities: []mesh.Identity{dst},
	}
	m := &mesh.Mesh{Name: "osm", TrustDomain: "cluster.local", ClusterDomain: mesh.DefaultClusterDomain, Mode: mesh.ModeSMI, Services: []*mesh.Service{svc}}
	v := &mesh.View{
		Mesh:    m,
		Group:   mesh.Group{Kind: mesh.ProxyEnvoy, Identity: dst},
		Inbound: []*mesh.Service{svc},
		Policies: []*mesh.Policy{{
			Namespace: "shop", Name: "tt", Destination: dst,
			Sources: []mesh.Identity{{Namespace: "shop", ServiceAccount: "client"}},
			HTTP:    []mesh.HTTPMatch{match},
		}},
	}
	return v
}
