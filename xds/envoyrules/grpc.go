package envoyrules

import (
	"fmt"
	"math"
	"regexp"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The rules of CheckGRPC port what grpc-go v1.85.0's xDS client refuses (a
// NACK of the whole resource) when it reads a listener, route configuration
// or cluster. grpc-go runs no proto validation: only these. Its sources are
// under google.golang.org/grpc@v1.85.0/internal/xds/.
const (
	grpcRDS         = "internal/xds/xdsclient/xdsresource/unmarshal_rds.go"
	grpcLDS         = "internal/xds/xdsclient/xdsresource/unmarshal_lds.go"
	grpcCDS         = "internal/xds/xdsclient/xdsresource/unmarshal_cds.go"
	grpcFilterChain = "internal/xds/xdsclient/xdsresource/filter_chain.go"
)

const (
	hcmURL          = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
	routerURL       = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
	faultURL        = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
	rbacURL         = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
	rbacPerRouteURL = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute"
	filterConfigURL = "type.googleapis.com/envoy.config.route.v3.FilterConfig"
	typedStructURL  = "type.googleapis.com/xds.type.v3.TypedStruct"
	udpaStructURL   = "type.googleapis.com/udpa.type.v1.TypedStruct"
	upstreamTLSURL  = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
)

// grpcFilter is an HTTP filter grpc-go registers, by the type URLs it
// registers under (httpfilter.Register in xds/xds.go's imports): which side
// builds it, whether it is terminal, and which of its URLs its config and
// its per-route override parse (each builder unmarshals the Any into one
// message: another URL registered by the same builder fails to parse).
type grpcFilter struct {
	name             string
	client, server   bool
	terminal         bool
	config, override bool
	source           string
}

// grpcFilters are the filters of a default grpc-go v1.85.0 build: router,
// fault and RBAC. The gcp_authn filter is not among them (nothing outside
// its tests imports internal/xds/httpfilter/gcp_authn, so it never
// registers), ext_authz neither; ext_proc registers only when
// GRPC_EXPERIMENTAL_XDS_EXT_PROC_ON_CLIENT is true, which the mesh's
// clients do not set.
var grpcFilters = map[string]grpcFilter{
	routerURL:       {name: "router", client: true, server: true, terminal: true, config: true, source: "internal/xds/httpfilter/router/router.go"},
	faultURL:        {name: "fault", client: true, config: true, override: true, source: "internal/xds/httpfilter/fault/fault.go"},
	rbacURL:         {name: "rbac", server: true, config: true, source: "internal/xds/httpfilter/rbac/rbac.go"},
	rbacPerRouteURL: {name: "rbac", server: true, override: true, source: "internal/xds/httpfilter/rbac/rbac.go"},
}

// grpcLBPolicies are the load_balancing_policy types grpc-go converts
// (internal/xds/xdsclient/xdslbregistry/converter/converter.go).
var grpcLBPolicies = map[string]bool{
	"type.googleapis.com/envoy.extensions.load_balancing_policies.client_side_weighted_round_robin.v3.ClientSideWeightedRoundRobin": true,
	"type.googleapis.com/envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash":                                            true,
	"type.googleapis.com/envoy.extensions.load_balancing_policies.pick_first.v3.PickFirst":                                          true,
	"type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin":                                        true,
	"type.googleapis.com/envoy.extensions.load_balancing_policies.wrr_locality.v3.WrrLocality":                                      true,
	"type.googleapis.com/envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest":                                    true,
	udpaStructURL:  true,
	typedStructURL: true,
}

// CheckGRPC returns the Violations of what proxyless grpc-go clients and
// servers of the mesh load (their listeners, RDS route configurations and
// clusters), or nil. Their static resources and secrets mean nothing to
// gRPC and are not read.
func CheckGRPC(r *Resources) error {
	return NewChecker(Options{}).CheckGRPC(r)
}

// CheckGRPC is the package's CheckGRPC, decoding typed configs with the
// Checker's Unpack. It remembers nothing: grpc-go's facts are not Envoy's.
func (c *Checker) CheckGRPC(r *Resources) error {
	f := &facts{}
	for _, l := range r.Listeners {
		c.grpcListener(l, f)
	}
	for _, rc := range r.Routes {
		c.grpcRoute("route", rc.GetName(), "", rc, f)
	}
	for _, cl := range r.Clusters {
		grpcCluster(cl, f)
	}
	if len(f.errs) == 0 {
		return nil
	}
	for _, v := range f.errs {
		v.GRPC = true
	}
	return f.errs
}

// grpcListener checks a listener: a client's API listener
// (processClientSideListener) or a server's, whose chains' connection
// managers are read alike (filterChainFromProto). The server's own rules
// (listener filters, chain matches, TLS) are not ported.
func (c *Checker) grpcListener(l *listenerv3.Listener, f *facts) {
	name := l.GetName()
	if al := l.GetApiListener(); al != nil {
		a := al.GetApiListener()
		if a.GetTypeUrl() != hcmURL {
			f.fail("listener", name, "an API listener holds an HttpConnectionManager",
				fmt.Sprintf("\"unexpected http connection manager resource type: %q\" (%s, processClientSideListener)", a.GetTypeUrl(), grpcLDS))
			return
		}
		if h := c.grpcHCMConfig(name, "its API listener", a, f); h != nil {
			c.grpcHCM(name, "its API listener", h, false, f)
		}
		return
	}
	chains := l.GetFilterChains()
	if dc := l.GetDefaultFilterChain(); dc != nil {
		chains = append(chains[:len(chains):len(chains)], dc)
	}
	for _, fc := range chains {
		where := fmt.Sprintf("filter chain %q", fc.GetName())
		for _, nf := range fc.GetFilters() {
			if nf.GetTypedConfig().GetTypeUrl() != hcmURL {
				continue
			}
			if h := c.grpcHCMConfig(name, where, nf.GetTypedConfig(), f); h != nil {
				c.grpcHCM(name, where, h, true, f)
			}
			break // grpc-go ignores the filters after the connection manager
		}
	}
}

func (c *Checker) grpcHCMConfig(ln, where string, a *anypb.Any, f *facts) *hcmv3.HttpConnectionManager {
	msg, err := c.unpack(a)
	h, ok := msg.(*hcmv3.HttpConnectionManager)
	if err != nil || !ok {
		f.fail("listener", ln, fmt.Sprintf("%s: its HttpConnectionManager decodes: %v", where, err), "\"failed to unmarshal api_listener\" ("+grpcLDS+")")
		return nil
	}
	return h
}

// grpcHCM checks a connection manager; server says it is a server's.
func (c *Checker) grpcHCM(ln, where string, h *hcmv3.HttpConnectionManager, server bool, f *facts) {
	source := grpcLDS + ", processClientSideListener"
	if server {
		source = grpcFilterChain
	}
	if h.GetXffNumTrustedHops() != 0 {
		f.fail("listener", ln, where+": its connection manager's xff_num_trusted_hops is 0",
			"\"xff_num_trusted_hops must be unset or zero\": the listener is NACKed ("+source+")")
	}
	if len(h.GetOriginalIpDetectionExtensions()) != 0 {
		f.fail("listener", ln, where+": its connection manager has no original_ip_detection_extensions",
			"\"original_ip_detection_extensions must be empty\": the listener is NACKed ("+source+")")
	}
	switch rs := h.GetRouteSpecifier().(type) {
	case *hcmv3.HttpConnectionManager_Rds:
		cs := rs.Rds.GetConfigSource()
		if cs.GetAds() == nil && (server || cs.GetSelf() == nil) {
			f.fail("listener", ln, where+": its connection manager loads its routes over ADS",
				"\"LDS's RDS configSource is not ADS or Self\" (a server's: \"ConfigSource is not ADS\"): the listener is NACKed ("+source+")")
		}
		if rs.Rds.GetRouteConfigName() == "" {
			f.fail("listener", ln, where+": its connection manager names its RDS route configuration",
				"\"empty route_config_name\": the listener is NACKed ("+source+")")
		}
	case *hcmv3.HttpConnectionManager_RouteConfig:
		c.grpcRoute("listener", ln, where+": its inline route configuration: ", rs.RouteConfig, f)
	default:
		f.fail("listener", ln, where+": its connection manager has routes, inline or by RDS",
			"\"no RouteSpecifier\": the listener is NACKed ("+source+")")
	}
	grpcHTTPFilters(ln, where, h.GetHttpFilters(), server, f)
}

// grpcTypeURL is the type URL of a filter config as grpc-go looks it up: a
// TypedStruct's own (unwrapHTTPFilterConfig), and whether it was one.
func grpcTypeURL(a *anypb.Any) (string, bool) {
	url := a.GetTypeUrl()
	if url != typedStructURL && url != udpaStructURL {
		return url, false
	}
	// TypedStruct.type_url is field 1 of both messages.
	b := a.GetValue()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", true
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return "", true
			}
			return string(v), true
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return "", true
		}
		b = b[n:]
	}
	return "", true
}

// grpcHTTPFilters ports processHTTPFilters (unmarshal_lds.go): the filters
// a connection manager lists, each one a side of grpc-go builds unless it
// is optional, the terminal router last.
func grpcHTTPFilters(ln, where string, filters []*hcmv3.HttpFilter, server bool, f *facts) {
	where += ": its HTTP filters"
	side := "client"
	if server {
		side = "server"
	}
	seen := map[string]bool{}
	var kept []*hcmv3.HttpFilter
	for _, hf := range filters {
		name := hf.GetName()
		if name == "" {
			f.fail("listener", ln, where+" are named", "\"filter missing name field\" ("+grpcLDS+", processHTTPFilters)")
		}
		if seen[name] {
			f.fail("listener", ln, fmt.Sprintf("%s have unique names: %q is repeated", where, name), fmt.Sprintf("\"duplicate filter name %q\" (%s, processHTTPFilters)", name, grpcLDS))
		}
		seen[name] = true
		url, wrapped := grpcTypeURL(hf.GetTypedConfig())
		gf, known := grpcFilters[url]
		switch {
		case !known && hf.GetIsOptional():
			continue
		case !known:
			f.fail("listener", ln, fmt.Sprintf("%s are filters grpc-go has, or optional: %s is neither", where, name),
				fmt.Sprintf("\"no filter implementation found for %q\" (%s, validateHTTPFilterConfig); grpc-go v1.85.0 registers the router, fault and RBAC filters", url, grpcLDS))
			continue
		case wrapped || !gf.config:
			f.fail("listener", ln, fmt.Sprintf("%s: %s's config is the %s filter's own message", where, name, gf.name),
				fmt.Sprintf("\"error parsing config for filter %q\" (%s, validateHTTPFilterConfig; %s unmarshals one message type)", url, grpcLDS, gf.source))
			continue
		case server && !gf.server || !server && !gf.client:
			if hf.GetIsOptional() {
				continue
			}
			f.fail("listener", ln, fmt.Sprintf("%s: %s is a filter grpc-go runs %s-side, or optional", where, name, side),
				fmt.Sprintf("\"HTTP filter %q not supported %s-side\" (%s, processHTTPFilters)", name, side, grpcLDS))
			continue
		}
		kept = append(kept, hf)
	}
	if len(kept) == 0 {
		f.fail("listener", ln, where+" hold one grpc-go runs, the router last", "\"http filters list is empty\" ("+grpcLDS+", processHTTPFilters)")
		return
	}
	for i, hf := range kept {
		url, _ := grpcTypeURL(hf.GetTypedConfig())
		terminal := grpcFilters[url].terminal
		switch {
		case terminal && i < len(kept)-1:
			f.fail("listener", ln, fmt.Sprintf("%s: the terminal filter %s is last", where, hf.GetName()),
				fmt.Sprintf("\"http filter %q is a terminal filter but it is not last in the filter chain\" (%s, processHTTPFilters)", hf.GetName(), grpcLDS))
		case !terminal && i == len(kept)-1:
			f.fail("listener", ln, fmt.Sprintf("%s: the last filter is terminal, %s is not", where, hf.GetName()),
				fmt.Sprintf("\"http filter %q is not a terminal filter\" (%s, processHTTPFilters)", hf.GetName(), grpcLDS))
		}
	}
}

// grpcOverrides ports processHTTPFilterOverrides (unmarshal_lds.go): each
// typed_per_filter_config is an override of a filter grpc-go has, or
// wrapped in a FilterConfig that is optional.
func (c *Checker) grpcOverrides(kind, name, where string, cfgs map[string]*anypb.Any, f *facts) {
	for fn, a := range cfgs {
		optional := false
		if a.GetTypeUrl() == filterConfigURL {
			msg, err := c.unpack(a)
			fc, ok := msg.(*routev3.FilterConfig)
			if err != nil || !ok {
				f.fail(kind, name, fmt.Sprintf("%s: the per-filter config of %q decodes: %v", where, fn, err), "\"error unmarshalling FilterConfig\" ("+grpcLDS+", processHTTPFilterOverrides)")
				continue
			}
			a, optional = fc.GetConfig(), fc.GetIsOptional()
		}
		url, wrapped := grpcTypeURL(a)
		gf, known := grpcFilters[url]
		switch {
		case !known && optional:
		case !known:
			f.fail(kind, name, fmt.Sprintf("%s: the per-filter config of %q is of a filter grpc-go has, or in an optional FilterConfig", where, fn),
				fmt.Sprintf("\"filter override %q: no filter implementation found for %q\": the resource is NACKed (%s, processHTTPFilterOverrides)", fn, url, grpcLDS))
		case wrapped || !gf.override:
			f.fail(kind, name, fmt.Sprintf("%s: the per-filter config of %q is an override the %s filter parses", where, fn, gf.name),
				fmt.Sprintf("\"filter override %q: error parsing config for filter %q\": the resource is NACKed (%s, ParseFilterConfigOverride: the router takes none, RBAC an RBACPerRoute, fault an HTTPFault)", fn, url, gf.source))
		}
	}
}

// grpcRoute ports generateRDSUpdateFromRouteConfiguration (unmarshal_rds.go),
// which reads an RDS route configuration and a listener's inline one:
// kind and name are the resource (the listener of an inline one), where
// says which part of it.
func (c *Checker) grpcRoute(kind, name, where string, rc *routev3.RouteConfiguration, f *facts) {
	nack := "the route configuration is NACKed (" + grpcRDS + ")"
	if kind == "listener" {
		nack = "\"failed to parse inline RDS resp\": the listener is NACKed (" + grpcLDS + ", " + grpcRDS + ")"
	}
	for _, vh := range rc.GetVirtualHosts() {
		vwhere := fmt.Sprintf("%svirtual host %q", where, vh.GetName())
		for i, r := range vh.GetRoutes() {
			c.grpcRouteEntry(kind, name, fmt.Sprintf("%s: route %d", vwhere, i), r, nack, f)
		}
		grpcRetry(kind, name, vwhere, vh.GetRetryPolicy(), nack, f)
		c.grpcOverrides(kind, name, vwhere, vh.GetTypedPerFilterConfig(), f)
	}
}

// grpcRouteEntry ports routesProtoToSlice for one route.
func (c *Checker) grpcRouteEntry(kind, name, where string, r *routev3.Route, nack string, f *facts) {
	m := r.GetMatch()
	if m == nil {
		f.fail(kind, name, where+" has a match", "\"route … doesn't have a match\": "+nack)
		return
	}
	if len(m.GetQueryParameters()) != 0 {
		return // grpc-go ignores the route: no call has query parameters
	}
	switch p := m.GetPathSpecifier().(type) {
	case nil:
		f.fail(kind, name, where+" has a path match", "\"route … doesn't have a path specifier\": "+nack)
	case *routev3.RouteMatch_Prefix, *routev3.RouteMatch_Path:
	case *routev3.RouteMatch_SafeRegex:
		grpcRegex(kind, name, where+": its path regex", p.SafeRegex.GetRegex(), "\"route … contains an invalid regex\": "+nack, f)
	default:
		f.fail(kind, name, where+" matches the path by prefix, path or safe_regex, the specifiers grpc-go reads (a path_separated_prefix is a regex for it)",
			"\"route … has an unrecognized path specifier\": "+nack)
	}
	for _, h := range m.GetHeaders() {
		grpcHeaderMatcher(kind, name, fmt.Sprintf("%s: its header matcher of %q", where, h.GetName()), h, nack, f)
	}
	if a := r.GetRoute(); a != nil {
		switch cs := a.GetClusterSpecifier().(type) {
		case *routev3.RouteAction_Cluster, *routev3.RouteAction_ClusterSpecifierPlugin:
		case *routev3.RouteAction_WeightedClusters:
			var total uint64
			for _, w := range cs.WeightedClusters.GetClusters() {
				if w.GetWeight().GetValue() == 0 {
					continue // grpc-go skips it
				}
				total += uint64(w.GetWeight().GetValue())
				c.grpcOverrides(kind, name, fmt.Sprintf("%s: weighted cluster %q", where, w.GetName()), w.GetTypedPerFilterConfig(), f)
			}
			if total > math.MaxUint32 {
				f.fail(kind, name, where+": the weights of its weighted clusters fit 32 bits", "\"xds: total weight of clusters exceeds MaxUint32\": "+nack)
			}
			if total == 0 {
				f.fail(kind, name, where+": the weights of its weighted clusters sum to more than 0", "\"route …, has no valid cluster in WeightedCluster action\": "+nack)
			}
		default:
			return // grpc-go ignores the route (a cluster_header, say)
		}
		grpcRetry(kind, name, where, a.GetRetryPolicy(), nack, f)
	}
	c.grpcOverrides(kind, name, where, r.GetTypedPerFilterConfig(), f)
}

// grpcHeaderMatcher ports how routesProtoToSlice reads a header matcher,
// its string matchers through matcher.StringMatcherFromProto
// (internal/xds/matcher/string_matcher.go).
func grpcHeaderMatcher(kind, name, where string, h *routev3.HeaderMatcher, nack string, f *facts) {
	var sm *matcherv3.StringMatcher
	switch hs := h.GetHeaderMatchSpecifier().(type) {
	case *routev3.HeaderMatcher_SafeRegexMatch:
		grpcRegex(kind, name, where, hs.SafeRegexMatch.GetRegex(), "\"route … contains an invalid regex\": "+nack, f)
		return
	case *routev3.HeaderMatcher_RangeMatch, *routev3.HeaderMatcher_PresentMatch:
		return
	case *routev3.HeaderMatcher_ExactMatch:
		sm = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: hs.ExactMatch}}
	case *routev3.HeaderMatcher_PrefixMatch:
		sm = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: hs.PrefixMatch}}
	case *routev3.HeaderMatcher_SuffixMatch:
		sm = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: hs.SuffixMatch}}
	case *routev3.HeaderMatcher_ContainsMatch:
		sm = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Contains{Contains: hs.ContainsMatch}}
	case *routev3.HeaderMatcher_StringMatch:
		if hs.StringMatch == nil {
			f.fail(kind, name, where+" has a string matcher", "\"route … has an empty string matcher\": "+nack)
			return
		}
		sm = hs.StringMatch
	default:
		f.fail(kind, name, where+" says how it matches (exact, safe_regex, range, present, prefix, suffix, contains or string_match): grpc-go reads no matcher without one as present",
			"\"route … has an unrecognized header matcher\": "+nack)
		return
	}
	invalid := "\"route … has an invalid header matcher\": " + nack
	switch p := sm.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Prefix:
		if p.Prefix == "" {
			f.fail(kind, name, where+": its prefix is not empty", "\"empty prefix is not allowed in StringMatcher\", "+invalid)
		}
	case *matcherv3.StringMatcher_Suffix:
		if p.Suffix == "" {
			f.fail(kind, name, where+": its suffix is not empty", "\"empty suffix is not allowed in StringMatcher\", "+invalid)
		}
	case *matcherv3.StringMatcher_Contains:
		if p.Contains == "" {
			f.fail(kind, name, where+": what it contains is not empty", "\"empty contains is not allowed in StringMatcher\", "+invalid)
		}
	case *matcherv3.StringMatcher_SafeRegex:
		grpcRegex(kind, name, where, p.SafeRegex.GetRegex(), "\"safe_regex matcher … is invalid\", "+invalid, f)
	case *matcherv3.StringMatcher_Exact:
	default:
		f.fail(kind, name, where+": its string matcher has a pattern", "\"unrecognized string matcher\", "+invalid)
	}
}

// grpcRegex checks a regex as grpc-go compiles it: with Go's regexp,
// anchored (matcher.CompileSafeRegex).
func grpcRegex(kind, name, where, re, nack string, f *facts) {
	if _, err := regexp.Compile(fmt.Sprintf("^(?:%s)$", re)); err != nil {
		f.fail(kind, name, fmt.Sprintf("%s: regex %q compiles with Go's regexp: %v", where, re, err), nack)
	}
}

// grpcRetry ports generateRetryConfig (unmarshal_rds.go), which reads a
// route's and a virtual host's retry policy.
func grpcRetry(kind, name, where string, rp *routev3.RetryPolicy, nack string, f *facts) {
	if rp == nil {
		return
	}
	if n := rp.GetNumRetries(); n != nil && n.GetValue() < 1 {
		f.fail(kind, name, where+": its retry policy's num_retries is 1 or more (unset is 1; no retries is no policy)",
			fmt.Sprintf("\"retry_policy.num_retries = %d; must be >= 1\": %s", n.GetValue(), nack))
	}
	b := rp.GetRetryBackOff()
	if b == nil {
		return
	}
	if d := b.GetBaseInterval().AsDuration(); d <= 0 {
		f.fail(kind, name, where+": its retry back-off's base interval is above 0",
			fmt.Sprintf("\"retry_policy.base_interval = %s; must be > 0\": %s", d, nack))
	}
	if mx := b.GetMaxInterval(); mx != nil && mx.AsDuration() <= 0 {
		f.fail(kind, name, where+": its retry back-off's max interval is above 0",
			fmt.Sprintf("\"retry_policy.max_interval = %s; must be > 0\": %s", mx.AsDuration(), nack))
	}
}

// grpcCluster ports validateClusterAndConstructClusterUpdate
// (unmarshal_cds.go): the load balancing policy, the transport socket,
// outlier detection and the cluster's type.
func grpcCluster(cl *clusterv3.Cluster, f *facts) {
	name := cl.GetName()
	nack := "the cluster is NACKed (" + grpcCDS + ")"
	// lb_policy is read first, whether or not load_balancing_policy
	// replaces it.
	switch cl.GetLbPolicy() {
	case clusterv3.Cluster_ROUND_ROBIN:
	case clusterv3.Cluster_RING_HASH:
		if hf := cl.GetRingHashLbConfig().GetHashFunction(); hf != clusterv3.Cluster_RingHashLbConfig_XX_HASH {
			f.fail("cluster", name, "a RING_HASH cluster hashes with XX_HASH",
				fmt.Sprintf("\"unsupported ring_hash hash function %s in response\": %s", hf, nack))
		}
	case clusterv3.Cluster_LEAST_REQUEST:
		if cc := cl.GetLeastRequestLbConfig().GetChoiceCount(); cc != nil && cc.GetValue() < 2 {
			f.fail("cluster", name, "a LEAST_REQUEST cluster's choice_count is 2 or more (unset is 2)",
				fmt.Sprintf("\"Cluster_LeastRequestLbConfig.ChoiceCount must be >= 2, got: %d\": %s", cc.GetValue(), nack))
		}
	default:
		f.fail("cluster", name, "a cluster's lb_policy is ROUND_ROBIN, RING_HASH or LEAST_REQUEST (also when load_balancing_policy is set)",
			fmt.Sprintf("\"unexpected lbPolicy %s in response\": %s", cl.GetLbPolicy(), nack))
	}
	if lp := cl.GetLoadBalancingPolicy(); lp != nil {
		supported := false
		for _, p := range lp.GetPolicies() {
			supported = supported || grpcLBPolicies[p.GetTypedExtensionConfig().GetTypedConfig().GetTypeUrl()]
		}
		if !supported {
			f.fail("cluster", name, "a cluster's load_balancing_policy lists a policy grpc-go converts (round_robin, ring_hash, least_request, wrr_locality, client_side_weighted_round_robin, pick_first or a TypedStruct); the policy's own config is not checked here",
				"\"no supported policy found in policy list\" (internal/xds/xdsclient/xdslbregistry/xdslbregistry.go, ConvertToServiceConfig): "+nack)
		}
	}
	if len(cl.GetTransportSocketMatches()) != 0 {
		f.fail("cluster", name, "a cluster has no transport socket matches", "\"unsupported transport_socket_matches field is non-empty\": "+nack)
	}
	if ts := cl.GetTransportSocket(); ts != nil {
		if ts.GetName() != "envoy.transport_sockets.tls" {
			f.fail("cluster", name, "a cluster's transport socket is named envoy.transport_sockets.tls",
				fmt.Sprintf("\"transport_socket field has unexpected name: %s\": %s", ts.GetName(), nack))
		} else if ts.GetTypedConfig().GetTypeUrl() != upstreamTLSURL {
			f.fail("cluster", name, "a cluster's transport socket is an UpstreamTlsContext",
				fmt.Sprintf("\"transport_socket missing typed_config or wrong type_url: %q\": %s", ts.GetTypedConfig().GetTypeUrl(), nack))
		}
	}
	grpcOutlierDetection(name, cl.GetOutlierDetection(), nack, f)
	if lrs := cl.GetLrsServer(); lrs != nil && lrs.GetSelf() == nil {
		f.fail("cluster", name, "a cluster reports load to its xDS server (lrs_server is self)", "\"unsupported config_source_specifier … in lrs_server field\": "+nack)
	}
	switch {
	case cl.GetType() == clusterv3.Cluster_EDS && cl.GetClusterType() == nil:
		if cs := cl.GetEdsClusterConfig().GetEdsConfig(); cs.GetAds() == nil && cs.GetSelf() == nil {
			f.fail("cluster", name, "an EDS cluster loads its endpoints over ADS", "\"CDS's EDS config source is not ADS or Self\": "+nack)
		}
	case cl.GetType() == clusterv3.Cluster_LOGICAL_DNS && cl.GetClusterType() == nil:
	case cl.GetClusterType().GetName() == "envoy.clusters.aggregate":
	default:
		f.fail("cluster", name, "a cluster is an EDS, LOGICAL_DNS or aggregate one", "\"unsupported cluster type\": "+nack)
	}
}

// grpcOutlierDetection ports outlierConfigFromCluster (unmarshal_cds.go,
// after gRFC A50): durations valid and not negative, percentages at most 100.
func grpcOutlierDetection(name string, od *clusterv3.OutlierDetection, nack string, f *facts) {
	if od == nil {
		return
	}
	for _, d := range []struct {
		field string
		d     *durationpb.Duration
	}{{"interval", od.GetInterval()}, {"base_ejection_time", od.GetBaseEjectionTime()}, {"max_ejection_time", od.GetMaxEjectionTime()}} {
		if d.d != nil && (d.d.CheckValid() != nil || d.d.AsDuration() < 0) {
			f.fail("cluster", name, fmt.Sprintf("its outlier detection's %s is a valid duration, not negative", d.field),
				fmt.Sprintf("\"outlier_detection.%s … must be >= 0\": %s", d.field, nack))
		}
	}
	for _, p := range []struct {
		field string
		v     *wrapperspb.UInt32Value
	}{
		{"max_ejection_percent", od.GetMaxEjectionPercent()},
		{"enforcing_success_rate", od.GetEnforcingSuccessRate()},
		{"failure_percentage_threshold", od.GetFailurePercentageThreshold()},
		{"enforcing_failure_percentage", od.GetEnforcingFailurePercentage()},
	} {
		if p.v != nil && p.v.GetValue() > 100 {
			f.fail("cluster", name, fmt.Sprintf("its outlier detection's %s is at most 100", p.field),
				fmt.Sprintf("\"outlier_detection.%s = %d; must be <= 100\": %s", p.field, p.v.GetValue(), nack))
		}
	}
}
