package rbaceval_test

import (
	"strings"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbacnetv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/open-service-mesh/osm-operator/xds/rbaceval"
)

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func netFilter(t *testing.T, name string, m proto.Message) *listenerv3.Filter {
	return &listenerv3.Filter{Name: name, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, m)}}
}

func httpFilter(t *testing.T, name string, m proto.Message) *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, m)}}
}

// inlineRoutes is a route configuration sending everything to "app".
func inlineRoutes() *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{Name: "r", VirtualHosts: []*routev3.VirtualHost{{
		Name: "vh", Domains: []string{"*"},
		Routes: []*routev3.Route{{
			Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "app"}}},
		}},
	}}}
}

// hcm is a connection manager with routes inline, or by RDS when nil.
func hcm(t *testing.T, routes *routev3.RouteConfiguration, filters ...*hcmv3.HttpFilter) *listenerv3.Filter {
	m := &hcmv3.HttpConnectionManager{StatPrefix: "in", RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: "r"}}}
	if routes != nil {
		m.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: routes}
	}
	m.HttpFilters = append(filters, httpFilter(t, "envoy.filters.http.router", &routerv3.Router{}))
	return netFilter(t, "envoy.filters.network.http_connection_manager", m)
}

func netRBAC(t *testing.T, r *rbacv3.RBAC) *listenerv3.Filter {
	return netFilter(t, "envoy.filters.network.rbac", &rbacnetv3.RBAC{StatPrefix: "in", Rules: r})
}

func httpRBAC(t *testing.T, r *rbacv3.RBAC) *hcmv3.HttpFilter {
	return httpFilter(t, "envoy.filters.http.rbac", &rbachttpv3.RBAC{Rules: r})
}

func chain(filters ...*listenerv3.Filter) *listenerv3.FilterChain {
	return &listenerv3.FilterChain{Name: "c", Filters: filters}
}

// TestEvaluateChain covers the filters' order and what each sees
// (source/extensions/filters/network/rbac/rbac_filter.cc, onData;
// source/extensions/filters/http/rbac/rbac_filter.cc, decodeHeaders).
func TestEvaluateChain(t *testing.T) {
	allowMesh := one(anyPerm(), authn(exact(bookbuyer)))
	onlyGet := one(header(":method", exact("GET")), anyID())
	tcp := netFilter(t, "envoy.filters.network.tcp_proxy", &tcpproxyv3.TcpProxy{StatPrefix: "in", ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: "app"}})
	cases := []struct {
		name           string
		fc             *listenerv3.FilterChain
		req            func() rbaceval.Request
		allow          bool
		policy, filter string
	}{
		{name: "no RBAC filter", fc: chain(tcp), req: func() rbaceval.Request { return get("/") }, allow: true},
		// network filter: connection only, headers never seen.
		{name: "network allows", fc: chain(netRBAC(t, allowMesh), tcp), req: func() rbaceval.Request { return get("/") }, allow: true, policy: "p", filter: "envoy.filters.network.rbac"},
		{name: "network sees no headers", fc: chain(netRBAC(t, onlyGet), tcp), req: func() rbaceval.Request { return get("/") }, filter: "envoy.filters.network.rbac"},
		// A network denial closes the connection before the HTTP filters.
		{name: "network denies before HTTP", fc: chain(netRBAC(t, one(anyPerm(), authn(exact("x")))), hcm(t, inlineRoutes(), httpRBAC(t, onlyGet))),
			req: func() rbaceval.Request { return get("/") }, filter: "envoy.filters.network.rbac"},
		{name: "then HTTP decides", fc: chain(netRBAC(t, allowMesh), hcm(t, inlineRoutes(), httpRBAC(t, onlyGet))),
			req: func() rbaceval.Request { return get("/") }, allow: true, policy: "p", filter: "envoy.filters.http.rbac"},
		{name: "HTTP denies", fc: chain(netRBAC(t, allowMesh), hcm(t, inlineRoutes(), httpRBAC(t, onlyGet))),
			req: func() rbaceval.Request { return httpReq(":method", "POST", ":path", "/") }, filter: "envoy.filters.http.rbac"},
		// Two HTTP RBAC filters: each must allow.
		{name: "second HTTP filter denies", fc: chain(hcm(t, inlineRoutes(), httpRBAC(t, onlyGet), httpRBAC(t, one(urlPath(exact("/a")), anyID())))),
			req: func() rbaceval.Request { return get("/b") }, filter: "envoy.filters.http.rbac"},
		// utility.h, createEngine: a filter without rules has no engine.
		{name: "HTTP filter without rules", fc: chain(hcm(t, inlineRoutes(), httpRBAC(t, nil))), req: func() rbaceval.Request { return get("/") }, allow: true, filter: "envoy.filters.http.rbac"},
		{name: "a filter without rules keeps the decision", fc: chain(netRBAC(t, allowMesh), hcm(t, inlineRoutes(), httpRBAC(t, nil))),
			req: func() rbaceval.Request { return get("/") }, allow: true, policy: "p", filter: "envoy.filters.network.rbac"},
		{name: "network filter with empty rules", fc: chain(netRBAC(t, allow(nil)), tcp), req: func() rbaceval.Request { return get("/") }, filter: "envoy.filters.network.rbac"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := rbaceval.EvaluateChain(c.fc, c.req())
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed != c.allow || d.Policy != c.policy || d.Filter != c.filter {
				t.Errorf("got %+v, want allowed=%v policy=%q filter=%q", d, c.allow, c.policy, c.filter)
			}
		})
	}
}

// TestFilterChainRules covers how the rules are found, and what is refused.
func TestFilterChainRules(t *testing.T) {
	r := one(anyPerm(), anyID())
	fs, err := rbaceval.FilterChainRules(chain(netRBAC(t, r), hcm(t, inlineRoutes(), httpRBAC(t, r), httpRBAC(t, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 3 || fs[0].HTTP || !fs[1].HTTP || !fs[2].HTTP || fs[0].Rules == nil || fs[1].Rules == nil || fs[2].Rules != nil {
		t.Errorf("got %+v", fs)
	}
	if !proto.Equal(fs[1].Rules, r) {
		t.Errorf("rules %v, want %v", fs[1].Rules, r)
	}

	perRoute := inlineRoutes()
	perRoute.VirtualHosts[0].Routes[0].TypedPerFilterConfig = map[string]*anypb.Any{
		"envoy.filters.http.rbac": mustAny(t, &rbachttpv3.RBACPerRoute{}),
	}
	disabled := httpRBAC(t, r)
	disabled.Disabled = true
	// A matcher tree (matching nothing), which the Go protos of cncf/xds hold.
	tree := &rbacnetv3.RBAC{}
	if err := protojson.Unmarshal([]byte(`{"statPrefix": "in", "matcher": {"matcherList": {"matchers": []}}}`), tree); err != nil {
		t.Fatal(err)
	}
	withMatcher := netFilter(t, "envoy.filters.network.rbac", tree)
	bad := []struct {
		name string
		fc   *listenerv3.FilterChain
		want string
	}{
		{name: "per-route override", fc: chain(hcm(t, perRoute, httpRBAC(t, r))), want: "typed_per_filter_config"},
		{name: "RDS", fc: chain(hcm(t, nil, httpRBAC(t, r))), want: "RDS"},
		{name: "disabled", fc: chain(hcm(t, inlineRoutes(), disabled)), want: "disabled"},
		{name: "matcher tree", fc: chain(withMatcher), want: "matcher"},
		{name: "ECDS", fc: chain(&listenerv3.Filter{Name: "envoy.filters.network.rbac", ConfigType: &listenerv3.Filter_ConfigDiscovery{}}), want: "ECDS"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			fs, err := rbaceval.FilterChainRules(c.fc)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %+v, %v; want an error with %q", fs, err, c.want)
			}
		})
	}

	// An HTTP chain needs an HTTP request.
	notHTTP := get("/")
	notHTTP.HTTP = false
	if d, err := rbaceval.EvaluateChain(chain(hcm(t, inlineRoutes(), httpRBAC(t, r))), notHTTP); err == nil {
		t.Errorf("got %+v for a connection that is not HTTP on an HTTP chain", d)
	}
}
