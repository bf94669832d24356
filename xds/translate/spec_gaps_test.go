package translate_test

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/routesim"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// TestRoutesAsTheSpecSaysBeyondConformance: what Gateway API specifies and
// its conformance tests do not try, on a Service port 8080: a redirect to
// another scheme with no port goes to the scheme's own port, one to another
// host keeps the port the request was sent to; of header matches of one
// name only the first counts; an empty replacePrefixMatch replaces the
// prefix with the root.
func TestRoutesAsTheSpecSaysBeyondConformance(t *testing.T) {
	in := meshtest.Synthetic(meshtest.Size{Namespaces: 1, Services: 2, PodsPerService: 1, IdentitiesPerService: 1, Permissive: true})
	prefix := func(p string) []gwv1.HTTPRouteMatch {
		return []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Type: ptr.To(gwv1.PathMatchPathPrefix), Value: ptr.To(p)}}}
	}
	redirect := func(p string, f gwv1.HTTPRequestRedirectFilter) gwv1.HTTPRouteRule {
		return gwv1.HTTPRouteRule{Matches: prefix(p), Filters: []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterRequestRedirect, RequestRedirect: &f}}}
	}
	toSvc1 := []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "svc-1", Port: ptr.To(gwv1.PortNumber(8080))}}}}
	in.HTTPRoutes = append(in.HTTPRoutes, &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "spec", Namespace: "ns-0"}, Spec: gwv1.HTTPRouteSpec{
		CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Group: ptr.To(gwv1.Group("")), Kind: ptr.To(gwv1.Kind("Service")), Name: "svc-0"}}},
		Rules: []gwv1.HTTPRouteRule{
			redirect("/scheme", gwv1.HTTPRequestRedirectFilter{Scheme: ptr.To("https")}),
			redirect("/host", gwv1.HTTPRequestRedirectFilter{Hostname: ptr.To(gwv1.PreciseHostname("example.org"))}),
			{Matches: []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Type: ptr.To(gwv1.PathMatchExact), Value: ptr.To("/twice")},
				Headers: []gwv1.HTTPHeaderMatch{{Name: "X-A", Value: "one"}, {Name: "x-a", Value: "two"}}}}, BackendRefs: toSvc1},
			{Matches: prefix("/strip"), BackendRefs: toSvc1, Filters: []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterURLRewrite,
				URLRewrite: &gwv1.HTTPURLRewriteFilter{Path: &gwv1.HTTPPathModifier{Type: gwv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptr.To("")}}}}},
		},
	}})
	m, problems := mesh.Build(in)
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	res, err := translate.Translate(m.View(m.Groups[0]), nil)
	if err != nil {
		t.Fatal(err)
	}
	rc := routeConfig(res, translate.OutboundClusterName(mesh.ServiceKey{Namespace: "ns-0", Name: "svc-0"}, 8080))
	for _, c := range []struct {
		path, location, forwardedPath string
		headers                       map[string]string
	}{
		{path: "/scheme", location: "https://svc-0.ns-0:443/scheme"},
		{path: "/host", location: "http://example.org:8080/host"},
		{path: "/twice", headers: map[string]string{"x-a": "one"}, forwardedPath: "/twice"},
		{path: "/strip/bar", forwardedPath: "/bar"},
		{path: "/strip", forwardedPath: "/"},
	} {
		got := routesim.Route(rc, routesim.Request{Host: "svc-0.ns-0:8080", Path: c.path, Headers: routesim.HeaderMap(c.headers)})
		switch {
		case c.location != "":
			if got.Location != c.location {
				t.Errorf("%s: Location %q (%s %d), want %q", c.path, got.Location, got.Kind, got.Status, c.location)
			}
		case len(got.Backends) != 1 || got.Backends[0].Request.Path != c.forwardedPath:
			t.Errorf("%s: %s %d to %+v, want forwarded as %s", c.path, got.Kind, got.Status, got.Backends, c.forwardedPath)
		}
	}
}
