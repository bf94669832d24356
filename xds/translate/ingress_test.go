package translate_test

import (
	"os"
	"slices"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
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
