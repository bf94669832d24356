package translate

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// The translation of the Gateway API route tables (mesh/routes.go) into
// the routes of a service port's route configuration.

// InvalidBackendCluster is the cluster a route sends the share of requests
// of a backend that does not resolve to: no proxy has it, so Envoy answers
// them 500 (the route's cluster_not_found_response_code), as Gateway API asks.
const InvalidBackendCluster = "invalid-backend"

// routeTable builds the route configuration name of table: a route per
// entry, in the table's order, then one answering 404 what none matches.
// grpc says that a proxyless gRPC client reads it.
func (t *translator) routeTable(name string, table *mesh.RouteTable, grpc bool) *routev3.RouteConfiguration {
	vh := &routev3.VirtualHost{Name: name, Domains: []string{"*"}}
	catchAll := false
	for _, e := range table.Entries {
		r := t.routeEntry(e, table.Key.Service, table.Key.Port, grpc)
		if r == nil {
			continue
		}
		vh.Routes = append(vh.Routes, t.routeFault(r, e.Action.Fault, grpc)...)
		m := e.Match
		if m.PathKind == mesh.PathPrefix && m.Path == "/" && m.Method == "" && len(m.Headers) == 0 && len(m.Query) == 0 {
			catchAll = true
			break // nothing after it is ever reached
		}
	}
	if !catchAll {
		vh.Routes = append(vh.Routes, &routev3.Route{
			Name:   "no-route-matches",
			Match:  prefixAll(),
			Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 404}},
		})
	}
	return &routev3.RouteConfiguration{Name: name, VirtualHosts: []*routev3.VirtualHost{vh}, ValidateClusters: wrapperspb.Bool(false)}
}

// entryName names a route entry for stats and explanations:
// "<Kind>/<namespace>/<name>/rule/<index or name>".
func entryName(r mesh.RouteRef) string {
	rule := strconv.Itoa(r.Rule)
	if r.RuleName != "" {
		rule = r.RuleName
	}
	return fmt.Sprintf("%s/%s/%s/rule/%s", r.Kind, r.Namespace, r.Name, rule)
}

// routeEntry is the route of e; nil for a gRPC client, when no call can
// match it (a method other than POST).
func (t *translator) routeEntry(e *mesh.RouteEntry, svc mesh.ServiceKey, port int32, grpc bool) *routev3.Route {
	a := e.Action
	match := routeMatch(e.Match)
	if grpc {
		if match = grpcRouteMatch(e.Match); match == nil {
			return nil
		}
	}
	r := &routev3.Route{
		Name:                    entryName(e.Ref),
		Match:                   match,
		RequestHeadersToAdd:     headerOptions(a.RequestHeaders),
		RequestHeadersToRemove:  a.RequestHeaders.Remove,
		ResponseHeadersToAdd:    headerOptions(a.ResponseHeaders),
		ResponseHeadersToRemove: a.ResponseHeaders.Remove,
	}
	if a.Redirect != nil {
		r.Action = &routev3.Route_Redirect{Redirect: redirectAction(a.Redirect, e.Match, port)}
		return r
	}
	ra := t.backendsAction(a.Backends)
	if ra == nil {
		r.Action = &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 500}}
		return r
	}
	for _, be := range a.Backends {
		if !be.Invalid && be.Weight > 0 {
			ra.HashPolicy = hashPolicy(t.view.Mesh.Resilience(be.Service, be.Port))
			break
		}
	}
	ra.Timeout = durationpb.New(a.Timeout)
	if grpc && a.Timeout > 0 {
		// gRPC reads a route's deadline from here, not from timeout.
		ra.MaxStreamDuration = &routev3.RouteAction_MaxStreamDuration{MaxStreamDuration: durationpb.New(a.Timeout)}
	}
	ra.RetryPolicy = retryPolicy(a, t.callerRetry(svc), grpc)
	if rw := a.Rewrite; rw != nil {
		if rw.Host != "" {
			ra.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: rw.Host}
		}
		ra.PrefixRewrite, ra.RegexRewrite = pathRewrite(rw.Path, e.Match)
	}
	for _, m := range a.Mirrors {
		ra.RequestMirrorPolicies = append(ra.RequestMirrorPolicies, &routev3.RouteAction_RequestMirrorPolicy{
			Cluster:         OutboundClusterName(m.Service, m.Port),
			RuntimeFraction: &corev3.RuntimeFractionalPercent{DefaultValue: fraction(m.Numerator, m.Denominator)},
		})
	}
	r.Action = &routev3.Route_Route{Route: ra}
	return r
}

// backendsAction sends requests to the backends by weight; nil when none
// has a weight.
func (t *translator) backendsAction(bes []mesh.RouteBackend) *routev3.RouteAction {
	wc := &routev3.WeightedCluster{}
	for _, be := range bes {
		if be.Weight == 0 {
			continue
		}
		cw := &routev3.WeightedCluster_ClusterWeight{Name: InvalidBackendCluster, Weight: wrapperspb.UInt32(be.Weight)}
		if !be.Invalid {
			cw.Name = OutboundClusterName(be.Service, be.Port)
			cw.RequestHeadersToAdd = headerOptions(be.RequestHeaders)
			cw.RequestHeadersToRemove = be.RequestHeaders.Remove
		}
		wc.Clusters = append(wc.Clusters, cw)
	}
	switch {
	case len(wc.Clusters) == 0:
		return nil
	case len(wc.Clusters) == 1 && len(wc.Clusters[0].RequestHeadersToAdd)+len(wc.Clusters[0].RequestHeadersToRemove) == 0:
		ra := toCluster(wc.Clusters[0].Name)
		ra.ClusterNotFoundResponseCode = routev3.RouteAction_INTERNAL_SERVER_ERROR
		return ra
	}
	return &routev3.RouteAction{
		ClusterSpecifier:            &routev3.RouteAction_WeightedClusters{WeightedClusters: wc},
		ClusterNotFoundResponseCode: routev3.RouteAction_INTERNAL_SERVER_ERROR,
	}
}

func routeMatch(m mesh.RouteMatch) *routev3.RouteMatch {
	rm := &routev3.RouteMatch{}
	switch {
	case m.PathKind == mesh.PathExact:
		rm.PathSpecifier = &routev3.RouteMatch_Path{Path: m.Path}
	case m.PathKind == mesh.PathRegex:
		rm.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: m.Path}}
	case m.Path == "/":
		rm.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: "/"}
	default:
		// By path element: "/a" matches "/a" and "/a/b", not "/ab".
		rm.PathSpecifier = &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: m.Path}
	}
	if m.Method != "" {
		rm.Headers = append(rm.Headers, &routev3.HeaderMatcher{Name: ":method", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: exact(m.Method)}})
	}
	for _, h := range m.Headers {
		rm.Headers = append(rm.Headers, &routev3.HeaderMatcher{Name: h.Name, HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: valueMatcher(h)}})
	}
	for _, q := range m.Query {
		rm.QueryParameters = append(rm.QueryParameters, &routev3.QueryParameterMatcher{Name: q.Name, QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_StringMatch{StringMatch: valueMatcher(q)}})
	}
	return rm
}

// grpcRouteMatch is routeMatch for a gRPC client, which refuses a whole
// route configuration with a path_separated_prefix, never matches
// :method (every call is a POST), and drops a route with query parameters
// (no call has any): a prefix of path elements is a regex; nil when no
// call can match.
func grpcRouteMatch(m mesh.RouteMatch) *routev3.RouteMatch {
	if m.Method != "" && m.Method != "POST" || len(m.Query) > 0 {
		return nil
	}
	m.Method = ""
	rm := routeMatch(m)
	if m.PathKind == mesh.PathPrefix && m.Path != "/" {
		rm.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: regexp.QuoteMeta(m.Path) + "(/.*)?"}}
	}
	return rm
}

func valueMatcher(v mesh.ValueMatch) *matcherv3.StringMatcher {
	if v.Regex {
		return regex(v.Value)
	}
	return exact(v.Value)
}

// headerOptions are the headers a modifier sets (replacing any the request
// has) and adds (next to any it has).
func headerOptions(h mesh.HeaderModifier) []*corev3.HeaderValueOption {
	var out []*corev3.HeaderValueOption
	// Envoy reads a value as a format string: a literal % is %%.
	for _, s := range h.Set {
		out = append(out, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: s.Name, Value: strings.ReplaceAll(s.Value, "%", "%%")}, AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD})
	}
	for _, a := range h.Add {
		out = append(out, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: a.Name, Value: strings.ReplaceAll(a.Value, "%", "%%")}, AppendAction: corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD})
	}
	return out
}

var redirectCodes = map[int]routev3.RedirectAction_RedirectResponseCode{
	301: routev3.RedirectAction_MOVED_PERMANENTLY,
	302: routev3.RedirectAction_FOUND,
	303: routev3.RedirectAction_SEE_OTHER,
	307: routev3.RedirectAction_TEMPORARY_REDIRECT,
	308: routev3.RedirectAction_PERMANENT_REDIRECT,
}

// redirectAction is rd for a request that matched m on service port port.
// Gateway API's port, when rd names none: the new scheme's (80, 443), else
// the port the request was sent to (the Service's, a mesh's listener), which
// Envoy would drop with a new host and keep with a new scheme.
func redirectAction(rd *mesh.Redirect, m mesh.RouteMatch, port int32) *routev3.RedirectAction {
	ra := &routev3.RedirectAction{HostRedirect: rd.Host, PortRedirect: uint32(rd.Port), ResponseCode: redirectCodes[rd.StatusCode]}
	if rd.Port == 0 {
		switch {
		case rd.Scheme == "https":
			ra.PortRedirect = 443
		case rd.Scheme == "http":
			ra.PortRedirect = 80
		case rd.Host != "":
			ra.PortRedirect = uint32(port)
		}
	}
	if rd.Scheme != "" {
		ra.SchemeRewriteSpecifier = &routev3.RedirectAction_SchemeRedirect{SchemeRedirect: rd.Scheme}
	}
	switch {
	case rd.Path.Full != nil:
		ra.PathRewriteSpecifier = &routev3.RedirectAction_PathRedirect{PathRedirect: *rd.Path.Full}
	case rd.Path.Prefix != nil:
		prefix, re := pathRewrite(rd.Path, m)
		if re != nil {
			ra.PathRewriteSpecifier = &routev3.RedirectAction_RegexRewrite{RegexRewrite: re}
		} else {
			ra.PathRewriteSpecifier = &routev3.RedirectAction_PrefixRewrite{PrefixRewrite: prefix}
		}
	}
	return ra
}

// pathRewrite is how Envoy rewrites a path as p says, for a request that
// matched m: the whole path by a regex of it; the matched prefix by
// prefix_rewrite, except where that would leave a "//" (a prefix replaced
// by "/", or by a path ending in "/"), which a regex does with the "/"s
// after the prefix.
func pathRewrite(p mesh.PathRewrite, m mesh.RouteMatch) (string, *matcherv3.RegexMatchAndSubstitute) {
	switch {
	case p.Full != nil:
		return "", &matcherv3.RegexMatchAndSubstitute{Pattern: &matcherv3.RegexMatcher{Regex: "^/.*$"}, Substitution: *p.Full}
	case p.Prefix == nil:
		return "", nil
	}
	to := *p.Prefix
	if m.Path == "/" {
		// Everything matches "/": the new prefix goes before the path.
		return "", &matcherv3.RegexMatchAndSubstitute{Pattern: &matcherv3.RegexMatcher{Regex: "^/"}, Substitution: strings.TrimSuffix(to, "/") + "/"}
	}
	if to == "/" || strings.HasSuffix(to, "/") {
		return "", &matcherv3.RegexMatchAndSubstitute{
			Pattern:      &matcherv3.RegexMatcher{Regex: "^" + regexp.QuoteMeta(m.Path) + "/*"},
			Substitution: strings.TrimSuffix(to, "/") + "/",
		}
	}
	return to, nil
}

// retryPolicy is the retry policy of a route action: the rule's retries,
// else the caller's Retry of the route's Service (a rule that says how to
// retry says it for its requests), with the per-try timeout of the rule's
// backendRequest timeout; nil for none of these.
func retryPolicy(a *mesh.RouteAction, caller *policyv1alpha1.RetryPolicy, grpc bool) *routev3.RetryPolicy {
	if a.Retry == nil && caller != nil {
		return callerRetryPolicy(caller, a.BackendTimeout, grpc)
	}
	// gRPC refuses a policy of no retries, and has no per-try timeout.
	if a.Retry == nil && (a.BackendTimeout == 0 || grpc) {
		return nil
	}
	// Envoy retries once when a policy names no count: a backendRequest
	// timeout alone must not add a retry.
	rp := &routev3.RetryPolicy{NumRetries: wrapperspb.UInt32(0)}
	if a.BackendTimeout > 0 {
		rp.PerTryTimeout = durationpb.New(a.BackendTimeout)
	}
	if r := a.Retry; r != nil {
		rp.NumRetries = wrapperspb.UInt32(uint32(r.Attempts))
		on := []string{"connect-failure", "refused-stream", "reset"}
		if grpc {
			// gRPC reads gRPC status names only: a failed HTTP answer is
			// UNAVAILABLE to it.
			on = []string{"unavailable"}
		}
		if len(r.Codes) > 0 && !grpc {
			on = append(on, "retriable-status-codes")
			for _, c := range r.Codes {
				rp.RetriableStatusCodes = append(rp.RetriableStatusCodes, uint32(c))
			}
		}
		rp.RetryOn = strings.Join(on, ",")
		if r.Backoff > 0 {
			rp.RetryBackOff = &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(r.Backoff), MaxInterval: durationpb.New(10 * r.Backoff)}
		}
	}
	return rp
}

// grpcRetryOn are the retry conditions a proxyless gRPC client reads: the
// gRPC status names. It ignores the others.
var grpcRetryOn = []string{"cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable"}

// callerRetryPolicy is an OSM Retry's policy as a route's, each try bounded
// by perTry when the route sets it, else by the Retry's perTryTimeout. A
// gRPC client gets the gRPC conditions of the Retry only, and no policy when
// none is left or it allows no retry (it refuses a policy of 0 retries).
func callerRetryPolicy(p *policyv1alpha1.RetryPolicy, perTry time.Duration, grpc bool) *routev3.RetryPolicy {
	on := p.RetryOn
	if grpc {
		var codes []string
		for c := range strings.SplitSeq(p.RetryOn, ",") {
			if slices.Contains(grpcRetryOn, c) {
				codes = append(codes, c)
			}
		}
		if len(codes) == 0 || p.NumRetries == 0 {
			return nil
		}
		on = strings.Join(codes, ",")
	}
	rp := &routev3.RetryPolicy{
		RetryOn:      on,
		NumRetries:   wrapperspb.UInt32(uint32(min(p.NumRetries, math.MaxUint32))),
		RetryBackOff: &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(p.BackoffBase), MaxInterval: durationpb.New(p.BackoffMax)},
	}
	if perTry == 0 {
		perTry = p.PerTryTimeout
	}
	if perTry > 0 && !grpc {
		rp.PerTryTimeout = durationpb.New(perTry)
	}
	return rp
}

// callerRetry is how the group's callers retry their requests to s (an
// OSM Retry), nil for not at all.
func (t *translator) callerRetry(s mesh.ServiceKey) *policyv1alpha1.RetryPolicy {
	return t.view.Mesh.RetryTo(t.view.Group.Identity, s)
}

// fraction is n/d of requests as a FractionalPercent, whose denominators
// are 100, 10,000 or 1,000,000.
func fraction(n, d uint32) *typev3.FractionalPercent {
	switch d {
	case 100:
		return &typev3.FractionalPercent{Numerator: n, Denominator: typev3.FractionalPercent_HUNDRED}
	case 10000:
		return &typev3.FractionalPercent{Numerator: n, Denominator: typev3.FractionalPercent_TEN_THOUSAND}
	}
	return &typev3.FractionalPercent{Numerator: uint32(uint64(n) * 1_000_000 / uint64(max(d, 1))), Denominator: typev3.FractionalPercent_MILLION}
}
