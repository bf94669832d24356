package envoyrules_test

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	gcpauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/gcp_authn/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	maglevv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/maglev/v3"
	roundrobinv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/round_robin/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/open-service-mesh/osm-operator/xds/envoyrules"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// grpcBase is what the translator gives the bookstore's bookbuyer as a
// proxyless gRPC client (an API listener per service port it may call,
// each with an inline route configuration, and an EDS cluster), and a gRPC
// server's listener, whose connection manager grpc-go reads alike.
func grpcBase(t *testing.T) *envoyrules.Resources {
	t.Helper()
	data, err := os.ReadFile("../translate/testdata/in/bookstore.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in, err := meshtest.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := mesh.Build(in)
	g := mesh.Group{Kind: mesh.ProxyGRPC, Identity: mesh.Identity{Namespace: "bookbuyer", ServiceAccount: "bookbuyer"}}
	r, err := translate.Translate(m.View(g), &translate.Certificates{CertChain: []byte("c"), PrivateKey: []byte("k"), TrustBundle: []byte("ca")})
	if err != nil {
		t.Fatal(err)
	}
	out := clone(r)
	out.Listeners = append(out.Listeners, grpcServerListener([]*hcmv3.HttpFilter{httpFilter("rbac", &rbachttpv3.RBAC{}), httpFilter("router", &routerv3.Router{})}))
	return out
}

// grpcServerListener is a gRPC server's listener of one chain whose
// connection manager has filters and hands every call to the application.
func grpcServerListener(filters []*hcmv3.HttpFilter) *listenerv3.Listener {
	h := &hcmv3.HttpConnectionManager{HttpFilters: filters, RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
		Name: "server", VirtualHosts: []*routev3.VirtualHost{{Name: "server", Domains: []string{"*"}, Routes: []*routev3.Route{{
			Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			Action: &routev3.Route_NonForwardingAction{NonForwardingAction: &routev3.NonForwardingAction{}},
		}}}},
	}}}
	return &listenerv3.Listener{
		Name:    "grpc/server?xds.resource.listening_address=0.0.0.0:50051",
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: "0.0.0.0", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 50051}}}},
		FilterChains: []*listenerv3.FilterChain{{Name: "server", Filters: []*listenerv3.Filter{{
			Name: "envoy.filters.network.http_connection_manager", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(h)},
		}}}},
	}
}

func httpFilter(name string, config proto.Message) *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(config)}}
}

// apiHCM edits the connection manager of the client's first API listener.
func apiHCM(r *envoyrules.Resources, edit func(*hcmv3.HttpConnectionManager)) {
	for _, l := range r.Listeners {
		if al := l.GetApiListener(); al != nil {
			h := unpack(al.GetApiListener(), &hcmv3.HttpConnectionManager{})
			edit(h)
			al.ApiListener = mustAny(h)
			return
		}
	}
	panic("no API listener")
}

func apiRoute(r *envoyrules.Resources, edit func(*routev3.RouteConfiguration)) {
	apiHCM(r, func(h *hcmv3.HttpConnectionManager) { edit(h.GetRouteConfig()) })
}

func apiFirstRoute(r *envoyrules.Resources, edit func(*routev3.Route)) {
	apiRoute(r, func(rc *routev3.RouteConfiguration) { edit(rc.VirtualHosts[0].Routes[0]) })
}

// apiFilters sets the HTTP filters of the client's first API listener.
func apiFilters(r *envoyrules.Resources, filters ...*hcmv3.HttpFilter) {
	apiHCM(r, func(h *hcmv3.HttpConnectionManager) { h.HttpFilters = filters })
}

func optional(f *hcmv3.HttpFilter) *hcmv3.HttpFilter {
	f.IsOptional = true
	return f
}

func weightedTo(r *envoyrules.Resources, weights ...uint32) *routev3.RouteAction_WeightedClusters {
	var cws []*routev3.WeightedCluster_ClusterWeight
	for i, w := range weights {
		cws = append(cws, &routev3.WeightedCluster_ClusterWeight{Name: r.Clusters[i%len(r.Clusters)].GetName(), Weight: wrapperspb.UInt32(w)})
	}
	return weighted(cws...)
}

func grpcCluster(r *envoyrules.Resources) *clusterv3.Cluster { return r.Clusters[0] }

func lbPolicy(m proto.Message) *clusterv3.LoadBalancingPolicy {
	return &clusterv3.LoadBalancingPolicy{Policies: []*clusterv3.LoadBalancingPolicy_Policy{{
		TypedExtensionConfig: &corev3.TypedExtensionConfig{Name: "lb", TypedConfig: mustAny(m)}}}}
}

// TestGRPCRules: for each grpc-go rule, a config that breaks it (the
// violation names the rule) and one that keeps it, both from the
// translator's output for a proxyless client with one change.
func TestGRPCRules(t *testing.T) {
	if err := envoyrules.CheckGRPC(grpcBase(t)); err != nil {
		t.Fatalf("the translator's gRPC config breaks a rule: %v", err)
	}
	type edit func(*envoyrules.Resources)
	cases := []struct {
		rule      string
		bad, good edit
		want      string
	}{
		{rule: "no path_separated_prefix in an inline route configuration",
			bad: func(r *envoyrules.Resources) {
				apiFirstRoute(r, func(rt *routev3.Route) {
					rt.Match.PathSpecifier = &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: "/a"}
				})
			},
			good: func(r *envoyrules.Resources) {
				apiFirstRoute(r, func(rt *routev3.Route) {
					rt.Match.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "/a(/.*)?"}}
				})
			},
			want: `"failed to parse inline RDS resp": the listener is NACKed`},
		{rule: "no path_separated_prefix in an RDS route configuration",
			bad: func(r *envoyrules.Resources) {
				r.Routes = append(r.Routes, &routev3.RouteConfiguration{Name: "rds", VirtualHosts: []*routev3.VirtualHost{{Name: "rds", Domains: []string{"*"},
					Routes: []*routev3.Route{{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: "/a"}}}}}}})
			},
			good: func(r *envoyrules.Resources) {
				r.Routes = append(r.Routes, &routev3.RouteConfiguration{Name: "rds", VirtualHosts: []*routev3.VirtualHost{{Name: "rds", Domains: []string{"*"},
					Routes: []*routev3.Route{{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/a"}}}}}}})
			},
			want: "matches the path by prefix, path or safe_regex"},
		{rule: "a route with query parameters is ignored, its path specifier too",
			bad: func(r *envoyrules.Resources) {
				apiFirstRoute(r, func(rt *routev3.Route) { rt.Match.PathSpecifier = &routev3.RouteMatch_PathMatchPolicy{} })
			},
			good: func(r *envoyrules.Resources) {
				apiFirstRoute(r, func(rt *routev3.Route) {
					rt.Match.PathSpecifier = &routev3.RouteMatch_PathMatchPolicy{}
					rt.Match.QueryParameters = []*routev3.QueryParameterMatcher{{Name: "q", QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_PresentMatch{PresentMatch: true}}}
				})
			},
			want: "has an unrecognized path specifier"},
		{rule: "a route has a match",
			bad:  func(r *envoyrules.Resources) { apiFirstRoute(r, func(rt *routev3.Route) { rt.Match = nil }) },
			good: func(r *envoyrules.Resources) {},
			want: "doesn't have a match"},
		{rule: "path regexes compile with Go's regexp",
			bad: func(r *envoyrules.Resources) {
				apiFirstRoute(r, func(rt *routev3.Route) {
					rt.Match.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "/a(/.*"}}
				})
			},
			good: func(r *envoyrules.Resources) {},
			want: `regex "/a(/.*" compiles with Go's regexp`},
		{rule: "a header matcher says how it matches",
			bad: func(r *envoyrules.Resources) {
				apiFirstRoute(r, func(rt *routev3.Route) { rt.Match.Headers = []*routev3.HeaderMatcher{{Name: "x-user"}} })
			},
			good: func(r *envoyrules.Resources) {
				apiFirstRoute(r, func(rt *routev3.Route) {
					rt.Match.Headers = []*routev3.HeaderMatcher{{Name: "x-user", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}}}
				})
			},
			want: "has an unrecognized header matcher"},
		{rule: "a header matcher's prefix is not empty",
			bad: func(r *envoyrules.Resources) {
				apiFirstRoute(r, func(rt *routev3.Route) {
					rt.Match.Headers = []*routev3.HeaderMatcher{{Name: "x-user", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{}}}}}
				})
			},
			good: func(r *envoyrules.Resources) {
				apiFirstRoute(r, func(rt *routev3.Route) {
					rt.Match.Headers = []*routev3.HeaderMatcher{{Name: "x-user", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "a"}}}}}
				})
			},
			want: "empty prefix is not allowed in StringMatcher"},
		{rule: "a retry policy retries",
			bad: func(r *envoyrules.Resources) {
				apiFirstRoute(r, func(rt *routev3.Route) {
					rt.GetRoute().RetryPolicy = &routev3.RetryPolicy{RetryOn: "unavailable", NumRetries: wrapperspb.UInt32(0)}
				})
			},
			good: func(r *envoyrules.Resources) {
				apiFirstRoute(r, func(rt *routev3.Route) {
					rt.GetRoute().RetryPolicy = &routev3.RetryPolicy{RetryOn: "unavailable", NumRetries: wrapperspb.UInt32(1)}
				})
			},
			want: "retry_policy.num_retries = 0; must be >= 1"},
		{rule: "a virtual host's retry back-off has a base interval",
			bad: func(r *envoyrules.Resources) {
				apiRoute(r, func(rc *routev3.RouteConfiguration) {
					rc.VirtualHosts[0].RetryPolicy = &routev3.RetryPolicy{RetryOn: "unavailable", RetryBackOff: &routev3.RetryPolicy_RetryBackOff{}}
				})
			},
			good: func(r *envoyrules.Resources) {
				apiRoute(r, func(rc *routev3.RouteConfiguration) {
					rc.VirtualHosts[0].RetryPolicy = &routev3.RetryPolicy{RetryOn: "unavailable", RetryBackOff: &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(25 * time.Millisecond)}}
				})
			},
			want: "retry_policy.base_interval = 0s; must be > 0"},
		{rule: "a retry back-off's max interval is above 0",
			bad: func(r *envoyrules.Resources) {
				apiFirstRoute(r, func(rt *routev3.Route) {
					rt.GetRoute().RetryPolicy = &routev3.RetryPolicy{RetryOn: "unavailable", RetryBackOff: &routev3.RetryPolicy_RetryBackOff{
						BaseInterval: durationpb.New(25 * time.Millisecond), MaxInterval: durationpb.New(0)}}
				})
			},
			good: func(r *envoyrules.Resources) { // grpc-go does not compare them
				apiFirstRoute(r, func(rt *routev3.Route) {
					rt.GetRoute().RetryPolicy = &routev3.RetryPolicy{RetryOn: "unavailable", RetryBackOff: &routev3.RetryPolicy_RetryBackOff{
						BaseInterval: durationpb.New(25 * time.Millisecond), MaxInterval: durationpb.New(time.Millisecond)}}
				})
			},
			want: "retry_policy.max_interval = 0s; must be > 0"},
		{rule: "weighted clusters' weights sum above 0",
			bad: func(r *envoyrules.Resources) {
				apiFirstRoute(r, func(rt *routev3.Route) { rt.GetRoute().ClusterSpecifier = weightedTo(r, 0, 0) })
			},
			good: func(r *envoyrules.Resources) {
				apiFirstRoute(r, func(rt *routev3.Route) { rt.GetRoute().ClusterSpecifier = weightedTo(r, 0, 1) })
			},
			want: "has no valid cluster in WeightedCluster action"},
		{rule: "weighted clusters' weights fit 32 bits",
			bad: func(r *envoyrules.Resources) {
				apiFirstRoute(r, func(rt *routev3.Route) { rt.GetRoute().ClusterSpecifier = weightedTo(r, math.MaxUint32, 1) })
			},
			good: func(r *envoyrules.Resources) {
				apiFirstRoute(r, func(rt *routev3.Route) { rt.GetRoute().ClusterSpecifier = weightedTo(r, math.MaxUint32-1, 1) })
			},
			want: "xds: total weight of clusters exceeds MaxUint32"},
		{rule: "a client has HTTP filters",
			bad:  func(r *envoyrules.Resources) { apiFilters(r) },
			good: func(r *envoyrules.Resources) { apiFilters(r, httpFilter("router", &routerv3.Router{})) },
			want: "http filters list is empty"},
		{rule: "the router is the last HTTP filter",
			bad: func(r *envoyrules.Resources) {
				apiFilters(r, httpFilter("router", &routerv3.Router{}), httpFilter("fault", &faultv3.HTTPFault{}))
			},
			good: func(r *envoyrules.Resources) {
				apiFilters(r, httpFilter("fault", &faultv3.HTTPFault{}), httpFilter("router", &routerv3.Router{}))
			},
			want: `http filter "router" is a terminal filter but it is not last in the filter chain`},
		{rule: "HTTP filters are named once",
			bad: func(r *envoyrules.Resources) {
				apiFilters(r, httpFilter("f", &faultv3.HTTPFault{}), httpFilter("f", &routerv3.Router{}))
			},
			good: func(r *envoyrules.Resources) {},
			want: `duplicate filter name "f"`},
		{rule: "a client runs no RBAC filter unless optional",
			bad: func(r *envoyrules.Resources) {
				apiFilters(r, httpFilter("rbac", &rbachttpv3.RBAC{}), httpFilter("router", &routerv3.Router{}))
			},
			good: func(r *envoyrules.Resources) {
				apiFilters(r, optional(httpFilter("rbac", &rbachttpv3.RBAC{})), httpFilter("router", &routerv3.Router{}))
			},
			want: `HTTP filter "rbac" not supported client-side`},
		{rule: "a server runs no fault filter unless optional",
			bad: func(r *envoyrules.Resources) {
				r.Listeners[len(r.Listeners)-1] = grpcServerListener([]*hcmv3.HttpFilter{httpFilter("fault", &faultv3.HTTPFault{}), httpFilter("router", &routerv3.Router{})})
			},
			good: func(r *envoyrules.Resources) {
				r.Listeners[len(r.Listeners)-1] = grpcServerListener([]*hcmv3.HttpFilter{optional(httpFilter("fault", &faultv3.HTTPFault{})), httpFilter("router", &routerv3.Router{})})
			},
			want: `HTTP filter "fault" not supported server-side`},
		{rule: "grpc-go v1.85.0 has no gcp_authn filter",
			bad: func(r *envoyrules.Resources) {
				apiFilters(r, httpFilter("gcp_authn", &gcpauthnv3.GcpAuthnFilterConfig{}), httpFilter("router", &routerv3.Router{}))
			},
			good: func(r *envoyrules.Resources) {
				apiFilters(r, optional(httpFilter("gcp_authn", &gcpauthnv3.GcpAuthnFilterConfig{})), httpFilter("router", &routerv3.Router{}))
			},
			want: `no filter implementation found for "type.googleapis.com/envoy.extensions.filters.http.gcp_authn.v3.GcpAuthnFilterConfig"`},
		{rule: "xff_num_trusted_hops is 0",
			bad: func(r *envoyrules.Resources) {
				apiHCM(r, func(h *hcmv3.HttpConnectionManager) { h.XffNumTrustedHops = 1 })
			},
			good: func(r *envoyrules.Resources) {},
			want: "xff_num_trusted_hops must be unset or zero"},
		{rule: "an RDS connection manager loads over ADS",
			bad: func(r *envoyrules.Resources) {
				apiHCM(r, func(h *hcmv3.HttpConnectionManager) {
					h.RouteSpecifier = &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: "rds", ConfigSource: &corev3.ConfigSource{}}}
				})
			},
			good: func(r *envoyrules.Resources) {
				apiHCM(r, func(h *hcmv3.HttpConnectionManager) {
					h.RouteSpecifier = &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: "rds", ConfigSource: &corev3.ConfigSource{
						ConfigSourceSpecifier: &corev3.ConfigSource_Self{Self: &corev3.SelfConfigSource{}}}}}
				})
			},
			want: "LDS's RDS configSource is not ADS or Self"},
		{rule: "an API listener holds a connection manager",
			bad: func(r *envoyrules.Resources) {
				r.Listeners[0].ApiListener.ApiListener = mustAny(&tcpproxyv3.TcpProxy{StatPrefix: "t"})
			},
			good: func(r *envoyrules.Resources) {},
			want: "unexpected http connection manager resource type"},
		{rule: "per-filter configs are of filters grpc-go has, or optional",
			bad: func(r *envoyrules.Resources) {
				apiFirstRoute(r, func(rt *routev3.Route) {
					rt.TypedPerFilterConfig = map[string]*anypb.Any{"envoy.filters.http.cors": mustAny(&corsv3.CorsPolicy{})}
				})
			},
			good: func(r *envoyrules.Resources) {
				apiFirstRoute(r, func(rt *routev3.Route) {
					rt.TypedPerFilterConfig = map[string]*anypb.Any{"envoy.filters.http.cors": mustAny(&routev3.FilterConfig{Config: mustAny(&corsv3.CorsPolicy{}), IsOptional: true})}
				})
			},
			want: `no filter implementation found for "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy"`},
		{rule: "a virtual host's per-filter config is an override its filter parses",
			bad: func(r *envoyrules.Resources) {
				apiRoute(r, func(rc *routev3.RouteConfiguration) {
					rc.VirtualHosts[0].TypedPerFilterConfig = map[string]*anypb.Any{"router": mustAny(&routerv3.Router{}), "rbac": mustAny(&rbachttpv3.RBAC{})}
				})
			},
			good: func(r *envoyrules.Resources) {
				apiRoute(r, func(rc *routev3.RouteConfiguration) {
					rc.VirtualHosts[0].TypedPerFilterConfig = map[string]*anypb.Any{"fault": mustAny(&faultv3.HTTPFault{}), "rbac": mustAny(&rbachttpv3.RBACPerRoute{})}
				})
			},
			want: "is an override the router filter parses"},
		{rule: "a weighted cluster's per-filter config is an override its filter parses",
			bad: func(r *envoyrules.Resources) {
				apiFirstRoute(r, func(rt *routev3.Route) {
					wc := weightedTo(r, 1)
					wc.WeightedClusters.Clusters[0].TypedPerFilterConfig = map[string]*anypb.Any{"rbac": mustAny(&rbachttpv3.RBAC{})}
					rt.GetRoute().ClusterSpecifier = wc
				})
			},
			good: func(r *envoyrules.Resources) {
				apiFirstRoute(r, func(rt *routev3.Route) {
					wc := weightedTo(r, 1, 0)
					wc.WeightedClusters.Clusters[1].TypedPerFilterConfig = map[string]*anypb.Any{"rbac": mustAny(&rbachttpv3.RBAC{})} // weight 0: skipped
					rt.GetRoute().ClusterSpecifier = wc
				})
			},
			want: `is an override the rbac filter parses`},
		{rule: "lb_policy is one grpc-go has",
			bad:  func(r *envoyrules.Resources) { grpcCluster(r).LbPolicy = clusterv3.Cluster_RANDOM },
			good: func(r *envoyrules.Resources) { grpcCluster(r).LbPolicy = clusterv3.Cluster_LEAST_REQUEST },
			want: "unexpected lbPolicy RANDOM in response"},
		{rule: "lb_policy is read with a load_balancing_policy too",
			bad: func(r *envoyrules.Resources) {
				c := grpcCluster(r)
				c.LbPolicy, c.LoadBalancingPolicy = clusterv3.Cluster_MAGLEV, lbPolicy(&roundrobinv3.RoundRobin{})
			},
			good: func(r *envoyrules.Resources) {
				grpcCluster(r).LoadBalancingPolicy = lbPolicy(&roundrobinv3.RoundRobin{})
			},
			want: "unexpected lbPolicy MAGLEV in response"},
		{rule: "a load_balancing_policy lists a policy grpc-go has",
			bad:  func(r *envoyrules.Resources) { grpcCluster(r).LoadBalancingPolicy = lbPolicy(&maglevv3.Maglev{}) },
			good: func(r *envoyrules.Resources) {},
			want: "no supported policy found in policy list"},
		{rule: "RING_HASH hashes with XX_HASH",
			bad: func(r *envoyrules.Resources) {
				c := grpcCluster(r)
				c.LbPolicy = clusterv3.Cluster_RING_HASH
				c.LbConfig = &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: &clusterv3.Cluster_RingHashLbConfig{HashFunction: clusterv3.Cluster_RingHashLbConfig_MURMUR_HASH_2}}
			},
			good: func(r *envoyrules.Resources) { grpcCluster(r).LbPolicy = clusterv3.Cluster_RING_HASH },
			want: "unsupported ring_hash hash function MURMUR_HASH_2"},
		{rule: "LEAST_REQUEST chooses among 2 or more",
			bad: func(r *envoyrules.Resources) {
				c := grpcCluster(r)
				c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
				c.LbConfig = &clusterv3.Cluster_LeastRequestLbConfig_{LeastRequestLbConfig: &clusterv3.Cluster_LeastRequestLbConfig{ChoiceCount: wrapperspb.UInt32(1)}}
			},
			good: func(r *envoyrules.Resources) {
				c := grpcCluster(r)
				c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
				c.LbConfig = &clusterv3.Cluster_LeastRequestLbConfig_{LeastRequestLbConfig: &clusterv3.Cluster_LeastRequestLbConfig{ChoiceCount: wrapperspb.UInt32(2)}}
			},
			want: "Cluster_LeastRequestLbConfig.ChoiceCount must be >= 2, got: 1"},
		{rule: "outlier detection percentages are at most 100",
			bad: func(r *envoyrules.Resources) {
				grpcCluster(r).OutlierDetection = &clusterv3.OutlierDetection{MaxEjectionPercent: wrapperspb.UInt32(101)}
			},
			good: func(r *envoyrules.Resources) {
				grpcCluster(r).OutlierDetection = &clusterv3.OutlierDetection{MaxEjectionPercent: wrapperspb.UInt32(100), EnforcingFailurePercentage: wrapperspb.UInt32(100)}
			},
			want: "outlier_detection.max_ejection_percent = 101; must be <= 100"},
		{rule: "outlier detection durations are not negative",
			bad: func(r *envoyrules.Resources) {
				grpcCluster(r).OutlierDetection = &clusterv3.OutlierDetection{Interval: durationpb.New(-time.Second)}
			},
			good: func(r *envoyrules.Resources) {
				grpcCluster(r).OutlierDetection = &clusterv3.OutlierDetection{Interval: durationpb.New(0)}
			},
			want: "its outlier detection's interval is a valid duration, not negative"},
		{rule: "a cluster has no transport socket matches",
			bad: func(r *envoyrules.Resources) {
				c := grpcCluster(r)
				c.TransportSocketMatches = []*clusterv3.Cluster_TransportSocketMatch{{Name: "tls", TransportSocket: c.TransportSocket}}
			},
			good: func(r *envoyrules.Resources) {},
			want: "unsupported transport_socket_matches field is non-empty"},
		{rule: "a cluster's transport socket is named envoy.transport_sockets.tls",
			bad:  func(r *envoyrules.Resources) { grpcCluster(r).TransportSocket.Name = "tls" },
			good: func(r *envoyrules.Resources) { grpcCluster(r).TransportSocket = nil }, // plaintext
			want: "transport_socket field has unexpected name: tls"},
		{rule: "an EDS cluster loads over ADS or self",
			bad: func(r *envoyrules.Resources) {
				grpcCluster(r).EdsClusterConfig.EdsConfig = &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Path{Path: "/eds"}} //nolint:staticcheck // path is deprecated, and still loaded
			},
			good: func(r *envoyrules.Resources) {
				grpcCluster(r).EdsClusterConfig.EdsConfig = &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Self{Self: &corev3.SelfConfigSource{}}}
			},
			want: "CDS's EDS config source is not ADS or Self"},
		{rule: "a cluster is EDS, LOGICAL_DNS or aggregate",
			bad: func(r *envoyrules.Resources) {
				grpcCluster(r).ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}
			},
			good: func(r *envoyrules.Resources) {},
			want: "unsupported cluster type"},
		{rule: "load is reported to the xDS server",
			bad: func(r *envoyrules.Resources) {
				grpcCluster(r).LrsServer = &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}
			},
			good: func(r *envoyrules.Resources) {
				grpcCluster(r).LrsServer = &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Self{Self: &corev3.SelfConfigSource{}}}
			},
			want: "lrs_server is self"},
	}
	for _, c := range cases {
		t.Run(c.rule, func(t *testing.T) {
			bad := grpcBase(t)
			c.bad(bad)
			err := envoyrules.CheckGRPC(bad)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("breaking the rule gave %v, want a violation saying %q", err, c.want)
			}
			if err != nil && (!envoyrules.IsViolation(err) || !strings.HasPrefix(err.Error(), "proxyless gRPC clients would refuse")) {
				t.Errorf("%v is not a gRPC Violation", err)
			}
			good := grpcBase(t)
			c.good(good)
			if err := envoyrules.CheckGRPC(good); err != nil {
				t.Errorf("keeping the rule gave %v", err)
			}
		})
	}
}

// TestTranslatedGRPCKeepsGRPCRules: what the translator gives every
// proxyless gRPC group of its inputs breaks no grpc-go rule.
func TestTranslatedGRPCKeepsGRPCRules(t *testing.T) {
	inputs, err := filepath.Glob("../translate/testdata/in/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	groups := 0
	for _, file := range inputs {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		in, err := meshtest.Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSuffix(filepath.Base(file), ".yaml") == "cluster-domain" {
			in.ClusterDomain = "corp.example" // as the translate goldens run it
		}
		m, _ := mesh.Build(in)
		for _, g := range m.Groups {
			if g.Kind != mesh.ProxyGRPC {
				continue
			}
			groups++
			res, err := translate.Translate(m.View(g), &translate.Certificates{CertChain: []byte("c"), PrivateKey: []byte("k"), TrustBundle: []byte("ca")})
			if err != nil {
				t.Fatalf("%s, group %s: %v", file, g, err)
			}
			if err := envoyrules.CheckGRPC(res.Envoy()); err != nil {
				t.Errorf("%s, group %s: %v", file, g, err)
			}
		}
	}
	if groups == 0 {
		t.Error("no input has a proxyless gRPC group")
	}
}
