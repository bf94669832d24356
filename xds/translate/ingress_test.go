package translate_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/encoding/protojson"
	corev1 "k8s.io/api/core/v1"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// TestAnIngressSourcesListenerFollowsEndpoints: the outbound listener of a
// group an IngressBackend names as a source matches the backend's endpoint
// addresses, so it changes when a pod moves; an ordinary caller's does not
// (xds/cache's TestAnEndpointChangeChangesOnlyEndpoints holds the rest).
func TestAnIngressSourcesListenerFollowsEndpoints(t *testing.T) {
	data, err := os.ReadFile("testdata/in/ingress-by-endpoint.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ingress := mesh.Group{Kind: mesh.ProxyEnvoy, Identity: mesh.Identity{Namespace: "ingress", ServiceAccount: "ingress-nginx"}}
	client := mesh.Group{Kind: mesh.ProxyEnvoy, Identity: mesh.Identity{Namespace: "web", ServiceAccount: "client"}}
	outbound := func(move bool) (ingressRanges []string, clientHash string) {
		in, err := meshtest.Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		if move {
			moveEndpoint(in, "web-8c9d7f6b5-d3e4f", "10.244.70.99")
		}
		m, _ := mesh.Build(in)
		for _, g := range []mesh.Group{ingress, client} {
			res, err := translate.Translate(m.View(g), fakeCerts(g))
			if err != nil {
				t.Fatal(err)
			}
			l := res.Listeners[slices.IndexFunc(res.Listeners, func(l *listenerv3.Listener) bool { return l.GetName() == translate.OutboundListener })]
			if g == client {
				if clientHash, err = res.Hash(l); err != nil {
					t.Fatal(err)
				}
				continue
			}
			for _, fc := range l.GetFilterChains() {
				if fc.GetName() == "out|web/web|80|endpoints|8080" {
					for _, r := range fc.GetFilterChainMatch().GetPrefixRanges() {
						ingressRanges = append(ingressRanges, r.GetAddressPrefix())
					}
				}
			}
		}
		return ingressRanges, clientHash
	}
	before, clientBefore := outbound(false)
	after, clientAfter := outbound(true)
	if want := []string{"10.244.70.10", "10.244.70.11"}; !slices.Equal(before, want) {
		t.Errorf("the ingress source matches %v by endpoint, want %v", before, want)
	}
	if want := []string{"10.244.70.10", "10.244.70.99"}; !slices.Equal(after, want) {
		t.Errorf("after the move the ingress source matches %v, want %v", after, want)
	}
	if clientBefore != clientAfter {
		t.Error("an ordinary caller's outbound listener changed when a pod moved")
	}
}

// moveEndpoint moves a pod's endpoint to addr, as a pod's move does: the
// pod has the new address too.
func moveEndpoint(in mesh.Inputs, pod, addr string) {
	for _, es := range in.EndpointSlices {
		for i, ep := range es.Endpoints {
			if ep.TargetRef != nil && ep.TargetRef.Name == pod {
				es.Endpoints[i].Addresses = []string{addr}
			}
		}
	}
	for _, p := range in.Pods {
		if p.Name == pod {
			p.Status.PodIP, p.Status.PodIPs = addr, []corev1.PodIP{{IP: addr}}
		}
	}
}

// TestOneServiceTwiceOnAPortKeepsBothBackends: an IngressBackend that names
// one Service twice on one port (each backend with its server names) lets
// the callers of both in: neither backend's RBAC policy replaces the other's.
func TestOneServiceTwiceOnAPortKeepsBothBackends(t *testing.T) {
	data, err := os.ReadFile("testdata/in/ingressbackend.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in, err := meshtest.Decode(append(data, []byte(`
---
apiVersion: policy.openservicemesh.io/v1alpha1
kind: IngressBackend
metadata: {name: api-twice, namespace: shop}
spec:
  backends:
  - {name: api, port: {number: 8443, protocol: https}, tls: {sniHosts: [one.example.com]}}
  - {name: api, port: {number: 8443, protocol: https}, tls: {sniHosts: [two.example.com]}}
  sources:
  - {kind: AuthenticatedPrincipal, name: partner.example.com}
`)...))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := mesh.Build(in)
	g := mesh.Group{Kind: mesh.ProxyEnvoy, Identity: mesh.Identity{Namespace: "shop", ServiceAccount: "api"}}
	res, err := translate.Translate(m.View(g), fakeCerts(g))
	if err != nil {
		t.Fatal(err)
	}
	var chain *listenerv3.FilterChain
	for _, l := range res.Listeners {
		for _, fc := range l.GetFilterChains() {
			if strings.HasSuffix(fc.GetName(), "|8443|ingress-tls") {
				chain = fc
			}
		}
	}
	if chain == nil {
		t.Fatal("no ingress-tls chain on port 8443")
	}
	js, err := protojson.Marshal(chain)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"one.example.com", "two.example.com", "api.example.com"} {
		if !strings.Contains(string(js), `"`+host+`"`) {
			t.Errorf("the ingress-tls chain of 8443 lets no caller asking for %s in", host)
		}
	}
}
