package rbaceval_test

import (
	"net/netip"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	exprpb "google.golang.org/genproto/googleapis/api/expr/v1alpha1"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/open-service-mesh/osm-operator/xds/rbaceval"
	"github.com/open-service-mesh/osm-operator/xds/routesim"
)

// Builders of RBAC rules.

func rules(action rbacv3.RBAC_Action, policies map[string]*rbacv3.Policy) *rbacv3.RBAC {
	if policies == nil {
		policies = map[string]*rbacv3.Policy{}
	}
	return &rbacv3.RBAC{Action: action, Policies: policies}
}

func allow(policies map[string]*rbacv3.Policy) *rbacv3.RBAC {
	return rules(rbacv3.RBAC_ALLOW, policies)
}

// one is ALLOW rules of a single policy "p".
func one(perm *rbacv3.Permission, pr *rbacv3.Principal) *rbacv3.RBAC {
	return allow(map[string]*rbacv3.Policy{"p": policy(perm, pr)})
}

func policy(perm *rbacv3.Permission, pr *rbacv3.Principal) *rbacv3.Policy {
	return &rbacv3.Policy{Permissions: []*rbacv3.Permission{perm}, Principals: []*rbacv3.Principal{pr}}
}

func anyPerm() *rbacv3.Permission { return &rbacv3.Permission{Rule: &rbacv3.Permission_Any{Any: true}} }
func anyID() *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_Any{Any: true}}
}

func exact(s string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s}}
}

func exactFold(s string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s}, IgnoreCase: true}
}

func prefix(s string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: s}}
}

func suffixFold(s string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: s}, IgnoreCase: true}
}

func regex(r string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: r}}}
}

func header(name string, m *matcherv3.StringMatcher) *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_Header{Header: headerMatcher(name, m)}}
}

func headerMatcher(name string, m *matcherv3.StringMatcher) *routev3.HeaderMatcher {
	return &routev3.HeaderMatcher{Name: name, HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: m}}
}

func urlPath(m *matcherv3.StringMatcher) *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_UrlPath{UrlPath: &matcherv3.PathMatcher{Rule: &matcherv3.PathMatcher_Path{Path: m}}}}
}

func andPerms(ps ...*rbacv3.Permission) *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_AndRules{AndRules: &rbacv3.Permission_Set{Rules: ps}}}
}

func orPerms(ps ...*rbacv3.Permission) *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_OrRules{OrRules: &rbacv3.Permission_Set{Rules: ps}}}
}

func notPerm(p *rbacv3.Permission) *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_NotRule{NotRule: p}}
}

func port(n uint32) *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_DestinationPort{DestinationPort: n}}
}

func portRange(start, end int32) *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_DestinationPortRange{DestinationPortRange: &typev3.Int32Range{Start: start, End: end}}}
}

func sni(m *matcherv3.StringMatcher) *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_RequestedServerName{RequestedServerName: m}}
}

func cidr(prefix string, bits uint32) *corev3.CidrRange {
	return &corev3.CidrRange{AddressPrefix: prefix, PrefixLen: wrapperspb.UInt32(bits)}
}

func destIP(r *corev3.CidrRange) *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_DestinationIp{DestinationIp: r}}
}

func authn(m *matcherv3.StringMatcher) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_Authenticated_{Authenticated: &rbacv3.Principal_Authenticated{PrincipalName: m}}}
}

func directIP(r *corev3.CidrRange) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_DirectRemoteIp{DirectRemoteIp: r}}
}

func remoteIP(r *corev3.CidrRange) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_RemoteIp{RemoteIp: r}}
}

func sourceIP(r *corev3.CidrRange) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_SourceIp{SourceIp: r}} //nolint:staticcheck // deprecated, still loaded by Envoy
}

func andIDs(ps ...*rbacv3.Principal) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_AndIds{AndIds: &rbacv3.Principal_Set{Ids: ps}}}
}

func orIDs(ps ...*rbacv3.Principal) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_OrIds{OrIds: &rbacv3.Principal_Set{Ids: ps}}}
}

func notID(p *rbacv3.Principal) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_NotId{NotId: p}}
}

// Requests.

const bookbuyer = "spiffe://cluster.local/ns/bookbuyer/sa/bookbuyer"

func httpReq(nameValues ...string) rbaceval.Request {
	return rbaceval.Request{
		TLS: true, PeerURISANs: []string{bookbuyer},
		DirectRemoteIP: netip.MustParseAddr("10.244.0.1"),
		DestinationIP:  netip.MustParseAddr("10.244.1.1"), DestinationPort: 14001,
		HTTP: true, Headers: routesim.H(nameValues...),
	}
}

func get(path string) rbaceval.Request { return httpReq(":method", "GET", ":path", path) }

func with(r rbaceval.Request, f func(*rbaceval.Request)) rbaceval.Request {
	f(&r)
	return r
}

type verdictCase struct {
	name   string
	rules  *rbacv3.RBAC
	req    rbaceval.Request
	allow  bool
	policy string
}

func runVerdicts(t *testing.T, cases []verdictCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := rbaceval.Evaluate(c.rules, c.req)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed != c.allow || d.Policy != c.policy {
				t.Errorf("got allowed=%v policy=%q (%s), want allowed=%v policy=%q", d.Allowed, d.Policy, d.Reason, c.allow, c.policy)
			}
			if d.Reason == "" {
				t.Error("no reason")
			}
		})
	}
}

// TestActions covers the engine: policy order, the effective policy id and
// the actions.
func TestActions(t *testing.T) {
	matchAll := policy(anyPerm(), anyID())
	matchNone := policy(port(1), anyID())
	four := map[string]*rbacv3.Policy{"z": matchAll, "a|x": matchAll, "a/x": matchAll, "b": matchNone}
	runVerdicts(t, []verdictCase{
		// source/extensions/filters/common/rbac/utility.h, createEngine: no
		// rules, no engine; rbac_filter.cc: "no engine, allowed by default".
		{name: "nil rules allow", rules: nil, req: get("/"), allow: true},
		// engine_impl.cc, handleAction: ALLOW allows what matches.
		{name: "ALLOW match", rules: one(anyPerm(), anyID()), req: get("/"), allow: true, policy: "p"},
		{name: "ALLOW no match", rules: one(port(1), anyID()), req: get("/")},
		// engine_impl.cc, checkPolicyMatch: no policy, no match; ALLOW denies.
		{name: "ALLOW no policies denies", rules: allow(nil), req: get("/")},
		// engine_impl.cc: DENY allows what does not match; the matching
		// policy is still the effective policy id.
		{name: "DENY match", rules: rules(rbacv3.RBAC_DENY, map[string]*rbacv3.Policy{"p": matchAll}), req: get("/"), policy: "p"},
		{name: "DENY no match", rules: rules(rbacv3.RBAC_DENY, map[string]*rbacv3.Policy{"p": matchNone}), req: get("/"), allow: true},
		{name: "DENY no policies allows", rules: rules(rbacv3.RBAC_DENY, nil), req: get("/"), allow: true},
		// engine_impl.cc: LOG always allows, a match only sets access_log_hint.
		{name: "LOG match", rules: rules(rbacv3.RBAC_LOG, map[string]*rbacv3.Policy{"p": matchAll}), req: get("/"), allow: true, policy: "p"},
		{name: "LOG no match", rules: rules(rbacv3.RBAC_LOG, map[string]*rbacv3.Policy{"p": matchNone}), req: get("/"), allow: true},
		// engine_impl.h: policies_ is a std::map, iterated in byte order of
		// the names; the first match is reported ("/" < "|" < "z").
		{name: "first policy in name order", rules: allow(four), req: get("/"), allow: true, policy: "a/x"},
		{name: "first policy in name order, DENY", rules: rules(rbacv3.RBAC_DENY, four), req: get("/"), policy: "a/x"},
		// Upper case sorts before lower case in byte order.
		{name: "byte order", rules: allow(map[string]*rbacv3.Policy{"b": matchAll, "B": matchAll}), req: get("/"), allow: true, policy: "B"},
		// matchers.h, PolicyMatcher: a permission AND a principal.
		{name: "permission without principal", rules: one(anyPerm(), authn(exact("spiffe://other"))), req: get("/")},
		{name: "principal without permission", rules: one(port(1), authn(exact(bookbuyer))), req: get("/")},
		// PolicyMatcher: each list is an OrMatcher.
		{name: "second permission and second principal", rules: allow(map[string]*rbacv3.Policy{"p": {
			Permissions: []*rbacv3.Permission{port(1), port(14001)},
			Principals:  []*rbacv3.Principal{authn(exact("x")), authn(exact(bookbuyer))},
		}}), req: get("/"), allow: true, policy: "p"},
	})
}

// TestPermissions covers every permission kind.
func TestPermissions(t *testing.T) {
	network := with(get("/"), func(r *rbaceval.Request) { r.HTTP = false })
	runVerdicts(t, []verdictCase{
		// matchers.cc, AndMatcher / OrMatcher / NotMatcher.
		{name: "and all", rules: one(andPerms(port(14001), header(":method", exact("GET"))), anyID()), req: get("/"), allow: true, policy: "p"},
		{name: "and one fails", rules: one(andPerms(port(14001), header(":method", exact("POST"))), anyID()), req: get("/")},
		{name: "or one", rules: one(orPerms(port(1), header(":method", exact("GET"))), anyID()), req: get("/"), allow: true, policy: "p"},
		{name: "or none", rules: one(orPerms(port(1), port(2)), anyID()), req: get("/")},
		{name: "not", rules: one(notPerm(port(1)), anyID()), req: get("/"), allow: true, policy: "p"},
		{name: "not of a match", rules: one(notPerm(port(14001)), anyID()), req: get("/")},
		// source/common/http/header_utility.cc, matchHeaders: values of a
		// repeated header are joined with ",".
		{name: "header repeated joined", rules: one(header("x-a", exact("1,2")), anyID()), req: httpReq("x-a", "1", "x-a", "2"), allow: true, policy: "p"},
		{name: "header repeated no single value", rules: one(header("x-a", exact("1")), anyID()), req: httpReq("x-a", "1", "x-a", "2")},
		{name: "header regex full match of joined", rules: one(header("x-a", regex("[0-9]+")), anyID()), req: httpReq("x-a", "1", "x-a", "2")},
		// header_utility.cc: a missing header matches no value matcher, even
		// inverted; treat_missing_header_as_empty makes it "".
		{name: "missing header", rules: one(header("x-a", regex(".*")), anyID()), req: get("/")},
		{name: "missing header inverted", rules: one(&rbacv3.Permission{Rule: &rbacv3.Permission_Header{Header: &routev3.HeaderMatcher{
			Name: "x-a", InvertMatch: true, HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: exact("1")},
		}}}, anyID()), req: get("/")},
		{name: "missing header as empty", rules: one(&rbacv3.Permission{Rule: &rbacv3.Permission_Header{Header: &routev3.HeaderMatcher{
			Name: "x-a", TreatMissingHeaderAsEmpty: true, HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: exact("")},
		}}}, anyID()), req: get("/"), allow: true, policy: "p"},
		{name: "present_match false", rules: one(&rbacv3.Permission{Rule: &rbacv3.Permission_Header{Header: &routev3.HeaderMatcher{
			Name: "x-a", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: false},
		}}}, anyID()), req: get("/"), allow: true, policy: "p"},
		{name: "invert on present header", rules: one(&rbacv3.Permission{Rule: &rbacv3.Permission_Header{Header: &routev3.HeaderMatcher{
			Name: "x-a", InvertMatch: true, HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: exact("1")},
		}}}, anyID()), req: httpReq("x-a", "2"), allow: true, policy: "p"},
		// Header names are Http::LowerCaseString.
		{name: "header name case", rules: one(header("X-Tenant", exact("acme")), anyID()), req: httpReq("x-tenant", "acme"), allow: true, policy: "p"},
		// source/common/common/matchers.h, StringMatcherImpl: ignore_case.
		{name: "header ignore_case", rules: one(header("x-a", exactFold("ACME")), anyID()), req: httpReq("x-a", "acme"), allow: true, policy: "p"},
		{name: "header case-sensitive", rules: one(header("x-a", exact("ACME")), anyID()), req: httpReq("x-a", "acme")},
		// rbac.proto: the :path pseudo-header keeps its query.
		{name: ":path header keeps the query", rules: one(header(":path", exact("/a")), anyID()), req: get("/a?x=1")},
		// matchers.cc, PathMatcher; common/common/matchers.cc
		// PathMatcher::match: the query and fragment are removed first.
		{name: "url_path drops the query", rules: one(urlPath(exact("/a")), anyID()), req: get("/a?x=1"), allow: true, policy: "p"},
		{name: "url_path drops the fragment", rules: one(urlPath(exact("/a")), anyID()), req: get("/a#f?x"), allow: true, policy: "p"},
		{name: "url_path case-sensitive", rules: one(urlPath(exact("/a")), anyID()), req: get("/A")},
		{name: "url_path ignore_case", rules: one(urlPath(exactFold("/a")), anyID()), req: get("/A"), allow: true, policy: "p"},
		// source/common/common/regex.cc: RE2::FullMatch, not a search.
		{name: "url_path regex is a full match", rules: one(urlPath(regex("/books")), anyID()), req: get("/books/1")},
		{name: "url_path regex", rules: one(urlPath(regex("/books(/[0-9]+)?")), anyID()), req: get("/books/1?x"), allow: true, policy: "p"},
		// network/rbac/rbac_filter.cc: handleAction(connection, info) with
		// empty headers: no :path, no header.
		{name: "url_path on network filter", rules: one(urlPath(prefix("/")), anyID()), req: network},
		{name: "header on network filter", rules: one(header(":method", exact("GET")), anyID()), req: network},
		{name: "not header on network filter", rules: one(notPerm(header(":method", exact("GET"))), anyID()), req: network, allow: true, policy: "p"},
		// matchers.cc, PortMatcher / PortRangeMatcher: the local port, [start, end).
		{name: "destination_port", rules: one(port(14001), anyID()), req: get("/"), allow: true, policy: "p"},
		{name: "destination_port other", rules: one(port(14002), anyID()), req: get("/")},
		{name: "port range start", rules: one(portRange(14001, 14002), anyID()), req: get("/"), allow: true, policy: "p"},
		{name: "port range end excluded", rules: one(portRange(14000, 14001), anyID()), req: get("/")},
		// matchers.cc, IPMatcher DownstreamLocal.
		{name: "destination_ip", rules: one(destIP(cidr("10.244.1.0", 24)), anyID()), req: get("/"), allow: true, policy: "p"},
		{name: "destination_ip other", rules: one(destIP(cidr("10.244.2.0", 24)), anyID()), req: get("/")},
		// matchers.cc, RequestedServerNameMatcher: connection.requestedServerName().
		{name: "requested_server_name ignore_case", rules: one(sni(exactFold("api.example.com")), anyID()),
			req: with(get("/"), func(r *rbaceval.Request) { r.ServerName = "API.example.com" }), allow: true, policy: "p"},
		{name: "requested_server_name suffix", rules: one(sni(suffixFold(".api.example.com")), anyID()),
			req: with(get("/"), func(r *rbaceval.Request) { r.ServerName = "v1.api.example.com" }), allow: true, policy: "p"},
		{name: "requested_server_name suffix is not the apex", rules: one(sni(suffixFold(".api.example.com")), anyID()),
			req: with(get("/"), func(r *rbaceval.Request) { r.ServerName = "api.example.com" })},
		{name: "requested_server_name none", rules: one(sni(exactFold("api.example.com")), anyID()), req: get("/")},
		// absl::EqualsIgnoreCase folds ASCII only: the Kelvin sign is not "k".
		{name: "ignore_case is ASCII", rules: one(sni(exactFold("k.example")), anyID()),
			req: with(get("/"), func(r *rbaceval.Request) { r.ServerName = "\u212a.example" })},
	})
}

// TestPrincipals covers every principal kind.
func TestPrincipals(t *testing.T) {
	cert := func(uris, dns []string, subject string) rbaceval.Request {
		return with(get("/"), func(r *rbaceval.Request) { r.PeerURISANs, r.PeerDNSSANs, r.PeerSubject = uris, dns, subject })
	}
	plain := with(get("/"), func(r *rbaceval.Request) { r.TLS, r.PeerURISANs = false, nil })
	addrs := with(get("/"), func(r *rbaceval.Request) {
		r.DirectRemoteIP = netip.MustParseAddr("10.0.0.1")
		r.SourceIP = netip.MustParseAddr("172.16.0.1")
		r.RemoteIP = netip.MustParseAddr("192.168.1.1")
	})
	runVerdicts(t, []verdictCase{
		// matchers.cc, AuthenticatedMatcher: never without TLS.
		{name: "authenticated needs TLS", rules: one(anyPerm(), authn(exact(bookbuyer))), req: plain},
		{name: "no principal_name needs TLS", rules: one(anyPerm(), authn(nil)), req: plain},
		// A peer certificate is a TLS connection's.
		{name: "a certificate implies TLS", rules: one(anyPerm(), authn(exact(bookbuyer))), req: with(get("/"), func(r *rbaceval.Request) { r.TLS = false }), allow: true, policy: "p"},
		{name: "a name matching \"\" needs TLS", rules: one(anyPerm(), authn(regex(".*"))), req: plain},
		// Without principal_name, any TLS connection, one without a
		// client certificate too.
		{name: "no principal_name, no certificate", rules: one(anyPerm(), authn(nil)), req: cert(nil, nil, ""), allow: true, policy: "p"},
		// URI SANs, then DNS SANs, then the subject, every one of each.
		{name: "second URI SAN", rules: one(anyPerm(), authn(exact(bookbuyer))), req: cert([]string{"spiffe://x", bookbuyer}, nil, ""), allow: true, policy: "p"},
		{name: "DNS SAN after URI SANs", rules: one(anyPerm(), authn(exact("nginx.example"))),
			req: cert([]string{bookbuyer}, []string{"a.example", "nginx.example"}, ""), allow: true, policy: "p"},
		{name: "subject after SANs", rules: one(anyPerm(), authn(exact("CN=nginx,O=example"))),
			req: cert([]string{bookbuyer}, []string{"a.example"}, "CN=nginx,O=example"), allow: true, policy: "p"},
		{name: "no name matches", rules: one(anyPerm(), authn(exact("nginx.example"))), req: cert([]string{bookbuyer}, []string{"a.example"}, "CN=x")},
		{name: "principal_name is exact", rules: one(anyPerm(), authn(exact("spiffe://cluster.local/ns/bookbuyer"))), req: get("/")},
		{name: "principal_name prefix", rules: one(anyPerm(), authn(prefix("spiffe://cluster.local/ns/"))), req: get("/"), allow: true, policy: "p"},
		// No certificate: the subject is "", which ".*" matches.
		{name: "no certificate matches empty", rules: one(anyPerm(), authn(regex(".*"))), req: cert(nil, nil, ""), allow: true, policy: "p"},
		// matchers.cc, IPMatcher: DownstreamDirectRemote, ConnectionRemote, DownstreamRemote.
		{name: "direct_remote_ip is the peer", rules: one(anyPerm(), directIP(cidr("10.0.0.0", 8))), req: addrs, allow: true, policy: "p"},
		{name: "direct_remote_ip is not the remote", rules: one(anyPerm(), directIP(cidr("192.168.0.0", 16))), req: addrs},
		{name: "remote_ip", rules: one(anyPerm(), remoteIP(cidr("192.168.0.0", 16))), req: addrs, allow: true, policy: "p"},
		{name: "remote_ip is not the peer", rules: one(anyPerm(), remoteIP(cidr("10.0.0.0", 8))), req: addrs},
		{name: "source_ip", rules: one(anyPerm(), sourceIP(cidr("172.16.0.0", 12))), req: addrs, allow: true, policy: "p"},
		{name: "remote_ip defaults to the peer", rules: one(anyPerm(), remoteIP(cidr("10.244.0.1", 32))), req: get("/"), allow: true, policy: "p"},
		// source/common/network/cidr_range.cc: the bits past the prefix are
		// cleared, a longer prefix is the whole address, no prefix_len is 0.
		{name: "cidr bits cleared", rules: one(anyPerm(), directIP(cidr("10.1.2.3", 8))), req: addrs, allow: true, policy: "p"},
		{name: "cidr prefix clamped", rules: one(anyPerm(), directIP(cidr("10.0.0.1", 64))), req: addrs, allow: true, policy: "p"},
		{name: "cidr prefix clamped exact", rules: one(anyPerm(), directIP(cidr("10.0.0.2", 64))), req: addrs},
		{name: "cidr without prefix_len is /0", rules: one(anyPerm(), directIP(&corev3.CidrRange{AddressPrefix: "192.0.2.1"})), req: addrs, allow: true, policy: "p"},
		// isInRange: the families must be the same.
		{name: "cidr /0 of IPv6", rules: one(anyPerm(), directIP(cidr("::", 0))), req: addrs},
		{name: "IPv4-mapped is IPv6", rules: one(anyPerm(), directIP(cidr("10.0.0.0", 8))),
			req: with(addrs, func(r *rbaceval.Request) { r.DirectRemoteIP = netip.MustParseAddr("::ffff:10.0.0.1") })},
		{name: "IPv6", rules: one(anyPerm(), directIP(cidr("fd00::", 8))),
			req: with(addrs, func(r *rbaceval.Request) { r.DirectRemoteIP = netip.MustParseAddr("fd00::1") }), allow: true, policy: "p"},
		// matchers.cc, AndMatcher / OrMatcher / NotMatcher / AlwaysMatcher for principals.
		{name: "and_ids", rules: one(anyPerm(), andIDs(directIP(cidr("10.0.0.0", 8)), authn(exact(bookbuyer)))), req: addrs, allow: true, policy: "p"},
		{name: "and_ids one fails", rules: one(anyPerm(), andIDs(directIP(cidr("10.0.0.0", 8)), authn(exact("x")))), req: addrs},
		{name: "or_ids", rules: one(anyPerm(), orIDs(directIP(cidr("11.0.0.0", 8)), authn(exact(bookbuyer)))), req: addrs, allow: true, policy: "p"},
		{name: "not_id", rules: one(anyPerm(), notID(authn(exact(bookbuyer)))), req: addrs},
		{name: "any", rules: one(anyPerm(), anyID()), req: plain, allow: true, policy: "p"},
		{name: "principal header", rules: one(anyPerm(), &rbacv3.Principal{Identifier: &rbacv3.Principal_Header{Header: headerMatcher("x-id", exact("a"))}}),
			req: httpReq("x-id", "a"), allow: true, policy: "p"},
		{name: "principal url_path", rules: one(anyPerm(), &rbacv3.Principal{Identifier: &rbacv3.Principal_UrlPath{UrlPath: &matcherv3.PathMatcher{Rule: &matcherv3.PathMatcher_Path{Path: prefix("/a")}}}}),
			req: get("/a/b"), allow: true, policy: "p"},
	})
}

// TestErrors covers what Envoy refuses and what rbaceval does not evaluate:
// errors, never verdicts.
func TestErrors(t *testing.T) {
	present := &matcherv3.MetadataMatcher{
		Filter: "f", Path: []*matcherv3.MetadataMatcher_PathSegment{{Segment: &matcherv3.MetadataMatcher_PathSegment_Key{Key: "k"}}},
		Value: &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_PresentMatch{PresentMatch: true}},
	}
	meta := &rbacv3.Permission{Rule: &rbacv3.Permission_Metadata{Metadata: present}} //nolint:staticcheck // deprecated, still loaded
	cases := []struct {
		name  string
		rules *rbacv3.RBAC
		req   rbaceval.Request
		want  string
	}{
		{name: "metadata permission", rules: one(andPerms(anyPerm(), meta), anyID()), req: get("/"), want: `policies["p"].permissions[0].and_rules.rules[1].metadata`},
		// Compiled as Envoy loads the rules: a policy no request reaches fails too.
		{name: "unsupported in a later policy", rules: allow(map[string]*rbacv3.Policy{"a": policy(anyPerm(), anyID()), "b": policy(meta, anyID())}), req: get("/"), want: `policies["b"]`},
		{name: "filter_state principal", rules: one(anyPerm(), &rbacv3.Principal{Identifier: &rbacv3.Principal_FilterState{FilterState: &matcherv3.FilterStateMatcher{Key: "k", Matcher: &matcherv3.FilterStateMatcher_StringMatch{StringMatch: exact("v")}}}}),
			req: get("/"), want: `principals[0].filter_state`},
		{name: "sourced_metadata principal", rules: one(anyPerm(), &rbacv3.Principal{Identifier: &rbacv3.Principal_SourcedMetadata{SourcedMetadata: &rbacv3.SourcedMetadata{MetadataMatcher: present}}}),
			req: get("/"), want: `principals[0].sourced_metadata`},
		// source/common/common/matchers.h: ignore_case has no effect for safe_regex.
		{name: "regex with ignore_case", rules: one(urlPath(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "/a"}}, IgnoreCase: true}), anyID()),
			req: get("/"), want: "ignore_case"},
		{name: "bad regex", rules: one(header("x", regex("(")), anyID()), req: get("/"), want: `permissions[0].header.string_match.safe_regex`},
		{name: "bad header regex", rules: one(&rbacv3.Permission{Rule: &rbacv3.Permission_Header{Header: &routev3.HeaderMatcher{Name: "x", HeaderMatchSpecifier: &routev3.HeaderMatcher_SafeRegexMatch{SafeRegexMatch: &matcherv3.RegexMatcher{Regex: "("}}}}}, anyID()),
			req: get("/"), want: "safe_regex_match"},
		// cidr_range.cc: a malformed address is refused.
		{name: "malformed CIDR", rules: one(anyPerm(), directIP(cidr("10.0.0", 8))), req: get("/"), want: "direct_remote_ip"},
		// rbac.proto validation: principals and permissions are required, any is true.
		{name: "no principals", rules: allow(map[string]*rbacv3.Policy{"p": {Permissions: []*rbacv3.Permission{anyPerm()}}}), req: get("/"), want: "Envoy refuses"},
		{name: "any false", rules: one(&rbacv3.Permission{Rule: &rbacv3.Permission_Any{Any: false}}, anyID()), req: get("/"), want: "Envoy refuses"},
		{name: "empty and_rules", rules: one(andPerms(), anyID()), req: get("/"), want: "Envoy refuses"},
		{name: "empty prefix", rules: one(anyPerm(), authn(prefix(""))), req: get("/"), want: "Envoy refuses"},
		// matchers.cc, PortRangeMatcher: start < end.
		{name: "port range", rules: one(portRange(10, 10), anyID()), req: get("/"), want: "destination_port_range"},
		{name: "condition", rules: allow(map[string]*rbacv3.Policy{"p": {Permissions: []*rbacv3.Permission{anyPerm()}, Principals: []*rbacv3.Principal{anyID()}, Condition: expr()}}), req: get("/"), want: "condition"},
		// What a request lacks, where a matcher needs it.
		{name: "no direct remote address", rules: one(anyPerm(), directIP(cidr("10.0.0.0", 8))), req: with(get("/"), func(r *rbaceval.Request) { r.DirectRemoteIP = netip.Addr{} }), want: "direct remote address"},
		{name: "remote_ip and x-forwarded-for", rules: one(anyPerm(), remoteIP(cidr("10.0.0.0", 8))), req: httpReq("x-forwarded-for", "1.2.3.4"), want: "x-forwarded-for"},
		{name: "no destination port", rules: one(port(80), anyID()), req: with(get("/"), func(r *rbaceval.Request) { r.DestinationPort = 0 }), want: "destination port"},
		{name: "no destination address", rules: one(destIP(cidr("10.0.0.0", 8)), anyID()), req: with(get("/"), func(r *rbaceval.Request) { r.DestinationIP = netip.Addr{} }), want: "destination address"},
		{name: "not a port", rules: one(anyPerm(), anyID()), req: with(get("/"), func(r *rbaceval.Request) { r.DestinationPort = 70000 }), want: "not a port"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := rbaceval.Evaluate(c.rules, c.req)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %+v, %v; want an error with %q", d, err, c.want)
			}
		})
	}
}

// expr is a CEL expression: true.
func expr() *exprpb.Expr {
	return &exprpb.Expr{ExprKind: &exprpb.Expr_ConstExpr{ConstExpr: &exprpb.Constant{ConstantKind: &exprpb.Constant_BoolValue{BoolValue: true}}}}
}
