package translate

import (
	"cmp"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	commonfaultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	httplocalrlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	netlocalrlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/local_ratelimit/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// The translation of a service port's resilience (mesh.Resilience): the
// caller's cluster (circuit breakers, outlier detection, retry budget, load
// balancing, connection settings), the caller's route (the hash of ring
// hash), the caller's connection manager (faults), and the destination's
// inbound chains (local rate limits).

// resilientCluster sets the resilience r on the cluster c of a service
// port of protocol proto; grpc says that a proxyless gRPC client reads it.
func (t *translator) resilientCluster(c *clusterv3.Cluster, r *meshv1alpha1.Resilience, proto mesh.Protocol, grpc bool) {
	if r == nil {
		return
	}
	th := &clusterv3.CircuitBreakers_Thresholds{}
	set := false
	if cl := r.Connections; cl != nil {
		th.MaxConnections, set = u32(cl.MaxConnections, set)
		th.MaxPendingRequests, set = u32(cl.MaxPendingRequests, set)
		th.MaxRequests, set = u32(cl.MaxRequests, set)
		if d := cl.ConnectTimeout.Get(); d > 0 {
			c.ConnectTimeout = durationpb.New(d)
		}
		if ka := cl.TCPKeepalive; ka != nil && !grpc {
			k := &corev3.TcpKeepalive{}
			if d := ka.Time.Get(); d > 0 {
				k.KeepaliveTime = wrapperspb.UInt32(seconds(d))
			}
			if d := ka.Interval.Get(); d > 0 {
				k.KeepaliveInterval = wrapperspb.UInt32(seconds(d))
			}
			if ka.Probes != nil {
				k.KeepaliveProbes = wrapperspb.UInt32(uint32(*ka.Probes))
			}
			c.UpstreamConnectionOptions = &clusterv3.UpstreamConnectionOptions{TcpKeepalive: k}
		}
		if !grpc && proto.IsHTTP() && (cl.IdleTimeout != "" || cl.MaxRequestsPerConnection != nil) {
			common := &corev3.HttpProtocolOptions{}
			if d := cl.IdleTimeout.Get(); d > 0 {
				common.IdleTimeout = durationpb.New(d)
			}
			if cl.MaxRequestsPerConnection != nil {
				common.MaxRequestsPerConnection = wrapperspb.UInt32(uint32(*cl.MaxRequestsPerConnection))
			}
			opts := httpOptions(proto)
			opts.CommonHttpProtocolOptions = common
			c.TypedExtensionProtocolOptions = t.protocolOptions(opts)
		}
	}
	if rb := r.RetryBudget; rb != nil && !grpc {
		budget := &clusterv3.CircuitBreakers_Thresholds_RetryBudget{BudgetPercent: &typev3.Percent{Value: float64(rb.Percent)}}
		if rb.MinRetryConcurrency != nil {
			budget.MinRetryConcurrency = wrapperspb.UInt32(uint32(*rb.MinRetryConcurrency))
		}
		th.RetryBudget, set = budget, true
	}
	if set {
		c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{th}}
	}
	if od := r.OutlierDetection; od != nil {
		c.OutlierDetection = outlierDetection(od)
	}
	if lb := r.LoadBalancer; lb != nil {
		switch lb.Algorithm {
		case meshv1alpha1.LoadBalancerLeastRequest:
			c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
		case meshv1alpha1.LoadBalancerRingHash:
			c.LbPolicy = clusterv3.Cluster_RING_HASH
			// gRPC hashes with xxHash only; Envoy's default is the same.
			c.LbConfig = &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: &clusterv3.Cluster_RingHashLbConfig{HashFunction: clusterv3.Cluster_RingHashLbConfig_XX_HASH}}
		case meshv1alpha1.LoadBalancerRandom:
			if !grpc {
				c.LbPolicy = clusterv3.Cluster_RANDOM
			}
		}
	}
}

// outlierDetection ejects endpoints on consecutive failures (Envoy's
// consecutive 5xx, which counts connection failures too) and, when asked,
// on a failure percentage, which gRPC reads as well (it ignores the
// consecutive counts).
func outlierDetection(od *meshv1alpha1.OutlierDetection) *clusterv3.OutlierDetection {
	o := &clusterv3.OutlierDetection{}
	if od.ConsecutiveErrors != nil {
		o.Consecutive_5Xx = wrapperspb.UInt32(uint32(*od.ConsecutiveErrors))
	}
	if od.FailurePercentage != nil {
		o.FailurePercentageThreshold = wrapperspb.UInt32(uint32(*od.FailurePercentage))
		// Envoy enforces a failure percentage 0% of the time by default.
		o.EnforcingFailurePercentage = wrapperspb.UInt32(100)
		o.FailurePercentageMinimumHosts = wrapperspb.UInt32(1)
		if od.MinimumRequests != nil {
			o.FailurePercentageRequestVolume = wrapperspb.UInt32(uint32(*od.MinimumRequests))
		}
	}
	if d := od.Interval.Get(); d > 0 {
		o.Interval = durationpb.New(d)
	}
	if d := od.BaseEjectionTime.Get(); d > 0 {
		o.BaseEjectionTime = durationpb.New(d)
	}
	if od.MaxEjectionPercent != nil {
		o.MaxEjectionPercent = wrapperspb.UInt32(uint32(*od.MaxEjectionPercent))
	}
	return o
}

// hashPolicy is what a route to a ring-hashed destination hashes.
func hashPolicy(r *meshv1alpha1.Resilience) []*routev3.RouteAction_HashPolicy {
	if r == nil || r.LoadBalancer == nil || r.LoadBalancer.HashHeader == "" {
		return nil
	}
	return []*routev3.RouteAction_HashPolicy{{PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{
		Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: r.LoadBalancer.HashHeader}}}}
}

// faultFilter is the HTTP filter injecting r's faults into a caller's
// requests to the destination; nil when it injects none.
func (t *translator) faultFilter(r *meshv1alpha1.Resilience) *hcmv3.HttpFilter {
	if r == nil || r.Fault == nil {
		return nil
	}
	return &hcmv3.HttpFilter{Name: faultFilterName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: t.any(faultConfig(r.Fault))}}
}

const faultFilterName = "envoy.filters.http.fault"

// grpcFaults injects r's faults for a gRPC client, which applies a fault
// filter's faults to every call, whatever its headers: with headers, the
// filter injects nothing, and a copy of each route, before it, matching
// the headers too, injects the faults (per-route filter config, which gRPC
// reads).
func (t *translator) grpcFaults(r *meshv1alpha1.Resilience, rc *routev3.RouteConfiguration, s mesh.ServiceKey, port int32) *hcmv3.HttpFilter {
	if r == nil || r.Fault == nil || len(r.Fault.Headers) == 0 {
		return t.routeFaultFilter(r, s, port)
	}
	cfg := faultConfig(r.Fault)
	selected := cfg.Headers
	cfg.Headers = nil
	for _, vh := range rc.GetVirtualHosts() {
		var routes []*routev3.Route
		for _, rt := range vh.Routes {
			if _, own := rt.TypedPerFilterConfig[faultFilterName]; own {
				routes = append(routes, rt) // the rule's fault replaces the Service's
				continue
			}
			faulty := proto.Clone(rt).(*routev3.Route)
			faulty.Name = cmp.Or(rt.Name, "default") + "|fault"
			faulty.Match.Headers = append(faulty.Match.Headers, selected...)
			faulty.TypedPerFilterConfig = map[string]*anypb.Any{faultFilterName: t.any(cfg)}
			routes = append(routes, faulty, rt)
		}
		vh.Routes = routes
	}
	return &hcmv3.HttpFilter{Name: faultFilterName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: t.any(&faultv3.HTTPFault{})}}
}

// routeFault is route r injecting f (a rule's fault, from the
// ResiliencePolicy its ExtensionRef filter names) as per-route config of
// the fault filter, which replaces the Service's fault there. gRPC applies
// it whatever the headers, so for gRPC a fault selected by headers is a
// copy of r, before it, that also matches them, and r itself injects none.
func (t *translator) routeFault(r *routev3.Route, f *meshv1alpha1.Fault, grpc bool) []*routev3.Route {
	if f == nil {
		return []*routev3.Route{r}
	}
	cfg := faultConfig(f)
	if !grpc || len(cfg.Headers) == 0 {
		r.TypedPerFilterConfig = map[string]*anypb.Any{faultFilterName: t.any(cfg)}
		return []*routev3.Route{r}
	}
	faulty := proto.Clone(r).(*routev3.Route)
	faulty.Name = cmp.Or(r.Name, "default") + "|fault"
	faulty.Match.Headers = append(faulty.Match.Headers, cfg.Headers...)
	cfg.Headers = nil
	faulty.TypedPerFilterConfig = map[string]*anypb.Any{faultFilterName: t.any(cfg)}
	r.TypedPerFilterConfig = map[string]*anypb.Any{faultFilterName: t.any(&faultv3.HTTPFault{})}
	return []*routev3.Route{faulty, r}
}

// routeFaultFilter is the fault filter of the connection manager of a
// service port: the Service's faults, or none but what the routes' own
// per-route config injects, or no filter.
func (t *translator) routeFaultFilter(r *meshv1alpha1.Resilience, s mesh.ServiceKey, port int32) *hcmv3.HttpFilter {
	if f := t.faultFilter(r); f != nil {
		return f
	}
	if t.view.Mesh.RoutesInjectFaults(s, port) {
		return &hcmv3.HttpFilter{Name: faultFilterName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: t.any(&faultv3.HTTPFault{})}}
	}
	return nil
}

// faultConfig is the fault filter's config of faults fl.
func faultConfig(fl *meshv1alpha1.Fault) *faultv3.HTTPFault {
	f := &faultv3.HTTPFault{}
	r := &meshv1alpha1.Resilience{Fault: fl}
	if d := r.Fault.Delay; d != nil {
		f.Delay = &commonfaultv3.FaultDelay{
			FaultDelaySecifier: &commonfaultv3.FaultDelay_FixedDelay{FixedDelay: durationpb.New(d.FixedDelay.Get())},
			Percentage:         &typev3.FractionalPercent{Numerator: uint32(d.Percent), Denominator: typev3.FractionalPercent_HUNDRED},
		}
	}
	if a := r.Fault.Abort; a != nil {
		f.Abort = &faultv3.FaultAbort{Percentage: &typev3.FractionalPercent{Numerator: uint32(a.Percent), Denominator: typev3.FractionalPercent_HUNDRED}}
		if a.HTTPStatus != nil {
			f.Abort.ErrorType = &faultv3.FaultAbort_HttpStatus{HttpStatus: uint32(*a.HTTPStatus)}
		} else if a.GRPCStatus != nil {
			f.Abort.ErrorType = &faultv3.FaultAbort_GrpcStatus{GrpcStatus: uint32(*a.GRPCStatus)}
		}
	}
	for _, h := range r.Fault.Headers {
		f.Headers = append(f.Headers, &routev3.HeaderMatcher{Name: strings.ToLower(string(h.Name)), HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: exact(h.Value)}})
	}
	return f
}

// localRateLimit are the destination's rate limits of a chain: a network
// filter counting connections, and an HTTP filter counting requests.
func (t *translator) connectionRateLimit(statPrefix string, r *meshv1alpha1.Resilience) *listenerv3.Filter {
	if r == nil || r.RateLimit == nil || r.RateLimit.Connections == nil {
		return nil
	}
	return &listenerv3.Filter{Name: "envoy.filters.network.local_ratelimit", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: t.any(&netlocalrlv3.LocalRateLimit{
		StatPrefix: statPrefix, TokenBucket: tokenBucket(r.RateLimit.Connections),
	})}}
}

func (t *translator) requestRateLimit(statPrefix string, r *meshv1alpha1.Resilience) *hcmv3.HttpFilter {
	if r == nil || r.RateLimit == nil || r.RateLimit.Requests == nil {
		return nil
	}
	always := &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{Numerator: 100, Denominator: typev3.FractionalPercent_HUNDRED}}
	return &hcmv3.HttpFilter{Name: "envoy.filters.http.local_ratelimit", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: t.any(&httplocalrlv3.LocalRateLimit{
		StatPrefix: statPrefix, TokenBucket: tokenBucket(r.RateLimit.Requests),
		// Without these the filter counts nothing and enforces nothing.
		FilterEnabled: always, FilterEnforced: always,
	})}}
}

// tokenBucket is a bucket of b: Envoy refuses a fill interval under 50 ms.
func tokenBucket(b *meshv1alpha1.RateLimitBucket) *typev3.TokenBucket {
	interval := max(b.Interval.Get(), 50*time.Millisecond)
	if b.Interval == "" {
		interval = time.Second
	}
	maxTokens := uint32(b.Tokens)
	if b.Burst != nil {
		maxTokens = uint32(*b.Burst)
	}
	return &typev3.TokenBucket{MaxTokens: max(maxTokens, uint32(b.Tokens)), TokensPerFill: wrapperspb.UInt32(uint32(b.Tokens)), FillInterval: durationpb.New(interval)}
}

func u32(v *int32, set bool) (*wrapperspb.UInt32Value, bool) {
	if v == nil {
		return nil, set
	}
	return wrapperspb.UInt32(uint32(*v)), true
}

// seconds is d in whole seconds, at least one: TCP keepalive counts in them.
func seconds(d time.Duration) uint32 { return uint32(max(d/time.Second, 1)) }

// httpOptions are the upstream HTTP protocol of a service port's cluster:
// HTTP/2 for grpc and http2 ports, HTTP/1.1 for the others.
func httpOptions(proto mesh.Protocol) *httpv3.HttpProtocolOptions {
	o := &httpv3.HttpProtocolOptions_ExplicitHttpConfig{ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{HttpProtocolOptions: &corev3.Http1ProtocolOptions{}}}
	if proto == mesh.ProtocolGRPC || proto == mesh.ProtocolHTTP2 {
		o.ProtocolConfig = &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}}
	}
	return &httpv3.HttpProtocolOptions{UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: o}}
}
