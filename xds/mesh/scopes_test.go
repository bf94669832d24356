package mesh_test

import (
	"fmt"
	"strings"
	"testing"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
)

// scopesOf prints the scopes of the policies of a fixture, one a line:
// "<Kind> <ns>/<name>: ids [..] services [..] inactive <why>".
func scopesOf(t *testing.T, file string, edit ...func(*mesh.Inputs)) map[string]string {
	t.Helper()
	in, err := meshtest.ReadFile("../translate/testdata/in/" + file)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range edit {
		e(&in)
	}
	m, _ := mesh.Build(in)
	out := map[string]string{}
	for _, s := range mesh.Scopes(&in, m) {
		line := fmt.Sprintf("ids %v services %v", s.Identities, s.Services)
		if s.Inactive != "" {
			line += " inactive"
		}
		out[s.Ref()] = line
	}
	return out
}

func TestScopes(t *testing.T) {
	got := scopesOf(t, "bookstore.yaml")
	for ref, want := range map[string]string{
		// A TrafficTarget configures its destination and its sources.
		"TrafficTarget bookstore/bookbuyer-to-bookstore": "ids [bookbuyer/bookbuyer bookstore/bookstore]",
		// A route group, the identities of the TrafficTargets naming it.
		"HTTPRouteGroup bookstore/bookstore-service-routes": "ids [bookbuyer/bookbuyer bookstore/bookstore]",
		"TCPRoute bookwarehouse/mysql":                      "ids [bookwarehouse/bookwarehouse bookwarehouse/mysql]",
		// A split, the callers of its root service.
		"TrafficSplit bookstore/bookstore-split": "ids [] services [bookstore/bookstore]",
	} {
		if !strings.HasPrefix(got[ref], want) || strings.Contains(got[ref], "inactive") {
			t.Errorf("%s: %q, want %q", ref, got[ref], want)
		}
	}
	// The same policies in a Permissive mesh: no TrafficTarget or TCPRoute
	// is enforced, and a route group configures no one through them.
	permissive := scopesOf(t, "bookstore.yaml", func(in *mesh.Inputs) {
		in.Mesh.Spec.TrafficPolicy.Mode = meshv1alpha1.TrafficPolicyPermissive
	})
	for _, ref := range []string{"TrafficTarget bookstore/bookbuyer-to-bookstore", "TCPRoute bookwarehouse/mysql"} {
		if !strings.HasSuffix(permissive[ref], " inactive") {
			t.Errorf("permissive: %s: %q", ref, permissive[ref])
		}
	}
	if line := permissive["HTTPRouteGroup bookstore/bookstore-service-routes"]; !strings.HasPrefix(line, "ids []") {
		t.Errorf("permissive: the route group: %q", line)
	}
	// The OSM kinds: a Retry and an Egress configure their sources, an
	// UpstreamTrafficSetting the callers of its host.
	osm := scopesOf(t, "osm-policy.yaml")
	for ref, line := range osm {
		// Those naming no Service of the mesh are left out: they configure nothing.
		if strings.HasPrefix(ref, "UpstreamTrafficSetting bookstore/") != strings.HasSuffix(line, "services [bookstore/bookstore]") {
			t.Errorf("%s: %s", ref, line)
		}
		// A Retry of another namespace's source is left out: it configures nothing.
		if strings.HasPrefix(ref, "Retry ") && strings.HasPrefix(line, "ids []") != (ref == "Retry bookbuyer/bookstore-from-here") {
			t.Errorf("%s: %s", ref, line)
		}
	}
	t.Logf("osm-policy scopes: %v", osm)
	// A route, the callers of the Services it is attached to; a
	// ResiliencePolicy, those of its targets.
	for _, file := range []string{"gamma-http.yaml", "resilience.yaml"} {
		var attached int
		for ref, line := range scopesOf(t, file) {
			kind := strings.Fields(ref)[0]
			if kind != "HTTPRoute" && kind != "GRPCRoute" && kind != "ResiliencePolicy" {
				continue
			}
			// One that loses to another on every target, that only a
			// route's filter names, or that the mesh refuses (a filter it
			// has not) is attached nowhere.
			empty := strings.Contains(line, "services []")
			if empty != (ref == "ResiliencePolicy shop/api-newer" || ref == "ResiliencePolicy shop/chaos" || ref == "HTTPRoute shop/cors") {
				t.Errorf("%s: %s: %s", file, ref, line)
			}
			if !empty {
				attached++
			}
		}
		if attached == 0 {
			t.Errorf("%s: no route or ResiliencePolicy attached", file)
		}
	}
}
