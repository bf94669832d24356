package envoyrules

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// HTTP filters by type URL: whether each is terminal.
var httpFilters = map[string]bool{
	"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router": true,
	"type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC":     false,
	// Fault injection and local rate limits: core extensions of every
	// Envoy build (source/extensions/extensions_build_config.bzl).
	"type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault":                false,
	"type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit": false,
}

// hcm checks an HTTP connection manager of a chain (tls: the chain is TLS).
func (c *Checker) hcm(ln, where string, h *hcmv3.HttpConnectionManager, tls bool, f *facts) {
	where += ": its HTTP connection manager"
	filters := h.GetHttpFilters()
	if len(filters) == 0 {
		f.fail("listener", ln, where+" has HTTP filters, the router last", "with no router nothing is forwarded")
	}
	for i, hf := range filters {
		url := hf.GetTypedConfig().GetTypeUrl()
		if !filterOrder(ln, where, "http", httpFilters, hf.GetName(), url, i, len(filters), f) {
			continue
		}
		if url == "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC" {
			msg, err := c.unpack(hf.GetTypedConfig())
			r, ok := msg.(*rbachttpv3.RBAC)
			if err != nil || !ok {
				f.fail("listener", ln, fmt.Sprintf("%s: its RBAC filter decodes: %v", where, err), "the listener is refused")
				continue
			}
			c.rbac(ln, where, r.GetRules(), tls, f)
		}
	}
	c.accessLogs(ln, where, h.GetAccessLog(), true, f)
	c.tracing(ln, where, h.GetTracing(), f)
	upgrades := map[string]bool{}
	for _, u := range h.GetUpgradeConfigs() {
		t := strings.ToLower(u.GetUpgradeType())
		if upgrades[t] {
			f.fail("listener", ln, where+": upgrade types are unique", "\"Error: multiple upgrade configs with the same name: '"+u.GetUpgradeType()+"'\" (source/extensions/filters/network/http_connection_manager/config.cc)")
		}
		upgrades[t] = true
	}
	switch rs := h.GetRouteSpecifier().(type) {
	case *hcmv3.HttpConnectionManager_Rds:
		if rs.Rds.GetConfigSource().GetAds() == nil {
			f.fail("listener", ln, where+" loads its routes over ADS", "the mesh's proxies have no other xDS source")
		}
		f.routes = append(f.routes, rs.Rds.GetRouteConfigName())
	case *hcmv3.HttpConnectionManager_RouteConfig:
		f.add(c.route(rs.RouteConfig))
	default:
		f.fail("listener", ln, where+" has routes, inline or by RDS", "the connection manager is refused (api/envoy/extensions/filters/network/http_connection_manager/v3)")
	}
}

const routeSource = "source/common/router/config_impl.cc"

// route checks a route configuration, a listener's own or one served by RDS.
// Its clusters are checked against the proxy's: Envoy refuses an inline
// table that names a missing one, and an RDS one fails at request time.
func (c *Checker) route(rc *routev3.RouteConfiguration) *facts {
	return c.cached(rc, func(f *facts) {
		name := rc.GetName()
		wildcards := 0
		domains := map[string]bool{}
		headerMutations(name, "the route configuration", rc, false, f)
		for _, vh := range rc.GetVirtualHosts() {
			for _, d := range vh.GetDomains() {
				d = strings.ToLower(d)
				if d == "*" {
					wildcards++
				}
				if domains[d] {
					f.fail("route", name, "domains are unique among a route configuration's virtual hosts",
						fmt.Sprintf("\"Only unique values for domains are permitted. Duplicate entry of domain %s in route %s\" (%s)", d, name, routeSource))
				}
				domains[d] = true
			}
			where := fmt.Sprintf("virtual host %q", vh.GetName())
			headerMutations(name, where, vh, true, f)
			retryBackOff(name, where, vh.GetRetryPolicy(), f)
			for i, r := range vh.GetRoutes() {
				at := fmt.Sprintf("route %d of %s", i, where)
				if r.GetName() != "" {
					at = fmt.Sprintf("route %q of %s", r.GetName(), where)
				}
				c.routeEntry(name, at, r, f)
			}
		}
		if wildcards > 1 {
			f.fail("route", name, "one virtual host at most has the wildcard domain", fmt.Sprintf("\"Only a single wildcard domain is permitted in route %s\" (%s)", name, routeSource))
		}
	})
}

// pathSeparatedPrefix is the proto validation pattern of
// RouteMatch.path_separated_prefix.
var pathSeparatedPrefix = regexp.MustCompile(`^[^?#]+[^?#/]$`)

const weightedSource = "source/common/router/weighted_cluster_specifier.cc"

// routeEntry checks route r of route configuration rn; where says which.
func (c *Checker) routeEntry(rn, where string, r *routev3.Route, f *facts) {
	m := r.GetMatch()
	if m.GetPathSpecifier() == nil {
		f.fail("route", rn, "every route has a path match", "\"Invalid route config\" ("+routeSource+")")
	}
	if p, ok := m.GetPathSpecifier().(*routev3.RouteMatch_PathSeparatedPrefix); ok && !pathSeparatedPrefix.MatchString(p.PathSeparatedPrefix) {
		f.fail("route", rn, fmt.Sprintf("%s: path_separated_prefix %q has 2 characters or more, no ? or #, and no / at its end (a match of / is prefix /)", where, p.PathSeparatedPrefix),
			"proto validation ("+routeProto+"): RouteMatch.path_separated_prefix \"value does not match regex pattern \\\"^[^?#]+[^?#/]$\\\"\"")
	}
	if sr := m.GetSafeRegex(); sr != nil {
		c.regex("route", rn, sr.GetRegex(), f)
	}
	for _, h := range m.GetHeaders() {
		c.headerMatcher("route", rn, h, f)
	}
	for _, q := range m.GetQueryParameters() {
		c.stringMatcher("route", rn, q.GetStringMatch(), f)
	}
	headerMutations(rn, where, r, true, f)
	switch act := r.GetAction().(type) {
	case *routev3.Route_Redirect:
		c.redirect(rn, where, act.Redirect, f)
	case *routev3.Route_DirectResponse:
		if s := act.DirectResponse.GetStatus(); s < 200 || s >= 600 {
			f.fail("route", rn, fmt.Sprintf("%s: its direct response's status %d is in [200, 600)", where, s),
				"proto validation ("+routeProto+"): DirectResponseAction.status \"value must be inside range [200, 600)\"")
		}
	}
	a := r.GetRoute()
	if a == nil {
		return
	}
	c.rewrites(rn, where, a, m, f)
	retryBackOff(rn, where, a.GetRetryPolicy(), f)
	// A cluster the route names on purpose without serving it answers
	// the route's cluster_not_found_response_code, set apart from the
	// default (503, as for a cluster that is missing by mistake).
	named := func(n string) {
		if a.GetClusterNotFoundResponseCode() != routev3.RouteAction_SERVICE_UNAVAILABLE && slices.Contains(c.opts.Unserved, n) {
			return
		}
		f.clusters = append(f.clusters, n)
	}
	if n := a.GetCluster(); n != "" {
		named(n)
	}
	for _, mp := range a.GetRequestMirrorPolicies() {
		switch {
		case mp.GetCluster() != "" && mp.GetClusterHeader() != "":
			f.fail("route", rn, where+": a request mirror policy names a cluster or a cluster header, not both",
				fmt.Sprintf("\"Only one of cluster '%s' or cluster_header '%s' in request mirror policy can be specified\" (%s, validateMirrorClusterSpecifier)", mp.GetCluster(), mp.GetClusterHeader(), routeSource))
		case mp.GetCluster() == "" && mp.GetClusterHeader() == "":
			f.fail("route", rn, where+": a request mirror policy names a cluster or a cluster header",
				"\"Exactly one of cluster or cluster_header in request mirror policy need to be specified\" ("+routeSource+", validateMirrorClusterSpecifier)")
		}
		if n := mp.GetCluster(); n != "" {
			f.clusters = append(f.clusters, n)
		}
		if rf := mp.GetRuntimeFraction(); rf != nil && rf.GetDefaultValue() == nil {
			f.fail("route", rn, where+": a request mirror policy's runtime fraction has a default value",
				"proto validation ("+baseProto+"): RuntimeFractionalPercent.default_value \"value is required\"")
		}
	}
	if wc := a.GetWeightedClusters(); wc != nil {
		var sum uint64
		for _, w := range wc.GetClusters() {
			if w.GetWeight() == nil {
				f.fail("route", rn, "every weighted cluster has a weight", "\"Field 'weight' is missing\" ("+weightedSource+")")
			}
			switch {
			case w.GetName() != "" && w.GetClusterHeader() != "":
				f.fail("route", rn, fmt.Sprintf("%s: weighted cluster %q names a cluster or a cluster header, not both", where, w.GetName()),
					"\"Only one of name or cluster_header can be specified\" ("+weightedSource+", validateWeightedClusterSpecifier)")
			case w.GetName() == "" && w.GetClusterHeader() == "":
				f.fail("route", rn, where+": every weighted cluster names a cluster or a cluster header",
					"\"At least one of name or cluster_header need to be specified\" ("+weightedSource+", validateWeightedClusterSpecifier)")
			}
			sum += uint64(w.GetWeight().GetValue())
			if w.GetName() != "" {
				named(w.GetName())
			}
			headerMutations(rn, fmt.Sprintf("%s: weighted cluster %q", where, w.GetName()), w, false, f)
		}
		if sum == 0 {
			f.fail("route", rn, "the weights of weighted clusters sum to more than 0", "\"Sum of weights in the weighted_cluster must be greater than 0.\" ("+weightedSource+")")
		}
		if sum > 1<<32-1 {
			f.fail("route", rn, "the weights of weighted clusters fit 32 bits", "\"The sum of weights of all weighted clusters of route "+rn+" exceeds 4294967295\"")
		}
	}
}

// rewrites checks how a route action rewrites the path and host.
func (c *Checker) rewrites(rn, where string, a *routev3.RouteAction, m *routev3.RouteMatch, f *facts) {
	n := 0
	for _, set := range []bool{a.GetPrefixRewrite() != "", a.GetRegexRewrite() != nil, a.GetPathRewritePolicy() != nil, a.GetPathRewrite() != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		f.fail("route", rn, where+": it rewrites the path one way: prefix_rewrite, regex_rewrite, path_rewrite_policy or path_rewrite",
			"\"Specify only one of prefix_rewrite, regex_rewrite or path_rewrite_policy\" ("+routeSource+", RouteEntryImplBase, which counts path_rewrite too)")
	}
	if a.GetPrefixRewrite() != "" && m.GetPathMatchPolicy() != nil {
		f.fail("route", rn, where+": a route matched by a path_match_policy has no prefix_rewrite",
			"\"Cannot use prefix_rewrite with matcher extension\" ("+routeSource+", RouteEntryImplBase)")
	}
	if strings.ContainsAny(a.GetPrefixRewrite(), "\x00\r\n") {
		f.fail("route", rn, where+": its prefix_rewrite has no NUL, CR or LF",
			"proto validation ("+routeProto+"): RouteAction.prefix_rewrite matches \"^[^\\0\\n\\r]*$\"")
	}
	if rr := a.GetRegexRewrite(); rr != nil {
		c.rewriteRegex(rn, where+": its regex_rewrite", rr, f)
	}
	for _, fs := range []struct{ field, value, what string }{
		{"path_rewrite", a.GetPathRewrite(), "path"},
		{"host_rewrite", a.GetHostRewrite(), "host"},
	} {
		if fs.value == "" {
			continue
		}
		if pos, ok := formatString(fs.value); !ok {
			f.fail("route", rn, fmt.Sprintf("%s: its %s is a format string: each %% in it is part of %%%% or of a command", where, fs.field),
				fmt.Sprintf("\"Failed to create %s rewrite formatter: INVALID_ARGUMENT: Incorrect configuration: %s. Couldn't find valid command at position %d\" (%s, RouteEntryImplBase; %s)", fs.what, fs.value, pos, routeSource, formatterSource))
		}
	}
}

// rewriteRegex checks the regex of a path rewrite, which Envoy compiles
// when it loads the route (Regex::Utility::parseRegex).
func (c *Checker) rewriteRegex(rn, where string, rr *matcherv3.RegexMatchAndSubstitute, f *facts) {
	if rr.GetPattern() == nil {
		f.fail("route", rn, where+" has a pattern", "proto validation (api/envoy/type/matcher/v3/regex.proto): RegexMatchAndSubstitute.pattern \"value is required\"")
		return
	}
	c.regex("route", rn, rr.GetPattern().GetRegex(), f)
}

// redirect checks a route's redirect. Its path and scheme rewrites are
// oneofs: a message cannot set two.
func (c *Checker) redirect(rn, where string, rd *routev3.RedirectAction, f *facts) {
	for _, fs := range []struct{ field, value string }{
		{"host_redirect", rd.GetHostRedirect()},
		{"path_redirect", rd.GetPathRedirect()},
		{"prefix_rewrite", rd.GetPrefixRewrite()},
	} {
		if strings.ContainsAny(fs.value, "\x00\r\n") {
			f.fail("route", rn, fmt.Sprintf("%s: its redirect's %s has no NUL, CR or LF", where, fs.field),
				"proto validation ("+routeProto+"): RedirectAction."+fs.field+" matches \"^[^\\0\\n\\r]*$\"")
		}
	}
	if p := rd.GetPortRedirect(); p > 65535 {
		f.fail("route", rn, fmt.Sprintf("%s: its redirect's port %d is a TCP port (at most 65535)", where, p),
			"port_redirect has no proto validation rule: Envoy loads it and redirects to host:"+fmt.Sprint(p)+", a port no client can dial ("+routeSource+", createRedirectConfig)")
	}
	if _, ok := routev3.RedirectAction_RedirectResponseCode_name[int32(rd.GetResponseCode())]; !ok {
		f.fail("route", rn, where+": its redirect's response code is one Envoy defines (301, 302, 303, 307 or 308)",
			"proto validation ("+routeProto+"): RedirectAction.response_code \"value must be one of the defined enum values\"")
	}
	if rr := rd.GetRegexRewrite(); rr != nil {
		c.rewriteRegex(rn, where+": its redirect's regex_rewrite", rr, f)
	}
}

// retryBackOff checks a retry policy's back-off, of a route or of a
// virtual host (source/common/router/retry_policy_impl.cc, RetryPolicyImpl):
// Envoy rounds each interval to whole milliseconds, at least 1.
func retryBackOff(rn, where string, rp *routev3.RetryPolicy, f *facts) {
	b := rp.GetRetryBackOff()
	if b == nil {
		return
	}
	base, maxInterval := b.GetBaseInterval(), b.GetMaxInterval()
	if base == nil || base.AsDuration() <= 0 {
		f.fail("route", rn, where+": its retry back-off has a base interval above 0",
			"proto validation ("+routeProto+"): RetryBackOff.base_interval is required and \"value must be greater than 0s\"")
		return
	}
	if maxInterval == nil {
		return
	}
	if maxInterval.AsDuration() <= 0 {
		f.fail("route", rn, where+": its retry back-off's max interval is above 0",
			"proto validation ("+routeProto+"): RetryBackOff.max_interval \"value must be greater than 0s\"")
		return
	}
	ms := func(d *durationpb.Duration) int64 { return max(d.AsDuration().Milliseconds(), 1) }
	if ms(maxInterval) < ms(base) {
		f.fail("route", rn, fmt.Sprintf("%s: its retry back-off's max interval (%s) is at least its base interval (%s)", where, maxInterval.AsDuration(), base.AsDuration()),
			"\"retry_policy.max_interval must greater than or equal to the base_interval\" (source/common/router/retry_policy_impl.cc)")
	}
}

// headerMatcher checks a header matcher: its name is lowercase, as it is on
// the wire in HTTP/2 and as Envoy compares it (Envoy lowercases a matcher's
// name; the mesh writes it so, so that two matchers of one header are one),
// and its regex is within RE2's limit.
func (c *Checker) headerMatcher(kind, name string, h *routev3.HeaderMatcher, f *facts) {
	if h.GetName() != strings.ToLower(h.GetName()) {
		f.fail(kind, name, fmt.Sprintf("header matcher names are lowercase, the mesh's one spelling of a header: %q is not", h.GetName()),
			"Envoy loads it and compares it lowercased (source/common/http/header_utility.cc, HeaderData); two spellings of one header would read as two matchers")
	}
	if r := h.GetSafeRegexMatch(); r != nil {
		c.regex(kind, name, r.GetRegex(), f)
	}
	c.stringMatcher(kind, name, h.GetStringMatch(), f)
}

func (c *Checker) stringMatcher(kind, name string, m *matcherv3.StringMatcher, f *facts) {
	if r := m.GetSafeRegex(); r != nil {
		c.regex(kind, name, r.GetRegex(), f)
	}
}

// regex checks that RE2 compiles a regex within the proxies' program size.
func (c *Checker) regex(kind, name, re string, f *facts) {
	size, err := RE2ProgramSize(re)
	if err != nil {
		f.fail(kind, name, fmt.Sprintf("regex %q compiles: %v", re, err), "the resource is refused (source/common/common/regex.cc)")
		return
	}
	if max := c.opts.MaxRegexProgramSize; size > max {
		f.fail(kind, name, fmt.Sprintf("regexes are within the proxies' RE2 program size of %d", max),
			fmt.Sprintf("\"regex '%s' RE2 program size of %d > max program size of %d set for the error level threshold. Increase configured max program size if necessary.\" (source/common/common/regex.cc)", re, size, max))
	}
}

// rbac checks RBAC rules: their regexes, and principals that need a peer
// certificate only where the chain is TLS.
func (c *Checker) rbac(ln, where string, rules *rbacv3.RBAC, tls bool, f *facts) {
	for pn, p := range rules.GetPolicies() {
		for _, pr := range p.GetPrincipals() {
			walkPrincipal(pr, func(pr *rbacv3.Principal) {
				if a := pr.GetAuthenticated(); a != nil {
					if !tls {
						f.fail("listener", ln, fmt.Sprintf("%s: RBAC policy %q names an authenticated principal only on a TLS chain", where, pn),
							"on plaintext no principal is authenticated: the policy never matches (source/extensions/filters/common/rbac/matchers.cc, AuthenticatedMatcher)")
					}
					if a.GetPrincipalName() == nil {
						f.fail("listener", ln, fmt.Sprintf("%s: RBAC policy %q names which principal is authenticated", where, pn),
							"an authenticated principal without a name matches any TLS peer, one with no certificate too")
					}
					c.stringMatcher("listener", ln, a.GetPrincipalName(), f)
				}
				if h := pr.GetHeader(); h != nil {
					c.headerMatcher("listener", ln, h, f)
				}
				for _, r := range []*corev3.CidrRange{pr.GetDirectRemoteIp(), pr.GetRemoteIp(), pr.GetSourceIp()} { //nolint:staticcheck // source_ip is deprecated, and still loaded
					if r == nil {
						continue
					}
					if _, err := cidr(r); err != nil {
						f.fail("listener", ln, fmt.Sprintf("%s: RBAC policy %q: address principals are CIDRs: %s", where, pn, err),
							"the IP matcher's CidrRange is refused, and the filter with it (source/extensions/filters/common/rbac/matchers.h, IPMatcher; source/common/network/cidr_range.cc)")
					}
				}
			})
		}
		for _, perm := range p.GetPermissions() {
			walkPermission(perm, func(perm *rbacv3.Permission) {
				if h := perm.GetHeader(); h != nil {
					c.headerMatcher("listener", ln, h, f)
				}
				if u := perm.GetUrlPath(); u != nil {
					c.stringMatcher("listener", ln, u.GetPath(), f)
				}
			})
		}
	}
}

func walkPrincipal(p *rbacv3.Principal, visit func(*rbacv3.Principal)) {
	visit(p)
	for _, q := range p.GetAndIds().GetIds() {
		walkPrincipal(q, visit)
	}
	for _, q := range p.GetOrIds().GetIds() {
		walkPrincipal(q, visit)
	}
	if q := p.GetNotId(); q != nil {
		walkPrincipal(q, visit)
	}
}

func walkPermission(p *rbacv3.Permission, visit func(*rbacv3.Permission)) {
	visit(p)
	for _, q := range p.GetAndRules().GetRules() {
		walkPermission(q, visit)
	}
	for _, q := range p.GetOrRules().GetRules() {
		walkPermission(q, visit)
	}
	if q := p.GetNotRule(); q != nil {
		walkPermission(q, visit)
	}
}
