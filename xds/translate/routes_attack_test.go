package translate_test

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// TestRouteHeaderValuesAreNotCommands: a route's header values are the
// user's text, never Envoy commands. Envoy reads a header value as a
// format string, where %DOWNSTREAM_PEER_CERT% and the like would hand the
// backend what the proxy knows (its caller's certificate, addresses); every
// % is sent escaped, so the backend gets the literal text.
func TestRouteHeaderValuesAreNotCommands(t *testing.T) {
	in := meshtest.Synthetic(meshtest.Size{Namespaces: 1, Services: 2, PodsPerService: 1, IdentitiesPerService: 1, Permissive: true})
	const value = "%DOWNSTREAM_PEER_CERT%%REQ(:authority)%"
	hr := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "leak", Namespace: "ns-0"}, Spec: gwv1.HTTPRouteSpec{
		CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Group: ptr.To(gwv1.Group("")), Kind: ptr.To(gwv1.Kind("Service")), Name: "svc-0"}}},
		Rules: []gwv1.HTTPRouteRule{{
			Filters: []gwv1.HTTPRouteFilter{
				{Type: gwv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: &gwv1.HTTPHeaderFilter{Set: []gwv1.HTTPHeader{{Name: "x-cert", Value: value}}, Add: []gwv1.HTTPHeader{{Name: "x-cert-2", Value: value}}}},
				{Type: gwv1.HTTPRouteFilterResponseHeaderModifier, ResponseHeaderModifier: &gwv1.HTTPHeaderFilter{Set: []gwv1.HTTPHeader{{Name: "x-cert", Value: value}}}},
			},
			BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "svc-1", Port: ptr.To(gwv1.PortNumber(8080))}}, Filters: []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: &gwv1.HTTPHeaderFilter{Set: []gwv1.HTTPHeader{{Name: "x-cert-3", Value: value}}}}}}},
		}},
	}}
	in.HTTPRoutes = append(in.HTTPRoutes, hr)
	m, problems := mesh.Build(in)
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	res, err := translate.Translate(m.View(m.Groups[0]), nil)
	if err != nil {
		t.Fatal(err)
	}
	rc := routeConfig(res, translate.OutboundClusterName(mesh.ServiceKey{Namespace: "ns-0", Name: "svc-0"}, 8080))
	if rc == nil {
		t.Fatal("no route configuration of svc-0")
	}
	route := rc.GetVirtualHosts()[0].GetRoutes()[0]
	values := []string{}
	for _, h := range append(route.GetRequestHeadersToAdd(), route.GetResponseHeadersToAdd()...) {
		values = append(values, h.GetHeader().GetValue())
	}
	for _, cw := range route.GetRoute().GetWeightedClusters().GetClusters() {
		for _, h := range cw.GetRequestHeadersToAdd() {
			values = append(values, h.GetHeader().GetValue())
		}
	}
	if len(values) != 4 {
		t.Fatalf("%d header values, want 4: %v", len(values), route)
	}
	want := strings.ReplaceAll(value, "%", "%%")
	for _, v := range values {
		if v != want {
			t.Errorf("header value %q, want %q: Envoy would run its commands", v, want)
		}
	}
}
