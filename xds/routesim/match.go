package routesim

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// fullRegex compiles an RE2 regex for a full match, as Envoy's
// Regex::CompiledGoogleReMatcher::match (RE2::FullMatch,
// source/common/common/regex.cc) uses it. Go's regexp is RE2's syntax.
func fullRegex(re string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + re + `)$`)
}

// stringMatch is Matchers::StringMatcherImpl::match
// (source/common/common/matchers.cc): exact, prefix, suffix and contains,
// ASCII case-insensitive with ignore_case; safe_regex a full match (it
// ignores ignore_case).
func stringMatch(m *matcherv3.StringMatcher, v string) (bool, error) {
	fold := func(s string) string {
		if m.GetIgnoreCase() {
			return strings.ToLower(s)
		}
		return s
	}
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		return fold(v) == fold(p.Exact), nil
	case *matcherv3.StringMatcher_Prefix:
		return strings.HasPrefix(fold(v), fold(p.Prefix)), nil
	case *matcherv3.StringMatcher_Suffix:
		return strings.HasSuffix(fold(v), fold(p.Suffix)), nil
	case *matcherv3.StringMatcher_Contains:
		return strings.Contains(fold(v), fold(p.Contains)), nil
	case *matcherv3.StringMatcher_SafeRegex:
		re, err := fullRegex(p.SafeRegex.GetRegex())
		if err != nil {
			return false, fmt.Errorf("regex %q: %v", p.SafeRegex.GetRegex(), err)
		}
		return re.MatchString(v), nil
	}
	return false, fmt.Errorf("string matcher %T is not supported by routesim", m.GetMatchPattern())
}

// headerMatch is HeaderUtility::matchHeaders for one HeaderMatcher
// (source/common/http/header_utility.cc): the header's values joined with
// ","; a missing header matches only present_match: false (or, inverted,
// present_match: true), unless treat_missing_header_as_empty makes it "";
// an exact_match of "" matches any value; range_match is [start, end) of
// the value as an integer; invert_match inverts the result. hs holds the
// pseudo-headers (:method, :path, :authority, :scheme) too.
func headerMatch(hm *routev3.HeaderMatcher, hs Headers) (bool, error) {
	value, ok := hs.Get(hm.GetName())
	if p, isPresent := hm.GetHeaderMatchSpecifier().(*routev3.HeaderMatcher_PresentMatch); isPresent || hm.GetHeaderMatchSpecifier() == nil {
		want := !isPresent || p.PresentMatch
		return (ok == want) != hm.GetInvertMatch(), nil
	}
	if !ok {
		if !hm.GetTreatMissingHeaderAsEmpty() {
			return false, nil
		}
		value = ""
	}
	var match bool
	switch s := hm.GetHeaderMatchSpecifier().(type) {
	case *routev3.HeaderMatcher_ExactMatch:
		match = s.ExactMatch == "" || value == s.ExactMatch
	case *routev3.HeaderMatcher_SafeRegexMatch:
		re, err := fullRegex(s.SafeRegexMatch.GetRegex())
		if err != nil {
			return false, fmt.Errorf("header %q regex: %v", hm.GetName(), err)
		}
		match = re.MatchString(value)
	case *routev3.HeaderMatcher_RangeMatch:
		n, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		match = err == nil && n >= s.RangeMatch.GetStart() && n < s.RangeMatch.GetEnd()
	case *routev3.HeaderMatcher_PrefixMatch:
		match = strings.HasPrefix(value, s.PrefixMatch)
	case *routev3.HeaderMatcher_SuffixMatch:
		match = strings.HasSuffix(value, s.SuffixMatch)
	case *routev3.HeaderMatcher_ContainsMatch:
		match = strings.Contains(value, s.ContainsMatch)
	case *routev3.HeaderMatcher_StringMatch:
		var err error
		if match, err = stringMatch(s.StringMatch, value); err != nil {
			return false, fmt.Errorf("header %q: %v", hm.GetName(), err)
		}
	}
	return match != hm.GetInvertMatch(), nil
}

// parseQuery is Http::Utility::QueryParamsMulti::parseQueryString
// (source/common/http/utility.cc): the parameters after the first "?",
// split on "&", a name without "=" having the value ""; names and values
// are not percent-decoded. Values of a repeated name keep their order.
func parseQuery(path string) map[string][]string {
	i := strings.IndexByte(path, '?')
	if i < 0 {
		return nil
	}
	out := map[string][]string{}
	for _, p := range strings.Split(path[i+1:], "&") {
		name, value, _ := strings.Cut(p, "=")
		out[name] = append(out[name], value)
	}
	return out
}

// queryMatch is ConfigUtility::QueryParameterMatcher::matches
// (source/common/router/config_utility.cc): the first value of the
// parameter only; present_match says whether the parameter must be there
// (the behaviour of envoy.reloadable_features.enable_new_query_param_present_match_behavior);
// a string_match needs the parameter and matches its first value; neither
// is a presence check.
func queryMatch(qm *routev3.QueryParameterMatcher, params map[string][]string) (bool, error) {
	vs, ok := params[qm.GetName()]
	if p, isPresent := qm.GetQueryParameterMatchSpecifier().(*routev3.QueryParameterMatcher_PresentMatch); isPresent {
		return ok == p.PresentMatch, nil
	}
	if !ok {
		return false, nil
	}
	if sm := qm.GetStringMatch(); sm != nil {
		m, err := stringMatch(sm, vs[0])
		if err != nil {
			return false, fmt.Errorf("query parameter %q: %v", qm.GetName(), err)
		}
		return m, nil
	}
	return true, nil
}

// removeQueryAndFragment is Http::PathUtil::removeQueryAndFragment: the
// path up to the first "?" or "#".
func removeQueryAndFragment(path string) string {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		return path[:i]
	}
	return path
}

// hasPrefixFold is the prefix StringMatcher of Matchers::PathMatcher::createPrefix,
// ASCII case-insensitive when fold (case_sensitive: false).
func hasPrefixFold(s, prefix string, fold bool) bool {
	if len(s) < len(prefix) {
		return false
	}
	if fold {
		return strings.EqualFold(s[:len(prefix)], prefix)
	}
	return s[:len(prefix)] == prefix
}

// pathMatch matches the path specifier of m against path (with its query)
// as the route entries of source/common/router/config_impl.cc do, each
// through Matchers::PathMatcher, which drops the query and fragment first:
// PrefixRouteEntryImpl (the path starts with the prefix),
// PathRouteEntryImpl (equals it), RegexRouteEntryImpl (a full RE2 match),
// PathSeparatedPrefixRouteEntryImpl (the path equals the prefix or goes on
// with "/" after it). case_sensitive (default true) applies to all but the
// regex. matched is the part of the path a prefix_rewrite replaces: the
// configured prefix or path, or for a regex the whole path without query.
func pathMatch(m *routev3.RouteMatch, path string) (ok bool, matched string, err error) {
	fold := m.GetCaseSensitive() != nil && !m.GetCaseSensitive().GetValue()
	p := removeQueryAndFragment(path)
	switch s := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		return hasPrefixFold(p, s.Prefix, fold), s.Prefix, nil
	case *routev3.RouteMatch_Path:
		if fold {
			return strings.EqualFold(p, s.Path), s.Path, nil
		}
		return p == s.Path, s.Path, nil
	case *routev3.RouteMatch_SafeRegex:
		re, err := fullRegex(s.SafeRegex.GetRegex())
		if err != nil {
			return false, "", fmt.Errorf("path regex %q: %v", s.SafeRegex.GetRegex(), err)
		}
		return re.MatchString(p), p, nil
	case *routev3.RouteMatch_PathSeparatedPrefix:
		pre := s.PathSeparatedPrefix
		ok := len(p) >= len(pre) && hasPrefixFold(p, pre, fold) && (len(p) == len(pre) || p[len(pre)] == '/')
		return ok, pre, nil
	case nil:
		return false, "", fmt.Errorf("route has no path specifier, which Envoy refuses")
	}
	return false, "", fmt.Errorf("path specifier %T is not supported by routesim", m.GetPathSpecifier())
}

// routeMatches is RouteEntryImplBase::matchRoute with the route's path
// matcher (source/common/router/config_impl.cc): the path, then grpc (a
// gRPC content type), the header matchers (all must match), the query
// parameter matchers (all must match). What routesim cannot evaluate
// (runtime_fraction, tls_context, dynamic_metadata, filter_state, cookies)
// is reported; a route that needs it is taken not to match.
func routeMatches(m *routev3.RouteMatch, hs Headers, path string, warn func(string, ...any)) (bool, string) {
	ok, matched, err := pathMatch(m, path)
	if err != nil {
		warn("%v", err)
		return false, ""
	}
	if !ok {
		return false, ""
	}
	if m.GetRuntimeFraction() != nil {
		warn("a route matches a runtime_fraction, which routesim takes as matching")
	}
	if m.GetGrpc() != nil {
		ct, _ := hs.Get("content-type")
		if !strings.HasPrefix(ct, "application/grpc") {
			return false, ""
		}
	}
	for _, hm := range m.GetHeaders() {
		ok, err := headerMatch(hm, hs)
		if err != nil {
			warn("%v", err)
			return false, ""
		}
		if !ok {
			return false, ""
		}
	}
	if qs := m.GetQueryParameters(); len(qs) > 0 {
		params := parseQuery(path)
		for _, qm := range qs {
			ok, err := queryMatch(qm, params)
			if err != nil {
				warn("%v", err)
				return false, ""
			}
			if !ok {
				return false, ""
			}
		}
	}
	if m.GetTlsContext() != nil || len(m.GetDynamicMetadata()) > 0 || len(m.GetFilterState()) > 0 || len(m.GetCookies()) > 0 {
		warn("a route matches TLS context, metadata, filter state or cookies, which routesim does not evaluate: taken as not matching")
		return false, ""
	}
	return true, matched
}

// findVirtualHost is RouteMatcher::findVirtualHost
// (source/common/router/config_impl.cc): with only a "*" domain, that
// virtual host; else by the Host (lower case, its port dropped with
// ignore_port_in_host_matching): an exact domain, then the longest suffix
// wildcard ("*.foo.com", "*-bar.foo.com") shorter than the host, then the
// longest prefix wildcard ("foo.*"), then "*".
func findVirtualHost(rc *routev3.RouteConfiguration, host string) *routev3.VirtualHost {
	var def *routev3.VirtualHost
	exact := map[string]*routev3.VirtualHost{}
	suffixes := map[int]map[string]*routev3.VirtualHost{}
	prefixes := map[int]map[string]*routev3.VirtualHost{}
	longest := 0
	for _, vh := range rc.GetVirtualHosts() {
		for _, d := range vh.GetDomains() {
			d = strings.ToLower(d)
			switch {
			case d == "*":
				if def == nil {
					def = vh
				}
			case strings.HasPrefix(d, "*"):
				l := len(d) - 1
				if suffixes[l] == nil {
					suffixes[l] = map[string]*routev3.VirtualHost{}
				}
				if _, dup := suffixes[l][d[1:]]; !dup {
					suffixes[l][d[1:]] = vh
				}
				longest = max(longest, l)
			case strings.HasSuffix(d, "*"):
				l := len(d) - 1
				if prefixes[l] == nil {
					prefixes[l] = map[string]*routev3.VirtualHost{}
				}
				if _, dup := prefixes[l][d[:l]]; !dup {
					prefixes[l][d[:l]] = vh
				}
				longest = max(longest, l)
			default:
				if _, dup := exact[d]; !dup {
					exact[d] = vh
				}
			}
		}
	}
	if len(exact) == 0 && len(suffixes) == 0 && len(prefixes) == 0 {
		return def
	}
	if host == "" {
		return nil
	}
	if rc.GetIgnorePortInHostMatching() {
		if i := portStart(host); i >= 0 {
			host = host[:i]
		}
	}
	host = strings.ToLower(host)
	if vh := exact[host]; vh != nil {
		return vh
	}
	// Longest wildcard first; ">=" because "*.foo.com" must not match ".foo.com".
	for l := longest; l > 0; l-- {
		if l >= len(host) {
			continue
		}
		if vh := suffixes[l][host[len(host)-l:]]; vh != nil {
			return vh
		}
	}
	for l := longest; l > 0; l-- {
		if l >= len(host) {
			continue
		}
		if vh := prefixes[l][host[:l]]; vh != nil {
			return vh
		}
	}
	return def
}

// portStart is Http::HeaderUtility::getPortStart: the index of the ":" of
// a host's port, -1 for none (an IPv6 literal's colons are inside "[]").
func portStart(host string) int {
	i := strings.LastIndexByte(host, ':')
	if i < 0 {
		return -1
	}
	if j := strings.LastIndexByte(host, ']'); j >= 0 && j > i {
		return -1
	}
	return i
}

// MatchHeader says whether hs matches hm, as Envoy's
// HeaderUtility::matchHeaders does for one matcher (see headerMatch). The
// RBAC filters match their header permissions and principals with it too
// (HeaderMatcher in source/extensions/filters/common/rbac/matchers.cc).
func MatchHeader(hm *routev3.HeaderMatcher, hs Headers) (bool, error) { return headerMatch(hm, hs) }
