package routesim

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
)

// Request is an HTTP request as the HTTP connection manager hands it to
// the router.
type Request struct {
	// Method is :method; "" is GET.
	Method string
	// Scheme is :scheme; "" is http. ForwardedProto is x-forwarded-proto,
	// which the connection manager sets from the downstream connection; ""
	// is Scheme.
	Scheme, ForwardedProto string
	// Host is :authority (the Host header), with its port when it has one.
	Host string
	// Path is :path, with its query string; "" is "/".
	Path    string
	Headers Headers
}

// normalized fills in what the connection manager always sets: :method,
// :scheme, x-forwarded-proto (ConnectionManagerUtility::mutateRequestHeaders
// sets it from the downstream connection) and :path.
func (r Request) normalized() Request {
	if r.Method == "" {
		r.Method = "GET"
	}
	if r.Scheme == "" {
		r.Scheme = "http"
	}
	if r.ForwardedProto == "" {
		r.ForwardedProto = r.Scheme
	}
	if r.Path == "" {
		r.Path = "/"
	}
	r.Headers = r.Headers.clone()
	return r
}

// all are the request's headers with its pseudo-headers, as header
// matchers see them.
func (r Request) all() Headers {
	hs := Headers{{":method", r.Method}, {":scheme", r.Scheme}, {":authority", r.Host}, {":path", r.Path}}
	if !r.Headers.Has("x-forwarded-proto") {
		hs = append(hs, Header{"x-forwarded-proto", r.ForwardedProto})
	}
	return append(hs, r.Headers.clone()...)
}

// Kind is what the route does with the request.
type Kind string

const (
	// NoRoute: no virtual host or route matched; Envoy answers 404.
	NoRoute Kind = "no route"
	// Forward: the request goes to a cluster, or to one of weighted clusters.
	Forward Kind = "forward"
	// Redirect: Envoy answers with a redirect.
	Redirect Kind = "redirect"
	// DirectResponse: Envoy answers with the route's status and body.
	DirectResponse Kind = "direct response"
	// NonForwarding: the route's non_forwarding_action (a proxyless gRPC
	// server's routes): the request goes to the application.
	NonForwarding Kind = "non-forwarding"
)

// Result is what Envoy does with a request.
type Result struct {
	Kind Kind
	// VirtualHost and Route name the virtual host and route that matched;
	// RouteIndex is the route's index among the virtual host's, -1 for none.
	VirtualHost, Route string
	RouteIndex         int
	// Status is the status Envoy answers with itself: 404 for no route, the
	// redirect's or the direct response's. Zero when the request is forwarded.
	Status int
	// Location is the Location header of a redirect (or of a direct
	// response with a 3xx or 201 status).
	Location string
	// Body is the direct response's inline body.
	Body string
	// Backends are where a forwarded request goes: the route's cluster, or
	// each of its weighted clusters with its weight, in order, each with
	// the request as that cluster receives it.
	Backends []Backend
	// Weighted says that the route has weighted_clusters; TotalWeight is the
	// sum of their weights, which Envoy picks among.
	Weighted    bool
	TotalWeight uint64
	// ClusterNotFoundStatus is what Envoy answers when the chosen cluster
	// does not exist (cluster_not_found_response_code): 503, 404 or 500.
	ClusterNotFoundStatus int
	// Timeout is the route timeout: Envoy's default 15s when the route sets
	// none, 0 when it disables it. IdleTimeout and MaxStreamDuration are
	// the route's, zero when it sets none.
	Timeout, IdleTimeout, MaxStreamDuration time.Duration
	// Retry is the retry policy, the route's or else its virtual host's;
	// nil for none.
	Retry *Retry
	// Mirrors are the request mirror policies: the route's, else the
	// virtual host's, else the route configuration's.
	Mirrors []Mirror
	// ResponseHeaders are the route's, virtual host's and route
	// configuration's response header changes, in the order Envoy applies
	// them. For a forwarded request, Backend.ResponseHeaders has them
	// after the cluster's own.
	ResponseHeaders []HeaderMutation
	// Warnings are what routesim could not simulate, or what Envoy would
	// refuse in the configuration.
	Warnings []string
}

// Backend is a cluster a forwarded request may go to.
type Backend struct {
	Cluster string
	// Weight is the cluster's weight among weighted clusters; 1 for the
	// route's single cluster.
	Weight uint32
	// Request is the request as the cluster receives it: host and path
	// rewritten, request headers changed.
	Request Request
	// ResponseHeaders are the changes Envoy makes to this cluster's
	// responses, in order: the weighted cluster's, then the route's levels.
	ResponseHeaders []HeaderMutation
}

// Response is the response headers the client sees when the backend
// answers with upstream.
func (b Backend) Response(upstream Headers) Headers { return applyAll(upstream, b.ResponseHeaders) }

// Retry is a route's retry policy, as RetryPolicyImpl reads it
// (source/common/router/config_impl.cc, retry_state_impl.cc).
type Retry struct {
	// NumRetries defaults to 1 when the policy sets none.
	NumRetries uint32
	RetryOn    []string
	// RetriableStatusCodes are retried under "retriable-status-codes".
	RetriableStatusCodes []uint32
	PerTryTimeout        time.Duration
	// BackoffBase and BackoffMax are the retry back-off: 25ms and ten times
	// the base when the policy sets none.
	BackoffBase, BackoffMax time.Duration
}

// Mirror is a request mirror policy: a copy of Numerator out of
// Denominator requests goes to Cluster.
type Mirror struct {
	Cluster                string
	Numerator, Denominator uint32
}

// Backend is the backend of cluster, nil if the route does not send there.
func (r Result) Backend(cluster string) *Backend {
	for i := range r.Backends {
		if r.Backends[i].Cluster == cluster {
			return &r.Backends[i]
		}
	}
	return nil
}

// Share is the share of requests that go to cluster: its weight over the
// total, 1 for a route's single cluster.
func (r Result) Share(cluster string) float64 {
	var w uint64
	for _, b := range r.Backends {
		if b.Cluster == cluster {
			w += uint64(b.Weight)
		}
	}
	if !r.Weighted {
		if w > 0 {
			return 1
		}
		return 0
	}
	if r.TotalWeight == 0 {
		return 0
	}
	return float64(w) / float64(r.TotalWeight)
}

// LocalResponse is the response headers of what Envoy answers itself (no
// route, redirect, direct response): :status, location, then the route's
// response header changes, as the router's sendLocalReply callback adds
// them (source/common/router/router.cc).
func (r Result) LocalResponse() Headers {
	if r.Status == 0 {
		return nil
	}
	h := Headers{{":status", strconv.Itoa(r.Status)}}
	if r.Location != "" {
		h = h.add("location", r.Location)
	}
	return applyAll(h, r.ResponseHeaders)
}

// defaultRouteTimeout is DEFAULT_ROUTE_TIMEOUT_MS of config_impl.cc.
const defaultRouteTimeout = 15 * time.Second

// Route is what Envoy does with req under rc, as
// ConfigImpl::route → RouteMatcher::route → VirtualHostImpl::getRouteFromEntries
// (source/common/router/config_impl.cc) and the router filter
// (source/common/router/router.cc, Filter::decodeHeaders) do: find the
// virtual host (findVirtualHost), apply its require_tls, take the first
// route that matches, in order (routeMatches), then carry out its action:
// a direct response or redirect (with its Location), or forwarding to its
// cluster or weighted clusters, each with the request finalized as
// RouteEntryImplBase::finalizeRequestHeaders (and, for a weighted cluster,
// WeightedClusterEntry::finalizeRequestHeaders) does.
func Route(rc *routev3.RouteConfiguration, req Request) Result {
	req = req.normalized()
	res := Result{Kind: NoRoute, Status: 404, RouteIndex: -1}
	warn := func(format string, args ...any) { res.Warnings = append(res.Warnings, fmt.Sprintf(format, args...)) }
	if rc.GetVhds() != nil || len(rc.GetClusterSpecifierPlugins()) > 0 || rc.GetVhostHeader() != "" {
		warn("the route configuration uses VHDS, cluster specifier plugins or vhost_header, which routesim does not simulate")
	}
	vh := findVirtualHost(rc, req.Host)
	if vh == nil {
		return res
	}
	res.VirtualHost = vh.GetName()
	if vh.GetMatcher() != nil {
		warn("virtual host %q routes by a matcher tree, which routesim does not simulate", vh.GetName())
		return res
	}
	switch vh.GetRequireTls() {
	case routev3.VirtualHost_ALL, routev3.VirtualHost_EXTERNAL_ONLY:
		internal, _ := req.all().Get("x-envoy-internal")
		if req.ForwardedProto != "https" && (vh.GetRequireTls() == routev3.VirtualHost_ALL || internal != "true") {
			// SslRedirectRoute: Http::Utility::createSslRedirectPath.
			res.Kind, res.Status, res.Location = Redirect, 301, "https://"+req.Host+req.Path
			return res
		}
	}
	all := req.all()
	for i, r := range vh.GetRoutes() {
		ok, matched := routeMatches(r.GetMatch(), all, req.Path, warn)
		if !ok {
			continue
		}
		res.Route, res.RouteIndex, res.Status = r.GetName(), i, 0
		act := action{rc: rc, vh: vh, route: r, matched: matched, warn: warn}
		act.apply(&res, req)
		return res
	}
	return res
}

// action carries out the action of the route that matched.
type action struct {
	rc      *routev3.RouteConfiguration
	vh      *routev3.VirtualHost
	route   *routev3.Route
	matched string
	warn    func(string, ...any)
}

// levels are the route's, virtual host's and route configuration's header
// mutations in the order Envoy evaluates them (getHeaderParsers in
// config_impl.cc): the later wins, so by default the route configuration's
// win, and the route's with most_specific_header_mutations_wins.
func (a action) levels(request bool) []HeaderMutation {
	var ms []HeaderMutation
	if request {
		ms = []HeaderMutation{
			headerMutation("route", a.route.GetRequestHeadersToAdd(), a.route.GetRequestHeadersToRemove(), a.warn),
			headerMutation("virtual_host", a.vh.GetRequestHeadersToAdd(), a.vh.GetRequestHeadersToRemove(), a.warn),
			headerMutation("route_configuration", a.rc.GetRequestHeadersToAdd(), a.rc.GetRequestHeadersToRemove(), a.warn),
		}
	} else {
		ms = []HeaderMutation{
			headerMutation("route", a.route.GetResponseHeadersToAdd(), a.route.GetResponseHeadersToRemove(), a.warn),
			headerMutation("virtual_host", a.vh.GetResponseHeadersToAdd(), a.vh.GetResponseHeadersToRemove(), a.warn),
			headerMutation("route_configuration", a.rc.GetResponseHeadersToAdd(), a.rc.GetResponseHeadersToRemove(), a.warn),
		}
	}
	if a.rc.GetMostSpecificHeaderMutationsWins() {
		ms[0], ms[2] = ms[2], ms[0]
	}
	var out []HeaderMutation
	for _, m := range ms {
		if !m.Empty() {
			out = append(out, m)
		}
	}
	return out
}

func (a action) apply(res *Result, req Request) {
	res.ResponseHeaders = a.levels(false)
	switch act := a.route.GetAction().(type) {
	case *routev3.Route_DirectResponse:
		res.Kind, res.Status = DirectResponse, int(act.DirectResponse.GetStatus())
		body := act.DirectResponse.GetBody()
		res.Body = body.GetInlineString()
		if b := body.GetInlineBytes(); len(b) > 0 {
			res.Body = string(b)
		}
		if body.GetFilename() != "" || body.GetEnvironmentVariable() != "" {
			a.warn("the direct response body comes from a file or the environment, which routesim does not read")
		}
		if res.Status == 201 || res.Status/100 == 3 {
			res.Location = newURI(nil, req)
		}
	case *routev3.Route_Redirect:
		res.Kind = Redirect
		res.Status = redirectStatus(act.Redirect.GetResponseCode())
		res.Location = a.redirect(act.Redirect, req)
	case *routev3.Route_NonForwardingAction:
		res.Kind = NonForwarding
	case *routev3.Route_Route:
		res.Kind = Forward
		a.forward(res, act.Route, req)
	default:
		a.warn("route action %T is not simulated by routesim", a.route.GetAction())
		res.Kind, res.Status = NoRoute, 404
	}
}

// forward fills in a forwarded request's backends, each with the request
// it receives, and the route action's policies.
func (a action) forward(res *Result, ra *routev3.RouteAction, req Request) {
	switch ra.GetClusterNotFoundResponseCode() {
	case routev3.RouteAction_NOT_FOUND:
		res.ClusterNotFoundStatus = 404
	case routev3.RouteAction_INTERNAL_SERVER_ERROR:
		res.ClusterNotFoundStatus = 500
	default:
		res.ClusterNotFoundStatus = 503
	}
	res.Timeout = defaultRouteTimeout
	if ra.GetTimeout() != nil {
		res.Timeout = ra.GetTimeout().AsDuration()
	}
	res.IdleTimeout = ra.GetIdleTimeout().AsDuration()
	res.MaxStreamDuration = ra.GetMaxStreamDuration().GetMaxStreamDuration().AsDuration()
	res.Retry = retryPolicy(ra.GetRetryPolicy(), a.vh.GetRetryPolicy())
	mirrors := ra.GetRequestMirrorPolicies()
	if len(mirrors) == 0 {
		mirrors = a.vh.GetRequestMirrorPolicies()
	}
	if len(mirrors) == 0 {
		mirrors = a.rc.GetRequestMirrorPolicies()
	}
	for _, m := range mirrors {
		mr := Mirror{Cluster: m.GetCluster(), Numerator: 100, Denominator: 100}
		if m.GetClusterHeader() != "" {
			a.warn("a mirror policy names its cluster by header %q, which routesim does not read", m.GetClusterHeader())
		}
		if f := m.GetRuntimeFraction(); f != nil {
			mr.Numerator, mr.Denominator = f.GetDefaultValue().GetNumerator(), denominator(f.GetDefaultValue().GetDenominator())
		}
		res.Mirrors = append(res.Mirrors, mr)
	}
	request := a.levels(true)
	response := res.ResponseHeaders
	switch cs := ra.GetClusterSpecifier().(type) {
	case *routev3.RouteAction_Cluster:
		res.Backends = []Backend{{Cluster: cs.Cluster, Weight: 1, Request: a.finalize(ra, req, request), ResponseHeaders: response}}
	case *routev3.RouteAction_ClusterHeader:
		name, _ := req.all().Get(cs.ClusterHeader)
		if vs := req.all().Values(cs.ClusterHeader); len(vs) > 0 {
			name = vs[0] // only the first value, as pickClusterViaClusterHeader reads it
		}
		res.Backends = []Backend{{Cluster: name, Weight: 1, Request: a.finalize(ra, req, request), ResponseHeaders: response}}
	case *routev3.RouteAction_WeightedClusters:
		res.Weighted = true
		wc := cs.WeightedClusters
		if wc.GetRuntimeKeyPrefix() != "" || wc.GetHeaderName() != "" || wc.GetUseHashPolicy().GetValue() {
			a.warn("weighted clusters take runtime weights or a random value from a header or hash, which routesim does not simulate")
		}
		for _, c := range wc.GetClusters() {
			name := c.GetName()
			if c.GetClusterHeader() != "" {
				if vs := req.all().Values(c.GetClusterHeader()); len(vs) > 0 {
					name = vs[0]
				}
			}
			res.TotalWeight += uint64(c.GetWeight().GetValue())
			cm := headerMutation("weighted_cluster", c.GetRequestHeadersToAdd(), c.GetRequestHeadersToRemove(), a.warn)
			rm := headerMutation("weighted_cluster", c.GetResponseHeadersToAdd(), c.GetResponseHeadersToRemove(), a.warn)
			// WeightedClusterEntry::finalizeRequestHeaders: the cluster's
			// headers, its host_rewrite_literal, then the route's.
			in := req
			in.Headers = cm.Apply(req.Headers)
			if h := c.GetHostRewriteLiteral(); h != "" {
				in.Host = h
			}
			var resp []HeaderMutation
			if !rm.Empty() {
				resp = append(resp, rm)
			}
			res.Backends = append(res.Backends, Backend{Cluster: name, Weight: c.GetWeight().GetValue(), Request: a.finalize(ra, in, request), ResponseHeaders: append(resp, response...)})
		}
		if res.TotalWeight == 0 {
			a.warn("the weighted clusters' weights sum to 0, which Envoy refuses")
		}
		if res.TotalWeight > 1<<32-1 {
			a.warn("the weighted clusters' weights sum past 2^32-1, which Envoy refuses")
		}
	default:
		a.warn("cluster specifier %T is not simulated by routesim", ra.GetClusterSpecifier())
	}
}

// finalize is the rest of RouteEntryImplBase::finalizeRequestHeaders
// (source/common/router/config_impl.cc) for the request in: the route's
// header mutations, the host rewrite (finalizeHostHeader: host_rewrite_literal,
// host_rewrite_header's first value, host_rewrite_path_regex on the path
// without query; append_x_forwarded_host keeps the old host in
// x-forwarded-host), then the path rewrite (finalizePathHeader, which also
// sets x-envoy-original-path, as the router does unless
// suppress_envoy_headers).
func (a action) finalize(ra *routev3.RouteAction, in Request, request []HeaderMutation) Request {
	out := in
	out.Headers = applyAll(in.Headers, request)
	host := ""
	switch hr := ra.GetHostRewriteSpecifier().(type) {
	case *routev3.RouteAction_HostRewriteLiteral:
		host = hr.HostRewriteLiteral
	case *routev3.RouteAction_HostRewriteHeader:
		if vs := out.Headers.Values(hr.HostRewriteHeader); len(vs) > 0 {
			host = vs[0]
		}
	case *routev3.RouteAction_HostRewritePathRegex:
		h, err := replaceAll(hr.HostRewritePathRegex, removeQueryAndFragment(out.Path))
		if err != nil {
			a.warn("host_rewrite_path_regex: %v", err)
		}
		host = h
	case *routev3.RouteAction_AutoHostRewrite:
		if hr.AutoHostRewrite.GetValue() {
			a.warn("auto_host_rewrite sets the host of the endpoint Envoy picks, which routesim does not know")
		}
	case nil:
	default:
		a.warn("host rewrite %T is not simulated by routesim", ra.GetHostRewriteSpecifier())
	}
	if host != "" {
		if ra.GetAppendXForwardedHost() && out.Host != "" {
			if xfh, ok := out.Headers.Get("x-forwarded-host"); ok {
				if parts := strings.Split(xfh, ","); strings.TrimSpace(parts[len(parts)-1]) != out.Host {
					out.Headers = out.Headers.set("x-forwarded-host", xfh+","+out.Host)
				}
			} else {
				out.Headers = out.Headers.add("x-forwarded-host", out.Host)
			}
		}
		out.Host = host
	}
	if ra.GetPathRewritePolicy() != nil || ra.GetPathRewrite() != "" {
		a.warn("path_rewrite and path_rewrite_policy are not simulated by routesim")
	}
	if p, changed := a.rewritePath(ra.GetPrefixRewrite(), ra.GetRegexRewrite(), out.Path); changed {
		out.Headers = out.Headers.set("x-envoy-original-path", out.Path)
		out.Path = p
	}
	return out
}

// rewritePath is RouteEntryImplBase::currentUrlPathAfterRewriteWithMatchedPath
// (source/common/router/config_impl.cc): prefix_rewrite replaces the
// matched part of the path (the configured prefix or path, the whole path
// for a regex route); regex_rewrite replaces in the path without its query,
// which is kept.
func (a action) rewritePath(prefix string, re *matcherv3.RegexMatchAndSubstitute, path string) (string, bool) {
	switch {
	case prefix != "":
		if len(a.matched) > len(path) {
			return path, false
		}
		return prefix + path[len(a.matched):], true
	case re != nil:
		just := removeQueryAndFragment(path)
		p, err := replaceAll(re, just)
		if err != nil {
			a.warn("regex_rewrite: %v", err)
			return path, false
		}
		return p + path[len(just):], true
	}
	return path, false
}

// replaceAll is Regex::CompiledGoogleReMatcher::replaceAll (RE2::GlobalReplace):
// every non-overlapping match of the pattern in s is replaced by the
// substitution, in which \0 to \9 are the match and its groups and \\ a
// backslash.
func replaceAll(rs *matcherv3.RegexMatchAndSubstitute, s string) (string, error) {
	re, err := regexp.Compile(rs.GetPattern().GetRegex())
	if err != nil {
		return s, fmt.Errorf("regex %q: %v", rs.GetPattern().GetRegex(), err)
	}
	sub := rs.GetSubstitution()
	var b strings.Builder
	last := 0
	for _, m := range re.FindAllStringSubmatchIndex(s, -1) {
		b.WriteString(s[last:m[0]])
		for i := 0; i < len(sub); i++ {
			c := sub[i]
			if c != '\\' || i+1 == len(sub) {
				b.WriteByte(c)
				continue
			}
			i++
			switch d := sub[i]; {
			case d == '\\':
				b.WriteByte('\\')
			case d >= '0' && d <= '9':
				g := int(d - '0')
				if 2*g+1 < len(m) && m[2*g] >= 0 {
					b.WriteString(s[m[2*g]:m[2*g+1]])
				} else if 2*g+1 >= len(m) {
					return s, fmt.Errorf("substitution %q names group %d of a regex with %d", sub, g, len(m)/2-1)
				}
			default:
				return s, fmt.Errorf("substitution %q has an invalid escape \\%c", sub, d)
			}
		}
		last = m[1]
	}
	b.WriteString(s[last:])
	return b.String(), nil
}

// redirectStatus is ConfigUtility::parseRedirectResponseCode
// (source/common/router/config_utility.cc): MOVED_PERMANENTLY, the enum's
// zero, is 301.
func redirectStatus(c routev3.RedirectAction_RedirectResponseCode) int {
	switch c {
	case routev3.RedirectAction_FOUND:
		return 302
	case routev3.RedirectAction_SEE_OTHER:
		return 303
	case routev3.RedirectAction_TEMPORARY_REDIRECT:
		return 307
	case routev3.RedirectAction_PERMANENT_REDIRECT:
		return 308
	}
	return 301
}

// retryPolicy is RouteEntryImplBase::buildRetryPolicy: the route's policy,
// else the virtual host's, read as RetryPolicyImpl does (num_retries
// defaults to 1; a back-off's base of less than 1ms is 1ms).
func retryPolicy(route, vhost *routev3.RetryPolicy) *Retry {
	p := route
	if p == nil {
		p = vhost
	}
	if p == nil {
		return nil
	}
	r := &Retry{NumRetries: 1, RetriableStatusCodes: p.GetRetriableStatusCodes(), PerTryTimeout: p.GetPerTryTimeout().AsDuration()}
	if p.GetNumRetries() != nil {
		r.NumRetries = p.GetNumRetries().GetValue()
	}
	for _, on := range strings.Split(p.GetRetryOn(), ",") {
		if on = strings.TrimSpace(on); on != "" {
			r.RetryOn = append(r.RetryOn, on)
		}
	}
	r.BackoffBase = 25 * time.Millisecond
	if bo := p.GetRetryBackOff(); bo != nil {
		r.BackoffBase = max(bo.GetBaseInterval().AsDuration(), time.Millisecond)
		if bo.GetMaxInterval() != nil {
			r.BackoffMax = max(bo.GetMaxInterval().AsDuration(), time.Millisecond)
		}
	}
	if r.BackoffMax == 0 {
		r.BackoffMax = 10 * r.BackoffBase
	}
	return r
}

// denominator is a FractionalPercent's denominator as a number
// (ProtobufPercentHelper, source/common/protobuf/utility.h).
func denominator(d typev3.FractionalPercent_DenominatorType) uint32 {
	switch d {
	case typev3.FractionalPercent_TEN_THOUSAND:
		return 10_000
	case typev3.FractionalPercent_MILLION:
		return 1_000_000
	}
	return 100
}
