package rbaceval

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/open-service-mesh/osm-operator/xds/routesim"
)

// input is what matchers read: the request, and its headers when the rules
// are an HTTP filter's (the network filter matches an empty header map:
// handleAction with Http::StaticEmptyHeaders in engine_impl.cc).
type input struct {
	req     *Request
	headers routesim.Headers
}

// matcher is one compiled permission or principal.
type matcher func(*input) (bool, error)

// compilePermission is Matcher::create for a permission
// (source/extensions/filters/common/rbac/matchers.cc); field names it in
// errors.
func compilePermission(p *rbacv3.Permission, field string) (matcher, error) {
	switch r := p.GetRule().(type) {
	case *rbacv3.Permission_AndRules:
		ms, err := compilePermissions(r.AndRules.GetRules(), field+".and_rules.rules")
		return func(in *input) (bool, error) { return allOf(ms, in) }, err
	case *rbacv3.Permission_OrRules:
		ms, err := compilePermissions(r.OrRules.GetRules(), field+".or_rules.rules")
		return func(in *input) (bool, error) { return anyOf(ms, in) }, err
	case *rbacv3.Permission_Any:
		return always, nil
	case *rbacv3.Permission_Header:
		return compileHeader(r.Header, field+".header")
	case *rbacv3.Permission_UrlPath:
		return compilePath(r.UrlPath, field+".url_path")
	case *rbacv3.Permission_DestinationIp:
		pre, err := compileCIDR(r.DestinationIp, field+".destination_ip")
		return func(in *input) (bool, error) {
			a := in.req.DestinationIP
			if !a.IsValid() {
				return false, fmt.Errorf("%s needs the request's destination address", field)
			}
			return pre.Contains(a), nil
		}, err
	case *rbacv3.Permission_DestinationPort:
		// PortMatcher: the local address's port.
		return func(in *input) (bool, error) {
			if in.req.DestinationPort == 0 {
				return false, fmt.Errorf("%s needs the request's destination port", field)
			}
			return in.req.DestinationPort == r.DestinationPort, nil
		}, nil
	case *rbacv3.Permission_DestinationPortRange:
		// PortRangeMatcher: [start, end), bounds checked at load.
		start, end := r.DestinationPortRange.GetStart(), r.DestinationPortRange.GetEnd()
		if start < 0 || start > 65536 || end < 0 || end > 65536 || start >= end {
			return nil, fmt.Errorf("rbaceval: %s.destination_port_range [%d, %d): Envoy refuses the range", field, start, end)
		}
		return func(in *input) (bool, error) {
			port := int32(in.req.DestinationPort)
			if port == 0 {
				return false, fmt.Errorf("%s needs the request's destination port", field)
			}
			return start <= port && port < end, nil
		}, nil
	case *rbacv3.Permission_NotRule:
		m, err := compilePermission(r.NotRule, field+".not_rule")
		return not(m), err
	case *rbacv3.Permission_RequestedServerName:
		// RequestedServerNameMatcher: connection.requestedServerName().
		sm, err := compileString(r.RequestedServerName, field+".requested_server_name")
		return func(in *input) (bool, error) { return sm(in.req.ServerName), nil }, err
	case *rbacv3.Permission_Metadata:
		return nil, unsupported(field + ".metadata")
	case *rbacv3.Permission_SourcedMetadata:
		return nil, unsupported(field + ".sourced_metadata")
	case *rbacv3.Permission_Matcher:
		return nil, unsupported(field + ".matcher")
	case *rbacv3.Permission_UriTemplate:
		return nil, unsupported(field + ".uri_template")
	}
	return nil, fmt.Errorf("rbaceval: %s: permission %T is not evaluated", field, p.GetRule())
}

func compilePermissions(ps []*rbacv3.Permission, field string) ([]matcher, error) {
	var out []matcher
	for i, p := range ps {
		m, err := compilePermission(p, fmt.Sprintf("%s[%d]", field, i))
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// compilePrincipal is Matcher::create for a principal
// (source/extensions/filters/common/rbac/matchers.cc).
func compilePrincipal(p *rbacv3.Principal, field string) (matcher, error) {
	switch id := p.GetIdentifier().(type) {
	case *rbacv3.Principal_AndIds:
		ms, err := compilePrincipals(id.AndIds.GetIds(), field+".and_ids.ids")
		return func(in *input) (bool, error) { return allOf(ms, in) }, err
	case *rbacv3.Principal_OrIds:
		ms, err := compilePrincipals(id.OrIds.GetIds(), field+".or_ids.ids")
		return func(in *input) (bool, error) { return anyOf(ms, in) }, err
	case *rbacv3.Principal_Any:
		return always, nil
	case *rbacv3.Principal_Authenticated_:
		return compileAuthenticated(id.Authenticated, field+".authenticated")
	case *rbacv3.Principal_SourceIp: //nolint:staticcheck // deprecated, and still loaded by Envoy
		// IPMatcher ConnectionRemote: the connection's remote address.
		pre, err := compileCIDR(id.SourceIp, field+".source_ip") //nolint:staticcheck // as above
		return func(in *input) (bool, error) {
			a := in.req.SourceIP
			if !a.IsValid() {
				a = in.req.DirectRemoteIP
			}
			if !a.IsValid() {
				return false, fmt.Errorf("%s needs the request's source address", field)
			}
			return pre.Contains(a), nil
		}, err
	case *rbacv3.Principal_DirectRemoteIp:
		// IPMatcher DownstreamDirectRemote: the physical peer.
		pre, err := compileCIDR(id.DirectRemoteIp, field+".direct_remote_ip")
		return func(in *input) (bool, error) {
			if !in.req.DirectRemoteIP.IsValid() {
				return false, fmt.Errorf("%s needs the request's direct remote address", field)
			}
			return pre.Contains(in.req.DirectRemoteIP), nil
		}, err
	case *rbacv3.Principal_RemoteIp:
		// IPMatcher DownstreamRemote: what the connection manager infers.
		pre, err := compileCIDR(id.RemoteIp, field+".remote_ip")
		return func(in *input) (bool, error) {
			a := in.req.RemoteIP
			if !a.IsValid() && in.headers.Has("x-forwarded-for") {
				return false, fmt.Errorf("%s: the request has x-forwarded-for, from which Envoy's connection manager may infer the remote address: set it", field)
			}
			for _, b := range []netip.Addr{in.req.SourceIP, in.req.DirectRemoteIP} {
				if !a.IsValid() {
					a = b
				}
			}
			if !a.IsValid() {
				return false, fmt.Errorf("%s needs the request's remote address", field)
			}
			return pre.Contains(a), nil
		}, err
	case *rbacv3.Principal_Header:
		return compileHeader(id.Header, field+".header")
	case *rbacv3.Principal_UrlPath:
		return compilePath(id.UrlPath, field+".url_path")
	case *rbacv3.Principal_NotId:
		m, err := compilePrincipal(id.NotId, field+".not_id")
		return not(m), err
	case *rbacv3.Principal_Metadata:
		return nil, unsupported(field + ".metadata")
	case *rbacv3.Principal_SourcedMetadata:
		return nil, unsupported(field + ".sourced_metadata")
	case *rbacv3.Principal_FilterState:
		return nil, unsupported(field + ".filter_state")
	case *rbacv3.Principal_Custom:
		return nil, unsupported(field + ".custom")
	}
	return nil, fmt.Errorf("rbaceval: %s: principal %T is not evaluated", field, p.GetIdentifier())
}

func compilePrincipals(ps []*rbacv3.Principal, field string) ([]matcher, error) {
	var out []matcher
	for i, p := range ps {
		m, err := compilePrincipal(p, fmt.Sprintf("%s[%d]", field, i))
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func unsupported(field string) error {
	return fmt.Errorf("rbaceval: %s: this matcher is not evaluated", field)
}

func always(*input) (bool, error) { return true, nil }

// not is NotMatcher.
func not(m matcher) matcher {
	return func(in *input) (bool, error) {
		ok, err := m(in)
		return !ok && err == nil, err
	}
}

// compileAuthenticated is AuthenticatedMatcher: never on a connection that
// is not TLS; without principal_name, any TLS connection (one without a
// client certificate too); else the name matches one of the peer
// certificate's URI SANs, one of its DNS SANs, or its subject, tried in
// that order (every SAN of each kind, then the subject, even when the
// certificate has SANs: "" when it has no certificate).
func compileAuthenticated(a *rbacv3.Principal_Authenticated, field string) (matcher, error) {
	if a.GetPrincipalName() == nil {
		return func(in *input) (bool, error) { return in.req.tls(), nil }, nil
	}
	sm, err := compileString(a.GetPrincipalName(), field+".principal_name")
	return func(in *input) (bool, error) {
		if !in.req.tls() {
			return false, nil
		}
		for _, names := range [][]string{in.req.PeerURISANs, in.req.PeerDNSSANs} {
			for _, n := range names {
				if sm(n) {
					return true, nil
				}
			}
		}
		return sm(in.req.PeerSubject), nil
	}, err
}

// compileHeader is HeaderMatcher, Http::HeaderUtility::matchHeaders
// (source/common/http/header_utility.cc): a header's values joined with
// ","; a missing header matches no value matcher, inverted or not (unless
// treat_missing_header_as_empty makes it ""). A string_match is evaluated
// here, with Envoy's string matcher; the other kinds by routesim.
func compileHeader(hm *routev3.HeaderMatcher, field string) (matcher, error) {
	if s := hm.GetStringMatch(); s != nil {
		sm, err := compileString(s, field+".string_match")
		return func(in *input) (bool, error) {
			v, ok := in.headers.Get(hm.GetName())
			if !ok {
				if !hm.GetTreatMissingHeaderAsEmpty() {
					return false, nil
				}
				v = ""
			}
			return sm(v) != hm.GetInvertMatch(), nil
		}, err
	}
	if re := hm.GetSafeRegexMatch(); re != nil {
		if _, err := fullRegex(re.GetRegex()); err != nil {
			return nil, fmt.Errorf("rbaceval: %s.safe_regex_match: %w", field, err)
		}
	}
	return func(in *input) (bool, error) {
		ok, err := routesim.MatchHeader(hm, in.headers)
		if err != nil {
			return false, fmt.Errorf("%s: %w", field, err)
		}
		return ok, nil
	}, nil
}

// compilePath is PathMatcher: the :path header, its query and fragment
// removed, matches the string matcher (case-sensitive unless ignore_case);
// no :path (the network filter) matches nothing.
func compilePath(pm *matcherv3.PathMatcher, field string) (matcher, error) {
	sm, err := compileString(pm.GetPath(), field+".path")
	return func(in *input) (bool, error) {
		vs := in.headers.Values(":path")
		if len(vs) == 0 {
			return false, nil
		}
		return sm(removeQueryAndFragment(vs[0])), nil
	}, err
}

// removeQueryAndFragment is Http::PathUtil::removeQueryAndFragment: the
// path up to the first "?" or "#".
func removeQueryAndFragment(path string) string {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		return path[:i]
	}
	return path
}

// compileString is Matchers::StringMatcherImpl (source/common/common/matchers.h):
// exact, prefix, suffix and contains, ASCII case-insensitive with
// ignore_case; safe_regex a full RE2 match, which Envoy refuses with
// ignore_case.
func compileString(m *matcherv3.StringMatcher, field string) (func(string) bool, error) {
	fold := func(s string) string { return s }
	if m.GetIgnoreCase() {
		fold = asciiLower
	}
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		want := fold(p.Exact)
		return func(s string) bool { return fold(s) == want }, nil
	case *matcherv3.StringMatcher_Prefix:
		want := fold(p.Prefix)
		return func(s string) bool { return strings.HasPrefix(fold(s), want) }, nil
	case *matcherv3.StringMatcher_Suffix:
		want := fold(p.Suffix)
		return func(s string) bool { return strings.HasSuffix(fold(s), want) }, nil
	case *matcherv3.StringMatcher_Contains:
		want := fold(p.Contains)
		return func(s string) bool { return strings.Contains(fold(s), want) }, nil
	case *matcherv3.StringMatcher_SafeRegex:
		if m.GetIgnoreCase() {
			return nil, fmt.Errorf("rbaceval: %s: Envoy refuses ignore_case with safe_regex", field)
		}
		re, err := fullRegex(p.SafeRegex.GetRegex())
		if err != nil {
			return nil, fmt.Errorf("rbaceval: %s.safe_regex: %w", field, err)
		}
		return re.MatchString, nil
	case *matcherv3.StringMatcher_Custom:
		return nil, unsupported(field + ".custom")
	}
	return nil, fmt.Errorf("rbaceval: %s: string matcher %T is not evaluated", field, m.GetMatchPattern())
}

// fullRegex compiles an RE2 regex for RE2::FullMatch (Go's regexp has
// RE2's syntax).
func fullRegex(re string) (*regexp.Regexp, error) {
	r, err := regexp.Compile(`^(?:` + re + `)$`)
	if err != nil {
		return nil, fmt.Errorf("regex %q: %w", re, err)
	}
	return r, nil
}

// asciiLower lower-cases ASCII letters only, as absl's *IgnoreCase
// functions compare.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

// compileCIDR is Network::Address::CidrRange::create
// (source/common/network/cidr_range.cc): the address with its prefix_len
// (unset is 0, every address of its family; more than the family's bits is
// all of them), the bits past it cleared. An address matches only a range
// of its own family (isInRange): an IPv4-mapped IPv6 address is IPv6.
func compileCIDR(r *corev3.CidrRange, field string) (netip.Prefix, error) {
	a, err := netip.ParseAddr(r.GetAddressPrefix())
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("rbaceval: %s: Envoy refuses the malformed IP address %q", field, r.GetAddressPrefix())
	}
	bits := min(int(r.GetPrefixLen().GetValue()), a.BitLen())
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("rbaceval: %s: %w", field, err)
	}
	return p, nil
}
