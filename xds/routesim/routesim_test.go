package routesim

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Builders of route configurations, terse on purpose.

func config(vhs ...*routev3.VirtualHost) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{Name: "rc", VirtualHosts: vhs}
}

func vhost(name string, domains []string, routes ...*routev3.Route) *routev3.VirtualHost {
	return &routev3.VirtualHost{Name: name, Domains: domains, Routes: routes}
}

func toCluster(name string, m *routev3.RouteMatch) *routev3.Route {
	return &routev3.Route{Name: name, Match: m, Action: &routev3.Route_Route{Route: &routev3.RouteAction{
		ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: name},
	}}}
}

func prefix(p string) *routev3.RouteMatch {
	return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: p}}
}

func exactPath(p string) *routev3.RouteMatch {
	return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: p}}
}

func regexPath(re string) *routev3.RouteMatch {
	return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: re}}}
}

func sepPrefix(p string) *routev3.RouteMatch {
	return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: p}}
}

func exactString(v string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v}}
}

func regexString(v string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: v}}}
}

func opt(name, value string, action corev3.HeaderValueOption_HeaderAppendAction) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: name, Value: value}, AppendAction: action}
}

func routed(t *testing.T, rc *routev3.RouteConfiguration, req Request) Result {
	t.Helper()
	res := Route(rc, req)
	for _, w := range res.Warnings {
		t.Logf("warning: %s", w)
	}
	return res
}

func TestVirtualHostSelection(t *testing.T) {
	rc := config(
		vhost("default", []string{"*"}, toCluster("default", prefix("/"))),
		vhost("exact", []string{"foo.com", "Foo.example"}, toCluster("exact", prefix("/"))),
		vhost("suffix", []string{"*.foo.com"}, toCluster("suffix", prefix("/"))),
		vhost("longer-suffix", []string{"*-bar.foo.com"}, toCluster("longer-suffix", prefix("/"))),
		vhost("prefix", []string{"foo.*"}, toCluster("prefix", prefix("/"))),
	)
	for host, want := range map[string]string{
		"foo.com":         "exact",
		"FOO.EXAMPLE":     "exact",
		"a.foo.com":       "suffix",
		"x-bar.foo.com":   "longer-suffix",
		".foo.com":        "default", // "*.foo.com" needs something before the dot
		"foo.org":         "prefix",  // exact, then suffixes, then prefixes
		"foo.com:80":      "prefix",  // the port is part of the host unless ignore_port_in_host_matching
		"bar.org":         "default",
		"":                "", // no Host, no virtual host (there are specific domains)
		"sub.a.foo.com":   "suffix",
		"x-bar.foo.com:1": "default",
	} {
		if got := routed(t, rc, Request{Host: host}).VirtualHost; got != want {
			t.Errorf("host %q: virtual host %q, want %q", host, got, want)
		}
	}
	rc.IgnorePortInHostMatching = true
	if got := routed(t, rc, Request{Host: "foo.com:8080"}).VirtualHost; got != "exact" {
		t.Errorf("ignore_port_in_host_matching: virtual host %q, want exact", got)
	}
	only := config(vhost("any", []string{"*"}, toCluster("any", prefix("/"))))
	if got := routed(t, only, Request{}).VirtualHost; got != "any" {
		t.Errorf("a lone * virtual host takes requests without a Host too, got %q", got)
	}
}

func TestPathSeparatedPrefix(t *testing.T) {
	rc := config(vhost("vh", []string{"*"}, toCluster("v2", sepPrefix("/v2")), toCluster("rest", prefix("/"))))
	for path, want := range map[string]string{
		"/v2":               "v2",
		"/v2/":              "v2",
		"/v2/example":       "v2",
		"/v2?x=1":           "v2",
		"/v2#frag":          "v2",
		"/v2?next=/v2/y":    "v2",
		"/v2example":        "rest",
		"/v2example?q=/v2/": "rest", // the query is not part of the path
		"/V2":               "rest", // case sensitive by default
		"/foo/v2/example":   "rest",
		"/v":                "rest",
	} {
		if got := routed(t, rc, Request{Path: path}).Route; got != want {
			t.Errorf("%s: route %q, want %q", path, got, want)
		}
	}
	rc.VirtualHosts[0].Routes[0].Match.CaseSensitive = wrapperspb.Bool(false)
	if got := routed(t, rc, Request{Path: "/V2/x"}).Route; got != "v2" {
		t.Errorf("case_sensitive false: /V2/x went to %q", got)
	}
}

func TestPathMatchers(t *testing.T) {
	rc := config(vhost("vh", []string{"*"},
		toCluster("exact", exactPath("/abc")),
		toCluster("regex", regexPath("/items/[0-9]+")),
		toCluster("prefix", prefix("/pre")),
	))
	for path, want := range map[string]string{
		"/abc":          "exact",
		"/abc?x=y":      "exact",  // the query is not part of the path
		"/abc/":         "",       // exact is literal
		"/ABC":          "",       // and case sensitive
		"/items/12":     "regex",  // a full match
		"/items/12?a=b": "regex",  // of the path without query
		"/items/12/x":   "",       // not a partial one
		"/x/items/12":   "",       //
		"/items/":       "",       //
		"/prefix":       "prefix", // a plain prefix is a string prefix
		"/pre":          "prefix",
		"/pr":           "",
	} {
		res := routed(t, rc, Request{Path: path})
		if res.Route != want {
			t.Errorf("%s: route %q, want %q", path, res.Route, want)
		}
		if want == "" && (res.Kind != NoRoute || res.Status != 404) {
			t.Errorf("%s: %s %d, want no route, 404", path, res.Kind, res.Status)
		}
	}
	rc.VirtualHosts[0].Routes[0].Match.CaseSensitive = wrapperspb.Bool(false)
	rc.VirtualHosts[0].Routes[1].Match.CaseSensitive = wrapperspb.Bool(false)
	if got := routed(t, rc, Request{Path: "/ABC"}).Route; got != "exact" {
		t.Errorf("case_sensitive false: /ABC went to %q", got)
	}
	if got := routed(t, rc, Request{Path: "/ITEMS/1"}).Route; got != "" {
		t.Errorf("case_sensitive does not apply to a regex: /ITEMS/1 went to %q", got)
	}
}

func TestFirstMatchWins(t *testing.T) {
	rc := config(vhost("vh", []string{"*"}, toCluster("all", prefix("/")), toCluster("never", exactPath("/x"))))
	if got := routed(t, rc, Request{Path: "/x"}).Route; got != "all" {
		t.Errorf("routes are tried in order: got %q", got)
	}
}

func TestHeaderMatchers(t *testing.T) {
	hm := func(name string, m *routev3.HeaderMatcher) *routev3.Route {
		match := prefix("/")
		m.Name = name
		match.Headers = []*routev3.HeaderMatcher{m}
		return toCluster(name, match)
	}
	str := func(sm *matcherv3.StringMatcher) *routev3.HeaderMatcher {
		return &routev3.HeaderMatcher{HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: sm}}
	}
	cases := []struct {
		name    string
		matcher *routev3.HeaderMatcher
		headers Headers
		want    bool
	}{
		{"version", str(exactString("two")), H("Version", "two"), true},
		{"version", str(exactString("two")), H("version", "Two"), false},
		{"version", str(exactString("two")), nil, false},
		{"version", str(exactString("a,b")), H("version", "a", "version", "b"), true}, // values joined with ","
		{"version", str(exactString("a")), H("version", "a", "version", "b"), false},
		{"version", str(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "TWO"}, IgnoreCase: true}), H("version", "two"), true},
		{"version", str(regexString("t.o")), H("version", "two"), true},
		{"version", str(regexString("t.o")), H("version", "twos"), false}, // a full match
		{"version", str(regexString("t.o")), H("version", "a two"), false},
		{"version", &routev3.HeaderMatcher{HeaderMatchSpecifier: &routev3.HeaderMatcher_PrefixMatch{PrefixMatch: "tw"}}, H("version", "two"), true},
		{"version", &routev3.HeaderMatcher{HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}}, H("version", ""), true},
		{"version", &routev3.HeaderMatcher{HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}}, nil, false},
		{"version", &routev3.HeaderMatcher{HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: false}}, nil, true},
		{"version", &routev3.HeaderMatcher{HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}, InvertMatch: true}, nil, true},
		{"version", &routev3.HeaderMatcher{}, H("version", "x"), true}, // no specifier: present
		{"version", &routev3.HeaderMatcher{HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: exactString("two")}, InvertMatch: true}, H("version", "one"), true},
		{"version", &routev3.HeaderMatcher{HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: exactString("two")}, InvertMatch: true}, H("version", "two"), false},
		{"version", &routev3.HeaderMatcher{HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: exactString("two")}, InvertMatch: true}, nil, false}, // a missing header never matches a value
		{"version", &routev3.HeaderMatcher{HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: exactString("")}, TreatMissingHeaderAsEmpty: true}, nil, true},
		{"version", &routev3.HeaderMatcher{HeaderMatchSpecifier: &routev3.HeaderMatcher_ExactMatch{ExactMatch: ""}}, H("version", "any"), true},
		{"version", &routev3.HeaderMatcher{HeaderMatchSpecifier: &routev3.HeaderMatcher_RangeMatch{RangeMatch: &typev3.Int64Range{Start: 1, End: 5}}}, H("version", "4"), true},
		{"version", &routev3.HeaderMatcher{HeaderMatchSpecifier: &routev3.HeaderMatcher_RangeMatch{RangeMatch: &typev3.Int64Range{Start: 1, End: 5}}}, H("version", "5"), false},
		{":method", str(exactString("POST")), nil, false}, // the request is a GET
	}
	for _, c := range cases {
		rc := config(vhost("vh", []string{"*"}, hm(c.name, c.matcher)))
		res := routed(t, rc, Request{Headers: c.headers})
		if got := res.Kind == Forward; got != c.want {
			t.Errorf("%s %v with %v: match %v, want %v", c.name, c.matcher, c.headers, got, c.want)
		}
	}
	rc := config(vhost("vh", []string{"*"}, hm(":method", str(exactString("POST")))))
	if res := routed(t, rc, Request{Method: "POST"}); res.Kind != Forward {
		t.Errorf(":method POST does not match a POST")
	}
}

func TestQueryParameters(t *testing.T) {
	q := func(name string, qms ...*routev3.QueryParameterMatcher) *routev3.Route {
		m := prefix("/")
		m.QueryParameters = qms
		return toCluster(name, m)
	}
	is := func(name, value string) *routev3.QueryParameterMatcher {
		return &routev3.QueryParameterMatcher{Name: name, QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_StringMatch{StringMatch: exactString(value)}}
	}
	present := func(name string, p bool) *routev3.QueryParameterMatcher {
		return &routev3.QueryParameterMatcher{Name: name, QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_PresentMatch{PresentMatch: p}}
	}
	rc := config(vhost("vh", []string{"*"},
		q("whale", is("animal", "whale")),
		q("both", is("a", "1"), is("b", "2")),
		q("encoded", is("x", "a%20b")),
		q("present", present("flag", true)),
		q("absent", present("gone", false), is("k", "v")),
	))
	for path, want := range map[string]string{
		"/?animal=whale":                "whale",
		"/path?animal=whale&other=1":    "whale",
		"/?animal=whale&animal=dolphin": "whale",
		"/?animal=dolphin&animal=whale": "", // only the first value counts
		"/?animal=whaledolphin":         "",
		"/?Animal=whale":                "", // names are case sensitive
		"/?a=1&b=2":                     "both",
		"/?b=2":                         "",
		"/?x=a%20b":                     "encoded", // values are not decoded
		"/?x=a b":                       "",
		"/?flag":                        "present",
		"/?flag=":                       "present",
		"/?k=v":                         "absent",
		"/?k=v&gone=1":                  "",
		"/animal=whale":                 "",
	} {
		if got := routed(t, rc, Request{Path: path}).Route; got != want {
			t.Errorf("%s: route %q, want %q", path, got, want)
		}
	}
}

func rewriteRoute(m *routev3.RouteMatch, ra *routev3.RouteAction) *routev3.VirtualHost {
	ra.ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: "c"}
	return vhost("vh", []string{"*"}, &routev3.Route{Name: "r", Match: m, Action: &routev3.Route_Route{Route: ra}})
}

func regexSub(pattern, sub string) *matcherv3.RegexMatchAndSubstitute {
	return &matcherv3.RegexMatchAndSubstitute{Pattern: &matcherv3.RegexMatcher{Regex: pattern}, Substitution: sub}
}

func TestPrefixRewriteAndRegexRewrite(t *testing.T) {
	cases := []struct {
		name      string
		match     *routev3.RouteMatch
		action    *routev3.RouteAction
		path      string
		want      string
		unchanged bool
	}{
		// prefix_rewrite replaces the configured prefix, whatever follows it.
		{"separated prefix", sepPrefix("/prefix/one"), &routev3.RouteAction{PrefixRewrite: "/one"}, "/prefix/one/two?x=1", "/one/two?x=1", false},
		{"separated prefix, all of it", sepPrefix("/prefix/one"), &routev3.RouteAction{PrefixRewrite: "/one"}, "/prefix/one", "/one", false},
		{"to /: a double slash", sepPrefix("/strip"), &routev3.RouteAction{PrefixRewrite: "/"}, "/strip/three", "//three", false},
		{"plain prefix", prefix("/api"), &routev3.RouteAction{PrefixRewrite: "/v1"}, "/apiary", "/v1ary", false},
		{"root prefix", prefix("/"), &routev3.RouteAction{PrefixRewrite: "/base/"}, "/x?q", "/base/x?q", false},
		{"exact path", exactPath("/old"), &routev3.RouteAction{PrefixRewrite: "/new"}, "/old?q=1", "/new?q=1", false},
		{"regex route: the whole path", regexPath("/items/[0-9]+"), &routev3.RouteAction{PrefixRewrite: "/item"}, "/items/7?a", "/item?a", false},
		// regex_rewrite replaces in the path without its query, which stays.
		{"regex strip", sepPrefix("/strip"), &routev3.RouteAction{RegexRewrite: regexSub(`^/strip/*`, "/")}, "/strip/three?q=1", "/three?q=1", false},
		{"regex strip, all of it", sepPrefix("/strip"), &routev3.RouteAction{RegexRewrite: regexSub(`^/strip/*`, "/")}, "/strip", "/", false},
		{"regex full path", prefix("/full"), &routev3.RouteAction{RegexRewrite: regexSub(`^/.*$`, "/one")}, "/full/one/two?k=v", "/one?k=v", false},
		{"regex groups", prefix("/"), &routev3.RouteAction{RegexRewrite: regexSub(`^/service/([^/]+)(/.*)$`, `\2/instance/\1`)}, "/service/foo/v1/api", "/v1/api/instance/foo", false},
		{"regex every match", prefix("/"), &routev3.RouteAction{RegexRewrite: regexSub(`one`, `two`)}, "/xxx/one/yyy/one/zzz", "/xxx/two/yyy/two/zzz", false},
		{"none", prefix("/"), &routev3.RouteAction{}, "/same?q", "/same?q", true},
	}
	for _, c := range cases {
		res := routed(t, config(rewriteRoute(c.match, c.action)), Request{Path: c.path})
		if res.Kind != Forward || len(res.Backends) != 1 {
			t.Fatalf("%s: %+v", c.name, res)
		}
		got := res.Backends[0].Request
		if got.Path != c.want {
			t.Errorf("%s: %s is rewritten to %s, want %s", c.name, c.path, got.Path, c.want)
		}
		orig, ok := got.Headers.Get("x-envoy-original-path")
		if c.unchanged && ok || !c.unchanged && orig != c.path {
			t.Errorf("%s: x-envoy-original-path %q (%v), want the original path when rewritten", c.name, orig, ok)
		}
	}
}

func TestHostRewrite(t *testing.T) {
	res := routed(t, config(rewriteRoute(prefix("/"), &routev3.RouteAction{
		HostRewriteSpecifier: &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: "api.internal"},
		AppendXForwardedHost: true,
	})), Request{Host: "echo", Path: "/"})
	got := res.Backends[0].Request
	if got.Host != "api.internal" {
		t.Errorf("host %q, want api.internal", got.Host)
	}
	if v, _ := got.Headers.Get("x-forwarded-host"); v != "echo" {
		t.Errorf("x-forwarded-host %q, want echo", v)
	}
	res = routed(t, config(rewriteRoute(prefix("/"), &routev3.RouteAction{
		HostRewriteSpecifier: &routev3.RouteAction_HostRewriteHeader{HostRewriteHeader: "x-host"},
	})), Request{Host: "echo", Headers: H("x-host", "h1", "x-host", "h2")})
	if h := res.Backends[0].Request.Host; h != "h1" {
		t.Errorf("host_rewrite_header: host %q, want the first value h1", h)
	}
}

func TestRequestHeaderMutations(t *testing.T) {
	r := toCluster("c", prefix("/"))
	r.RequestHeadersToAdd = []*corev3.HeaderValueOption{
		opt("X-Header-Set", "set-overwrites-values", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
		opt("X-Header-Add", "add-appends-values", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD),
		opt("x-if-absent", "new", corev3.HeaderValueOption_ADD_IF_ABSENT),
		opt("x-if-exists", "over", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS),
		opt("x-missing-if-exists", "over", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS),
		opt("x-percent", "100%% sure", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
		opt("x-empty", "", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
		{Header: &corev3.HeaderValue{Key: "x-kept-empty"}, KeepEmptyValue: true},
		{Header: &corev3.HeaderValue{Key: "x-legacy-append"}, Append: wrapperspb.Bool(false)},
		{Header: &corev3.HeaderValue{Key: "x-legacy", Value: "v"}, Append: wrapperspb.Bool(false)},
		// Removed before anything is added: the header stays.
		opt("x-header-remove", "re-added", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD),
	}
	r.RequestHeadersToRemove = []string{"X-Header-Remove"}
	res := routed(t, config(vhost("vh", []string{"*"}, r)), Request{Headers: H(
		"x-header-set", "original",
		"X-Header-Add", "some-other-value",
		"x-if-absent", "old",
		"x-if-exists", "old",
		"x-header-remove", "gone",
		"x-legacy", "old",
	)})
	got := res.Backends[0].Request.Headers
	for name, want := range map[string]string{
		"x-header-set":    "set-overwrites-values",
		"x-header-add":    "some-other-value,add-appends-values",
		"x-if-absent":     "old",
		"x-if-exists":     "over",
		"x-percent":       "100% sure",
		"x-kept-empty":    "",
		"x-legacy":        "v",
		"x-header-remove": "re-added",
	} {
		if v, ok := got.Get(name); !ok || v != want {
			t.Errorf("%s: %q (present %v), want %q", name, v, ok, want)
		}
	}
	for _, name := range []string{"x-missing-if-exists", "x-empty", "x-legacy-append"} {
		if got.Has(name) {
			t.Errorf("%s is set: %v", name, got.Values(name))
		}
	}
	if n := len(got.Values("x-header-set")); n != 1 {
		t.Errorf("x-header-set has %d values, want 1", n)
	}
	r.RequestHeadersToAdd = []*corev3.HeaderValueOption{opt("x-cmd", "%REQ(x-a)%", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD)}
	if res := Route(config(vhost("vh", []string{"*"}, r)), Request{}); len(res.Warnings) == 0 {
		t.Errorf("a substitution command is not reported")
	}
}

func TestHeaderLevels(t *testing.T) {
	set := func(v string) []*corev3.HeaderValueOption {
		return []*corev3.HeaderValueOption{opt("x-level", v, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)}
	}
	route := &routev3.Route{Name: "r", Match: prefix("/"), RequestHeadersToAdd: set("route"), ResponseHeadersToAdd: set("route"),
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{
			Clusters: []*routev3.WeightedCluster_ClusterWeight{
				{Name: "a", Weight: wrapperspb.UInt32(1), RequestHeadersToAdd: append(set("cluster"), opt("x-cluster", "a", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD)),
					ResponseHeadersToAdd: append(set("cluster"), opt("x-cluster", "a", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD)),
					HostRewriteSpecifier: &routev3.WeightedCluster_ClusterWeight_HostRewriteLiteral{HostRewriteLiteral: "a.internal"}},
				{Name: "b", Weight: wrapperspb.UInt32(3)},
			},
		}}}}}
	vh := vhost("vh", []string{"*"}, route)
	rc := config(vh)
	res := routed(t, rc, Request{Host: "echo"})
	a, b := res.Backend("a"), res.Backend("b")
	if a == nil || b == nil {
		t.Fatalf("backends %+v", res.Backends)
	}
	// The weighted cluster's headers go first, the route's after: the route's win.
	if v, _ := a.Request.Headers.Get("x-level"); v != "route" {
		t.Errorf("x-level %q for a, want route", v)
	}
	if v, _ := a.Request.Headers.Get("x-cluster"); v != "a" || b.Request.Headers.Has("x-cluster") {
		t.Errorf("x-cluster %q for a, %v for b", v, b.Request.Headers.Values("x-cluster"))
	}
	if a.Request.Host != "a.internal" || b.Request.Host != "echo" {
		t.Errorf("hosts %q and %q", a.Request.Host, b.Request.Host)
	}
	if v, _ := a.Response(H("x-level", "upstream")).Get("x-level"); v != "route" {
		t.Errorf("response x-level %q for a, want route", v)
	}
	if v, _ := a.Response(nil).Get("x-cluster"); v != "a" {
		t.Errorf("response x-cluster %q for a", v)
	}
	if res.Share("a") != 0.25 || res.Share("b") != 0.75 || res.TotalWeight != 4 {
		t.Errorf("shares %v %v of %d", res.Share("a"), res.Share("b"), res.TotalWeight)
	}
	// Route configuration's mutations are evaluated last and win, unless
	// most_specific_header_mutations_wins.
	vh.RequestHeadersToAdd = set("vhost")
	rc.RequestHeadersToAdd = set("config")
	if v, _ := routed(t, rc, Request{}).Backend("b").Request.Headers.Get("x-level"); v != "config" {
		t.Errorf("x-level %q, want config", v)
	}
	rc.MostSpecificHeaderMutationsWins = true
	if v, _ := routed(t, rc, Request{}).Backend("b").Request.Headers.Get("x-level"); v != "route" {
		t.Errorf("most_specific_header_mutations_wins: x-level %q, want route", v)
	}
}

func redirectRoute(m *routev3.RouteMatch, rd *routev3.RedirectAction) *routev3.RouteConfiguration {
	return config(vhost("vh", []string{"*"}, &routev3.Route{Name: "r", Match: m, Action: &routev3.Route_Redirect{Redirect: rd}}))
}

func TestRedirectLocation(t *testing.T) {
	cases := []struct {
		name   string
		match  *routev3.RouteMatch
		rd     *routev3.RedirectAction
		req    Request
		want   string
		status int
	}{
		{"host", sepPrefix("/h"), &routev3.RedirectAction{HostRedirect: "example.org"}, Request{Host: "echo", Path: "/h"}, "http://example.org/h", 301},
		{"host drops the request's port", sepPrefix("/h"), &routev3.RedirectAction{HostRedirect: "example.org", ResponseCode: routev3.RedirectAction_FOUND}, Request{Host: "echo:8080", Path: "/h"}, "http://example.org/h", 302},
		{"port", sepPrefix("/port"), &routev3.RedirectAction{PortRedirect: 8083}, Request{Host: "echo", Path: "/port"}, "http://echo:8083/port", 301},
		{"port replaces the request's", sepPrefix("/port"), &routev3.RedirectAction{PortRedirect: 8083}, Request{Host: "echo:80", Path: "/port"}, "http://echo:8083/port", 301},
		{"port and host", sepPrefix("/port"), &routev3.RedirectAction{PortRedirect: 8083, HostRedirect: "example.org"}, Request{Host: "echo:9", Path: "/port"}, "http://example.org:8083/port", 301},
		{"IPv6 host and port", sepPrefix("/port"), &routev3.RedirectAction{PortRedirect: 8083}, Request{Host: "[fd00::1]:80", Path: "/port"}, "http://[fd00::1]:8083/port", 301},
		{"IPv6 host without port", sepPrefix("/port"), &routev3.RedirectAction{PortRedirect: 8083}, Request{Host: "[fd00::1]", Path: "/port"}, "http://[fd00::1]:8083/port", 301},
		{"scheme", sepPrefix("/s"), &routev3.RedirectAction{SchemeRewriteSpecifier: &routev3.RedirectAction_SchemeRedirect{SchemeRedirect: "https"}}, Request{Host: "echo", Path: "/s"}, "https://echo/s", 301},
		{"scheme drops http's default port", sepPrefix("/s"), &routev3.RedirectAction{SchemeRewriteSpecifier: &routev3.RedirectAction_SchemeRedirect{SchemeRedirect: "https"}}, Request{Host: "echo:80", Path: "/s"}, "https://echo/s", 301},
		{"scheme keeps another port", sepPrefix("/s"), &routev3.RedirectAction{SchemeRewriteSpecifier: &routev3.RedirectAction_SchemeRedirect{SchemeRedirect: "https"}}, Request{Host: "echo:8080", Path: "/s"}, "https://echo:8080/s", 301},
		{"same scheme keeps :80", sepPrefix("/s"), &routev3.RedirectAction{SchemeRewriteSpecifier: &routev3.RedirectAction_SchemeRedirect{SchemeRedirect: "http"}}, Request{Host: "echo:80", Path: "/s"}, "http://echo:80/s", 301},
		{"https to http drops :443", sepPrefix("/s"), &routev3.RedirectAction{SchemeRewriteSpecifier: &routev3.RedirectAction_SchemeRedirect{SchemeRedirect: "http"}}, Request{Scheme: "https", Host: "echo:443", Path: "/s"}, "http://echo/s", 301},
		{"https_redirect", sepPrefix("/s"), &routev3.RedirectAction{SchemeRewriteSpecifier: &routev3.RedirectAction_HttpsRedirect{HttpsRedirect: true}}, Request{Host: "echo", Path: "/s"}, "https://echo/s", 301},
		{"scheme and a default port_redirect: Envoy keeps it", sepPrefix("/s"), &routev3.RedirectAction{SchemeRewriteSpecifier: &routev3.RedirectAction_SchemeRedirect{SchemeRedirect: "https"}, PortRedirect: 443}, Request{Host: "echo", Path: "/s"}, "https://echo:443/s", 301},
		{"path_redirect keeps the query", sepPrefix("/full"), &routev3.RedirectAction{PathRewriteSpecifier: &routev3.RedirectAction_PathRedirect{PathRedirect: "/full-path-replacement"}, ResponseCode: routev3.RedirectAction_SEE_OTHER}, Request{Host: "echo", Path: "/full/path/original?a=1"}, "http://echo/full-path-replacement?a=1", 303},
		{"path_redirect with its own query", sepPrefix("/full"), &routev3.RedirectAction{PathRewriteSpecifier: &routev3.RedirectAction_PathRedirect{PathRedirect: "/p?b=2"}, StripQuery: true}, Request{Host: "echo", Path: "/full?a=1"}, "http://echo/p?b=2", 301},
		{"strip_query", sepPrefix("/full"), &routev3.RedirectAction{PathRewriteSpecifier: &routev3.RedirectAction_PathRedirect{PathRedirect: "/p"}, StripQuery: true}, Request{Host: "echo", Path: "/full?a=1"}, "http://echo/p", 301},
		{"path without slash", sepPrefix("/full"), &routev3.RedirectAction{PathRewriteSpecifier: &routev3.RedirectAction_PathRedirect{PathRedirect: "p"}}, Request{Host: "echo", Path: "/full"}, "http://echo/p", 301},
		{"prefix_rewrite", sepPrefix("/original-prefix"), &routev3.RedirectAction{PathRewriteSpecifier: &routev3.RedirectAction_PrefixRewrite{PrefixRewrite: "/replacement-prefix"}, ResponseCode: routev3.RedirectAction_TEMPORARY_REDIRECT}, Request{Host: "echo", Path: "/original-prefix/lemon?q"}, "http://echo/replacement-prefix/lemon?q", 307},
		{"regex_rewrite keeps the query", sepPrefix("/strip"), &routev3.RedirectAction{PathRewriteSpecifier: &routev3.RedirectAction_RegexRewrite{RegexRewrite: regexSub(`^/strip/*`, "/")}, ResponseCode: routev3.RedirectAction_PERMANENT_REDIRECT}, Request{Host: "echo", Path: "/strip/x?q=1"}, "http://echo/x?q=1", 308},
		{"regex_rewrite and strip_query", sepPrefix("/strip"), &routev3.RedirectAction{PathRewriteSpecifier: &routev3.RedirectAction_RegexRewrite{RegexRewrite: regexSub(`^/strip/*`, "/")}, StripQuery: true}, Request{Host: "echo", Path: "/strip/x?q=1"}, "http://echo/x", 301},
		{"no change but the code", sepPrefix("/redirect"), &routev3.RedirectAction{ResponseCode: routev3.RedirectAction_SEE_OTHER}, Request{Host: "echo", Path: "/redirect?x"}, "http://echo/redirect?x", 303},
	}
	for _, c := range cases {
		res := routed(t, redirectRoute(c.match, c.rd), c.req)
		if res.Kind != Redirect || res.Location != c.want || res.Status != c.status {
			t.Errorf("%s: %s %d %q, want redirect %d %q", c.name, res.Kind, res.Status, res.Location, c.status, c.want)
		}
		if loc, _ := res.LocalResponse().Get("location"); loc != c.want {
			t.Errorf("%s: local response location %q", c.name, loc)
		}
	}
}

func TestDirectResponsesAndNoRoute(t *testing.T) {
	dr := &routev3.Route{Name: "dr", Match: exactPath("/dr"), ResponseHeadersToAdd: []*corev3.HeaderValueOption{opt("x-dr", "1", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD)},
		Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 500, Body: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "oops"}}}}}
	moved := &routev3.Route{Name: "moved", Match: exactPath("/moved"), Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 301}}}
	rc := config(vhost("vh", []string{"*"}, dr, moved))
	res := routed(t, rc, Request{Path: "/dr"})
	if res.Kind != DirectResponse || res.Status != 500 || res.Body != "oops" || res.Route != "dr" {
		t.Errorf("direct response: %+v", res)
	}
	if v, _ := res.LocalResponse().Get("x-dr"); v != "1" {
		t.Errorf("direct response headers %v", res.LocalResponse())
	}
	if res := routed(t, rc, Request{Host: "h", Path: "/moved"}); res.Location != "http://h/moved" {
		t.Errorf("a 3xx direct response's location %q", res.Location)
	}
	if res := routed(t, rc, Request{Path: "/none"}); res.Kind != NoRoute || res.Status != 404 || res.RouteIndex != -1 {
		t.Errorf("no route: %+v", res)
	}
}

func TestRequireTLS(t *testing.T) {
	vh := vhost("vh", []string{"*"}, toCluster("c", prefix("/")))
	vh.RequireTls = routev3.VirtualHost_ALL
	res := routed(t, config(vh), Request{Host: "h", Path: "/a?b"})
	if res.Kind != Redirect || res.Status != 301 || res.Location != "https://h/a?b" {
		t.Errorf("require_tls: %+v", res)
	}
	if res := routed(t, config(vh), Request{Scheme: "https", Host: "h"}); res.Kind != Forward {
		t.Errorf("require_tls over https: %+v", res)
	}
}

func TestPolicies(t *testing.T) {
	ra := &routev3.RouteAction{
		ClusterSpecifier:            &routev3.RouteAction_Cluster{Cluster: "c"},
		ClusterNotFoundResponseCode: routev3.RouteAction_INTERNAL_SERVER_ERROR,
		RetryPolicy:                 &routev3.RetryPolicy{RetryOn: "connect-failure, retriable-status-codes", RetriableStatusCodes: []uint32{503}, PerTryTimeout: durationpb.New(time.Second)},
		RequestMirrorPolicies: []*routev3.RouteAction_RequestMirrorPolicy{{Cluster: "m", RuntimeFraction: &corev3.RuntimeFractionalPercent{
			DefaultValue: &typev3.FractionalPercent{Numerator: 10, Denominator: typev3.FractionalPercent_TEN_THOUSAND}}}},
	}
	vh := vhost("vh", []string{"*"}, &routev3.Route{Match: prefix("/"), Action: &routev3.Route_Route{Route: ra}})
	res := routed(t, config(vh), Request{})
	if res.Timeout != 15*time.Second {
		t.Errorf("default timeout %v", res.Timeout)
	}
	if res.ClusterNotFoundStatus != 500 {
		t.Errorf("cluster not found status %d", res.ClusterNotFoundStatus)
	}
	want := &Retry{NumRetries: 1, RetryOn: []string{"connect-failure", "retriable-status-codes"}, RetriableStatusCodes: []uint32{503}, PerTryTimeout: time.Second, BackoffBase: 25 * time.Millisecond, BackoffMax: 250 * time.Millisecond}
	if r := res.Retry; r == nil || r.NumRetries != want.NumRetries || !slices.Equal(r.RetryOn, want.RetryOn) || !slices.Equal(r.RetriableStatusCodes, want.RetriableStatusCodes) ||
		r.PerTryTimeout != want.PerTryTimeout || r.BackoffBase != want.BackoffBase || r.BackoffMax != want.BackoffMax {
		t.Errorf("retry %+v, want %+v", res.Retry, want)
	}
	if len(res.Mirrors) != 1 || res.Mirrors[0] != (Mirror{"m", 10, 10_000}) {
		t.Errorf("mirrors %+v", res.Mirrors)
	}
	ra.Timeout = durationpb.New(0)
	ra.RetryPolicy = nil
	ra.RequestMirrorPolicies = nil
	ra.ClusterNotFoundResponseCode = routev3.RouteAction_SERVICE_UNAVAILABLE
	vh.RetryPolicy = &routev3.RetryPolicy{RetryOn: "5xx", NumRetries: wrapperspb.UInt32(3),
		RetryBackOff: &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(100 * time.Millisecond)}}
	vh.RequestMirrorPolicies = []*routev3.RouteAction_RequestMirrorPolicy{{Cluster: "vm"}}
	res = routed(t, config(vh), Request{})
	if res.Timeout != 0 || res.ClusterNotFoundStatus != 503 {
		t.Errorf("timeout %v, cluster not found %d", res.Timeout, res.ClusterNotFoundStatus)
	}
	if r := res.Retry; r == nil || r.NumRetries != 3 || r.BackoffBase != 100*time.Millisecond || r.BackoffMax != time.Second {
		t.Errorf("virtual host retry %+v", res.Retry)
	}
	if len(res.Mirrors) != 1 || res.Mirrors[0] != (Mirror{"vm", 100, 100}) {
		t.Errorf("virtual host mirrors %+v", res.Mirrors)
	}
}

func TestWeightedClusters(t *testing.T) {
	wc := &routev3.WeightedCluster{Clusters: []*routev3.WeightedCluster_ClusterWeight{
		{Name: "v1", Weight: wrapperspb.UInt32(70)}, {Name: "v2", Weight: wrapperspb.UInt32(30)}, {Name: "v3", Weight: wrapperspb.UInt32(0)},
	}}
	rc := config(vhost("vh", []string{"*"}, &routev3.Route{Match: prefix("/"), Action: &routev3.Route_Route{Route: &routev3.RouteAction{
		ClusterSpecifier: &routev3.RouteAction_WeightedClusters{WeightedClusters: wc}}}}))
	res := routed(t, rc, Request{})
	if !res.Weighted || res.TotalWeight != 100 || res.Share("v1") != 0.7 || res.Share("v2") != 0.3 || res.Share("v3") != 0 || res.Share("none") != 0 {
		t.Errorf("weighted %+v", res)
	}
	wc.Clusters = wc.Clusters[2:]
	if res := Route(rc, Request{}); len(res.Warnings) == 0 {
		t.Errorf("weights summing to 0 are not reported")
	}
}

func TestChain(t *testing.T) {
	chain := func(name string, port uint32, prefixes ...string) *listenerv3.FilterChain {
		fcm := &listenerv3.FilterChainMatch{}
		if port != 0 {
			fcm.DestinationPort = wrapperspb.UInt32(port)
		}
		for _, p := range prefixes {
			pp := netip.MustParsePrefix(p)
			fcm.PrefixRanges = append(fcm.PrefixRanges, &corev3.CidrRange{AddressPrefix: pp.Addr().String(), PrefixLen: wrapperspb.UInt32(uint32(pp.Bits()))})
		}
		return &listenerv3.FilterChain{Name: name, FilterChainMatch: fcm}
	}
	l := &listenerv3.Listener{
		FilterChains: []*listenerv3.FilterChain{
			chain("svc-80", 80, "10.96.0.10/32"),
			chain("net-80", 80, "10.96.0.0/16"),
			chain("svc-any-port", 0, "10.96.0.11/32"),
			chain("tls-443", 443),
		},
		DefaultFilterChain: &listenerv3.FilterChain{Name: "default"},
	}
	l.FilterChains[3].FilterChainMatch.TransportProtocol = "tls"
	for dst, want := range map[string]string{
		"10.96.0.10:80":   "svc-80",
		"10.96.0.12:80":   "net-80",
		"10.97.0.1:80":    "default", // port 80 has chains: no falling back to the chains of any port
		"10.96.0.11:80":   "net-80",
		"10.96.0.11:8080": "svc-any-port",
		"10.96.0.12:8080": "default",
		"10.96.0.12:443":  "default", // a plaintext connection does not match tls
	} {
		fc := Chain(l, Conn{Dst: netip.MustParseAddrPort(dst)})
		if fc.GetName() != want {
			t.Errorf("%s: chain %q, want %q", dst, fc.GetName(), want)
		}
	}
	if fc := Chain(l, Conn{Dst: netip.MustParseAddrPort("10.1.1.1:443"), TransportProtocol: "tls"}); fc.GetName() != "tls-443" {
		t.Errorf("tls: chain %q", fc.GetName())
	}
}

func TestConnectionManagers(t *testing.T) {
	hcm := &hcmv3.HttpConnectionManager{StatPrefix: "x", RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: "out|ns/svc|80"}}}
	packed, err := anypb.New(hcm)
	if err != nil {
		t.Fatal(err)
	}
	fc := &listenerv3.FilterChain{Filters: []*listenerv3.Filter{{Name: "envoy.filters.network.http_connection_manager", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: packed}}}}
	got, err := ConnectionManager(fc)
	if err != nil || got.GetRds().GetRouteConfigName() != "out|ns/svc|80" {
		t.Errorf("ConnectionManager: %v, %v", got, err)
	}
	if got, err := ConnectionManager(&listenerv3.FilterChain{}); got != nil || err != nil {
		t.Errorf("a chain without a connection manager: %v, %v", got, err)
	}
	l := &listenerv3.Listener{Name: "api", ApiListener: &listenerv3.ApiListener{ApiListener: packed}}
	if got, err := APIListenerManager(l); err != nil || got.GetStatPrefix() != "x" {
		t.Errorf("APIListenerManager: %v, %v", got, err)
	}
}

func TestHeaderHelpers(t *testing.T) {
	h := HeaderMap(map[string]string{"B": "2", "a": "1"})
	if len(h) != 2 || h[0] != (Header{"a", "1"}) || h[1] != (Header{"b", "2"}) {
		t.Errorf("HeaderMap: %v", h)
	}
	for in, want := range map[string]string{"plain": "plain", "100%%": "100%", "%%%%": "%%", "a%REQ(x)%b": "a%REQ(x)%b", "50%": "50%"} {
		got, err := formatValue(in)
		if got != want || (err != nil) != (in == "a%REQ(x)%b" || in == "50%") {
			t.Errorf("formatValue(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
