package envoyrules_test

import (
	"os"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbacnetv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	rawbufferv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/bootstrap"
	"github.com/open-service-mesh/osm-operator/xds/envoyrules"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

var opts = envoyrules.Options{MaxRegexProgramSize: envoyrules.MeshRegexLimit, Blackholes: []string{translate.BlackholeCluster}}

// base is what the translator gives the bookstore's proxies (SMI, HTTP with
// RBAC inbound, RDS and mutual TLS outbound), with plaintext from outside
// the mesh refused, so that the inbound listener has one chain per port,
// cloned: every rule holds on it.
func base(t *testing.T) *envoyrules.Resources {
	t.Helper()
	return bookstore(t, meshv1alpha1.PlaintextRefuse)
}

// basePlaintext is base with plaintext from outside the mesh accepted: a
// TLS inspector, and a mutual TLS and a plaintext chain per port.
func basePlaintext(t *testing.T) *envoyrules.Resources {
	t.Helper()
	return bookstore(t, meshv1alpha1.PlaintextAccept)
}

func bookstore(t *testing.T, plaintext meshv1alpha1.PlaintextPolicy) *envoyrules.Resources {
	t.Helper()
	data, err := os.ReadFile("../translate/testdata/in/bookstore.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in, err := meshtest.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	in.Mesh.Spec.Inbound.PlaintextFromOutsideMesh = plaintext
	if plaintext == meshv1alpha1.PlaintextAccept {
		// The setting applies in Permissive mode only.
		in.Mesh.Spec.TrafficPolicy.Mode = meshv1alpha1.TrafficPolicyPermissive
	}
	m, _ := mesh.Build(in)
	g := mesh.Group{Kind: mesh.ProxyEnvoy, Identity: mesh.Identity{Namespace: "bookstore", ServiceAccount: "bookstore"}}
	r, err := translate.Translate(m.View(g), &translate.Certificates{CertChain: []byte("c"), PrivateKey: []byte("k"), TrustBundle: []byte("ca")})
	if err != nil {
		t.Fatal(err)
	}
	out := &envoyrules.Resources{}
	for _, x := range r.Listeners {
		out.Listeners = append(out.Listeners, proto.Clone(x).(*listenerv3.Listener))
	}
	for _, x := range r.Routes {
		out.Routes = append(out.Routes, proto.Clone(x).(*routev3.RouteConfiguration))
	}
	for _, x := range r.Clusters {
		out.Clusters = append(out.Clusters, proto.Clone(x).(*clusterv3.Cluster))
	}
	for _, x := range r.Endpoints {
		out.Endpoints = append(out.Endpoints, proto.Clone(x).(*endpointv3.ClusterLoadAssignment))
	}
	for _, x := range r.Secrets {
		out.Secrets = append(out.Secrets, proto.Clone(x).(*tlsv3.Secret))
	}
	return out
}

func listener(r *envoyrules.Resources, name string) *listenerv3.Listener {
	for _, l := range r.Listeners {
		if l.GetName() == name {
			return l
		}
	}
	panic("no listener " + name)
}

func chain(l *listenerv3.Listener, name string) *listenerv3.FilterChain {
	for _, fc := range l.FilterChains {
		if fc.GetName() == name {
			return fc
		}
	}
	panic("no filter chain " + name)
}

func cluster(r *envoyrules.Resources, name string) *clusterv3.Cluster {
	for _, c := range r.Clusters {
		if c.GetName() == name {
			return c
		}
	}
	panic("no cluster " + name)
}

const uuid = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

const (
	warehouse = "out|bookwarehouse/bookwarehouse|14001"
	local     = "in|14001"
)

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err)
	}
	return a
}

func unpack[T proto.Message](a *anypb.Any, m T) T {
	if err := a.UnmarshalTo(m); err != nil {
		panic(err)
	}
	return m
}

// inboundHCM edits the inbound HTTP chain's connection manager.
func inboundHCM(r *envoyrules.Resources, edit func(*hcmv3.HttpConnectionManager)) {
	fc := listener(r, translate.InboundListener).FilterChains[0]
	h := unpack(fc.Filters[0].GetTypedConfig(), &hcmv3.HttpConnectionManager{})
	edit(h)
	fc.Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(h)}
}

func inboundRoute(r *envoyrules.Resources, edit func(*routev3.RouteConfiguration)) {
	inboundHCM(r, func(h *hcmv3.HttpConnectionManager) { edit(h.GetRouteConfig()) })
}

func tcpFilter(cluster string) *listenerv3.Filter {
	return &listenerv3.Filter{Name: "envoy.filters.network.tcp_proxy", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(
		&tcpproxyv3.TcpProxy{StatPrefix: "t", ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: cluster}})}}
}

func rbacFilter(principal *rbacv3.Principal) *listenerv3.Filter {
	return &listenerv3.Filter{Name: "envoy.filters.network.rbac", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(&rbacnetv3.RBAC{
		StatPrefix: "r",
		Rules: &rbacv3.RBAC{Policies: map[string]*rbacv3.Policy{"p": {
			Permissions: []*rbacv3.Permission{{Rule: &rbacv3.Permission_Any{Any: true}}},
			Principals:  []*rbacv3.Principal{principal},
		}}},
	})}}
}

func spiffe() *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_Authenticated_{Authenticated: &rbacv3.Principal_Authenticated{
		PrincipalName: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "spiffe://cluster.local/ns/a/sa/b"}},
	}}}
}

func upstreamTLS(c *clusterv3.Cluster, edit func(*tlsv3.UpstreamTlsContext)) {
	u := unpack(c.GetTransportSocket().GetTypedConfig(), &tlsv3.UpstreamTlsContext{})
	edit(u)
	c.TransportSocket.ConfigType = &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(u)}
}

func downstreamTLS(r *envoyrules.Resources, edit func(*tlsv3.DownstreamTlsContext)) {
	fc := listener(r, translate.InboundListener).FilterChains[0]
	d := unpack(fc.GetTransportSocket().GetTypedConfig(), &tlsv3.DownstreamTlsContext{})
	edit(d)
	fc.TransportSocket.ConfigType = &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(d)}
}

func rawBuffer() *corev3.TransportSocket {
	return &corev3.TransportSocket{Name: "envoy.transport_sockets.raw_buffer", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(&rawbufferv3.RawBuffer{})}}
}

func h2Options(c *clusterv3.Cluster, o *httpv3.HttpProtocolOptions) {
	c.TypedExtensionProtocolOptions = map[string]*anypb.Any{"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": mustAny(o)}
}

var explicitH2 = &httpv3.HttpProtocolOptions{UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
	ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}}}}}

// TestRules: for each rule, a config that breaks it (the violation names
// the rule) and one that keeps it (no violation), both from the
// translator's own output with one change.
func TestRules(t *testing.T) {
	if err := envoyrules.Check(base(t), opts); err != nil {
		t.Fatalf("the translator's config breaks a rule: %v", err)
	}
	type edit func(*envoyrules.Resources)
	cases := []struct {
		rule       string
		bad, good  edit
		want       string
		optsChange func(*envoyrules.Options)
		// plaintext runs the case on basePlaintext.
		plaintext bool
	}{
		{rule: "a chain matched as raw_buffer is plaintext", plaintext: true,
			bad: func(r *envoyrules.Resources) {
				l := listener(r, translate.InboundListener)
				chain(l, local+"|plaintext").TransportSocket = chain(l, local).TransportSocket
			},
			good: func(r *envoyrules.Resources) {
				l := listener(r, translate.InboundListener)
				chain(l, local+"|plaintext").TransportSocket = nil
			},
			want: "a chain matched as raw_buffer has no TLS transport socket"},
		{rule: "a chain matched as tls is TLS", plaintext: true,
			bad: func(r *envoyrules.Resources) {
				l := listener(r, translate.InboundListener)
				pt := chain(l, local+"|plaintext")
				pt.FilterChainMatch.TransportProtocol = "tls"
				chain(l, local).FilterChainMatch.TransportProtocol = "raw_buffer" // no duplicate
				chain(l, local).TransportSocket = nil
			},
			good: func(r *envoyrules.Resources) {},
			want: "a chain matched as tls has a TLS transport socket"},
		{rule: "the TLS inspector runs where chains need it", plaintext: true,
			bad: func(r *envoyrules.Resources) {
				l := listener(r, translate.InboundListener)
				l.ListenerFilters[len(l.ListenerFilters)-1].FilterDisabled = &listenerv3.ListenerFilterChainMatchPredicate{
					Rule: &listenerv3.ListenerFilterChainMatchPredicate_AnyMatch{AnyMatch: true}}
			},
			good: func(r *envoyrules.Resources) {
				l := listener(r, translate.InboundListener)
				l.ListenerFilters[len(l.ListenerFilters)-1].FilterDisabled = nil
			},
			want: "so the inspector runs on its port 14001"},
		{rule: "RBAC address principals are CIDRs",
			bad: func(r *envoyrules.Resources) {
				listener(r, "outbound").DefaultFilterChain.Filters = []*listenerv3.Filter{
					rbacFilter(&rbacv3.Principal{Identifier: &rbacv3.Principal_DirectRemoteIp{DirectRemoteIp: &corev3.CidrRange{AddressPrefix: "10.0.0.0", PrefixLen: wrapperspb.UInt32(33)}}}),
					tcpFilter(translate.BlackholeCluster)}
			},
			good: func(r *envoyrules.Resources) {
				listener(r, "outbound").DefaultFilterChain.Filters = []*listenerv3.Filter{
					rbacFilter(&rbacv3.Principal{Identifier: &rbacv3.Principal_DirectRemoteIp{DirectRemoteIp: &corev3.CidrRange{AddressPrefix: "10.0.0.0", PrefixLen: wrapperspb.UInt32(8)}}}),
					tcpFilter(translate.BlackholeCluster)}
			},
			want: "address principals are CIDRs"},
		{rule: "a listener has a filter chain",
			bad: func(r *envoyrules.Resources) {
				l := listener(r, "outbound")
				l.FilterChains, l.DefaultFilterChain = nil, nil
			},
			good: func(r *envoyrules.Resources) { listener(r, "outbound").FilterChains = nil }, // the default chain is left
			want: "no filter chains specified"},
		{rule: "no two chains have the same match",
			bad: func(r *envoyrules.Resources) {
				l := listener(r, "outbound")
				dup := proto.Clone(l.FilterChains[0]).(*listenerv3.FilterChain)
				dup.Name = "copy"
				l.FilterChains = append(l.FilterChains, dup)
			},
			good: func(r *envoyrules.Resources) {
				l := listener(r, "outbound")
				dup := proto.Clone(l.FilterChains[0]).(*listenerv3.FilterChain)
				dup.Name, dup.FilterChainMatch.DestinationPort = "copy", wrapperspb.UInt32(1)
				l.FilterChains = append(l.FilterChains, dup)
			},
			want: "has the same matching rules defined as"},
		{rule: "no two chains overlap",
			bad: func(r *envoyrules.Resources) {
				l := listener(r, "outbound")
				dup := proto.Clone(l.FilterChains[0]).(*listenerv3.FilterChain)
				dup.Name = "wider"
				dup.FilterChainMatch.PrefixRanges = append(dup.FilterChainMatch.PrefixRanges, &corev3.CidrRange{AddressPrefix: "10.9.9.9", PrefixLen: wrapperspb.UInt32(32)})
				l.FilterChains = append(l.FilterChains, dup)
			},
			good: func(r *envoyrules.Resources) {
				l := listener(r, "outbound")
				dup := proto.Clone(l.FilterChains[0]).(*listenerv3.FilterChain)
				dup.Name = "other"
				dup.FilterChainMatch.PrefixRanges = []*corev3.CidrRange{{AddressPrefix: "10.9.9.9", PrefixLen: wrapperspb.UInt32(32)}}
				l.FilterChains = append(l.FilterChains, dup)
			},
			want: "overlapping matching rules"},
		{rule: "TLS-field matches need a TLS inspector",
			bad: func(r *envoyrules.Resources) {
				listener(r, "inbound").FilterChains[0].FilterChainMatch.TransportProtocol = "tls"
			},
			good: func(r *envoyrules.Resources) {
				l := listener(r, "inbound")
				l.FilterChains[0].FilterChainMatch.TransportProtocol = "tls"
				l.ListenerFilters = append(l.ListenerFilters, &listenerv3.ListenerFilter{Name: "envoy.filters.listener.tls_inspector",
					ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: &anypb.Any{TypeUrl: "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}})
			},
			want: "only with a TLS inspector"},
		{rule: "application protocol matches need an inspector",
			bad: func(r *envoyrules.Resources) {
				listener(r, "inbound").FilterChains[0].FilterChainMatch.ApplicationProtocols = []string{"h2"}
			},
			good: func(r *envoyrules.Resources) {
				listener(r, "inbound").FilterChains[0].FilterChainMatch.DestinationPort = wrapperspb.UInt32(14002)
			},
			want: "only with a TLS or HTTP inspector"},
		{rule: "the last network filter is terminal",
			bad: func(r *envoyrules.Resources) {
				listener(r, "outbound").DefaultFilterChain.Filters = []*listenerv3.Filter{rbacFilter(spiffe())}
			},
			good: func(r *envoyrules.Resources) {
				listener(r, "outbound").DefaultFilterChain.Filters = []*listenerv3.Filter{tcpFilter(translate.BlackholeCluster)}
			},
			want: "is the last filter in a network filter chain"},
		{rule: "a terminal network filter is last",
			bad: func(r *envoyrules.Resources) {
				listener(r, "outbound").DefaultFilterChain.Filters = []*listenerv3.Filter{tcpFilter(translate.BlackholeCluster), tcpFilter(translate.BlackholeCluster)}
			},
			good: func(r *envoyrules.Resources) {
				listener(r, "outbound").DefaultFilterChain.Filters = []*listenerv3.Filter{tcpFilter(translate.BlackholeCluster)}
			},
			want: "must be the last filter in a network filter chain"},
		{rule: "a chain has filters",
			bad:  func(r *envoyrules.Resources) { listener(r, "outbound").DefaultFilterChain.Filters = nil },
			good: func(r *envoyrules.Resources) {},
			want: "has filters, the last one terminal"},
		{rule: "unique addresses",
			bad:  func(r *envoyrules.Resources) { listener(r, "prometheus").Address = listener(r, "inbound").Address },
			good: func(r *envoyrules.Resources) { listener(r, "prometheus").Address.GetSocketAddress().Address = "::" },
			want: "has duplicate address"},
		{rule: "no dynamic listener on a static one's address",
			bad: func(r *envoyrules.Resources) {
				l := proto.Clone(listener(r, "prometheus")).(*listenerv3.Listener)
				l.Name = "osm-health"
				r.StaticListeners = []*listenerv3.Listener{l}
			},
			good: func(r *envoyrules.Resources) {
				l := proto.Clone(listener(r, "prometheus")).(*listenerv3.Listener)
				l.Name, l.Address.GetSocketAddress().PortSpecifier = "osm-health", &corev3.SocketAddress_PortValue{PortValue: 15021}
				r.StaticListeners = []*listenerv3.Listener{l}
			},
			want: "has duplicate address"},
		{rule: "listener names are unique, static and dynamic",
			bad: func(r *envoyrules.Resources) {
				l := proto.Clone(listener(r, "prometheus")).(*listenerv3.Listener)
				l.Address.GetSocketAddress().PortSpecifier = &corev3.SocketAddress_PortValue{PortValue: 15021}
				r.StaticListeners = []*listenerv3.Listener{l}
			},
			good: func(r *envoyrules.Resources) {},
			want: "dynamic listener named as a static one is silently skipped"},
		{rule: "ipv4_compat on an additional address only with a :: listener",
			bad: func(r *envoyrules.Resources) {
				l := listener(r, "prometheus")
				l.AdditionalAddresses = []*listenerv3.AdditionalAddress{{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address: "::", Ipv4Compat: true, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 15010}}}}}}
			},
			good: func(r *envoyrules.Resources) {
				l := listener(r, "prometheus")
				l.AdditionalAddresses = []*listenerv3.AdditionalAddress{{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address: "::", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 15010}}}}}}
			},
			want: "which checks the primary address with each additional address's flag"},
		{rule: "a raw_buffer match needs no inspector",
			bad: func(r *envoyrules.Resources) {
				listener(r, "inbound").FilterChains[0].FilterChainMatch.ServerNames = []string{"web"}
			},
			good: func(r *envoyrules.Resources) {
				listener(r, "outbound").FilterChains[0].FilterChainMatch.TransportProtocol = "raw_buffer"
			},
			want: "only with a TLS inspector"},
		{rule: "ipv4_compat only on ::",
			bad: func(r *envoyrules.Resources) { listener(r, "prometheus").Address.GetSocketAddress().Ipv4Compat = true },
			good: func(r *envoyrules.Resources) {
				sa := listener(r, "prometheus").Address.GetSocketAddress()
				sa.Address, sa.Ipv4Compat = "::", true
			},
			want: "can set ipv4_compat"},
		{rule: "the router is the last HTTP filter",
			bad: func(r *envoyrules.Resources) {
				inboundHCM(r, func(h *hcmv3.HttpConnectionManager) {
					h.HttpFilters[0], h.HttpFilters[1] = h.HttpFilters[1], h.HttpFilters[0]
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundHCM(r, func(h *hcmv3.HttpConnectionManager) { h.HttpFilters = h.HttpFilters[1:] })
			},
			want: "must be the last filter in a http filter chain"},
		{rule: "upgrade types are unique",
			bad: func(r *envoyrules.Resources) {
				inboundHCM(r, func(h *hcmv3.HttpConnectionManager) {
					h.UpgradeConfigs = append(h.UpgradeConfigs, &hcmv3.HttpConnectionManager_UpgradeConfig{UpgradeType: "WebSocket"})
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundHCM(r, func(h *hcmv3.HttpConnectionManager) {
					h.UpgradeConfigs = append(h.UpgradeConfigs, &hcmv3.HttpConnectionManager_UpgradeConfig{UpgradeType: "CONNECT"})
				})
			},
			want: "multiple upgrade configs with the same name"},
		{rule: "RDS names are served",
			bad:  func(r *envoyrules.Resources) { r.Routes = r.Routes[1:] },
			good: func(r *envoyrules.Resources) {},
			want: "every route configuration a connection manager loads by RDS is served"},
		{rule: "routes name clusters that exist",
			bad: func(r *envoyrules.Resources) {
				inboundRoute(r, func(rc *routev3.RouteConfiguration) {
					rc.VirtualHosts[0].Routes[0].GetRoute().ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: "nowhere"}
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundRoute(r, func(rc *routev3.RouteConfiguration) {
					rc.VirtualHosts[0].Routes[0].GetRoute().ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: warehouse}
				})
			},
			want: "route: unknown cluster 'nowhere'"},
		{rule: "TCP proxies name clusters that exist",
			bad: func(r *envoyrules.Resources) {
				listener(r, "outbound").DefaultFilterChain.Filters = []*listenerv3.Filter{tcpFilter("nowhere")}
			},
			good: func(r *envoyrules.Resources) {
				listener(r, "outbound").DefaultFilterChain.Filters = []*listenerv3.Filter{tcpFilter(local)}
			},
			want: "every cluster a route or TCP proxy names exists"},
		{rule: "weighted clusters' weights sum above 0",
			bad: func(r *envoyrules.Resources) {
				inboundRoute(r, func(rc *routev3.RouteConfiguration) {
					rc.VirtualHosts[0].Routes[0].GetRoute().ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{
						Clusters: []*routev3.WeightedCluster_ClusterWeight{{Name: local, Weight: wrapperspb.UInt32(0)}}}}
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundRoute(r, func(rc *routev3.RouteConfiguration) {
					rc.VirtualHosts[0].Routes[0].GetRoute().ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{
						Clusters: []*routev3.WeightedCluster_ClusterWeight{{Name: local, Weight: wrapperspb.UInt32(0)}, {Name: warehouse, Weight: wrapperspb.UInt32(1)}}}}
				})
			},
			want: "must be greater than 0"},
		{rule: "domains are unique",
			bad: func(r *envoyrules.Resources) {
				inboundRoute(r, func(rc *routev3.RouteConfiguration) {
					rc.VirtualHosts = append(rc.VirtualHosts, &routev3.VirtualHost{Name: "b", Domains: []string{"A.example", "a.example"}})
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundRoute(r, func(rc *routev3.RouteConfiguration) {
					rc.VirtualHosts = append(rc.VirtualHosts, &routev3.VirtualHost{Name: "b", Domains: []string{"a.example", "b.example"}})
				})
			},
			want: "Only unique values for domains are permitted"},
		{rule: "one wildcard domain",
			bad: func(r *envoyrules.Resources) {
				inboundRoute(r, func(rc *routev3.RouteConfiguration) {
					rc.VirtualHosts = append(rc.VirtualHosts, &routev3.VirtualHost{Name: "b", Domains: []string{"*"}})
				})
			},
			good: func(r *envoyrules.Resources) {},
			want: "Only unique values for domains"},
		{rule: "header matchers are lowercase",
			bad: func(r *envoyrules.Resources) {
				inboundRoute(r, func(rc *routev3.RouteConfiguration) {
					rc.VirtualHosts[0].Routes[0].Match.Headers = []*routev3.HeaderMatcher{{Name: "X-User", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}}}
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundRoute(r, func(rc *routev3.RouteConfiguration) {
					rc.VirtualHosts[0].Routes[0].Match.Headers = []*routev3.HeaderMatcher{{Name: "x-user", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}}}
				})
			},
			want: "header matcher names are lowercase"},
		{rule: "regexes are within the RE2 program size",
			bad: func(r *envoyrules.Resources) {
				inboundRoute(r, func(rc *routev3.RouteConfiguration) {
					rc.VirtualHosts[0].Routes[0].Match.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "/[a-z]{500}/[0-9]{500}"}}
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundRoute(r, func(rc *routev3.RouteConfiguration) {
					rc.VirtualHosts[0].Routes[0].Match.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{
						Regex: "/api/v[0-9]+/orders/" + uuid + "/items/" + uuid}}
				})
			},
			want: "RE2 program size of"},
		{rule: "Envoy's default limit refuses a path of two UUIDs",
			bad: func(r *envoyrules.Resources) {
				inboundRoute(r, func(rc *routev3.RouteConfiguration) {
					rc.VirtualHosts[0].Routes[0].Match.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "/api/v[0-9]+/orders/" + uuid + "/items/" + uuid}}
				})
			},
			good:       func(r *envoyrules.Resources) {},
			optsChange: func(o *envoyrules.Options) { o.MaxRegexProgramSize = envoyrules.EnvoyRegexLimit },
			want:       "> max program size of 100"},
		{rule: "regexes in RBAC compile",
			bad: func(r *envoyrules.Resources) {
				inboundHCM(r, func(h *hcmv3.HttpConnectionManager) {
					h.HttpFilters[0].ConfigType = &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&rbachttpv3.RBAC{Rules: &rbacv3.RBAC{Policies: map[string]*rbacv3.Policy{"p": {
						Permissions: []*rbacv3.Permission{{Rule: &rbacv3.Permission_UrlPath{UrlPath: &matcherv3.PathMatcher{Rule: &matcherv3.PathMatcher_Path{Path: &matcherv3.StringMatcher{
							MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "(a"}}}}}}}},
						Principals: []*rbacv3.Principal{spiffe()},
					}}}})}
				})
			},
			good: func(r *envoyrules.Resources) {},
			want: "compiles"},
		{rule: "authenticated principals only on TLS chains",
			bad: func(r *envoyrules.Resources) {
				listener(r, "outbound").DefaultFilterChain.Filters = []*listenerv3.Filter{rbacFilter(spiffe()), tcpFilter(translate.BlackholeCluster)}
			},
			good: func(r *envoyrules.Resources) {
				fc := listener(r, "outbound").DefaultFilterChain
				fc.Filters = []*listenerv3.Filter{rbacFilter(spiffe()), tcpFilter(translate.BlackholeCluster)}
				fc.TransportSocket = listener(r, "inbound").FilterChains[0].TransportSocket
			},
			want: "names an authenticated principal only on a TLS chain"},
		{rule: "authenticated principals are named",
			bad: func(r *envoyrules.Resources) {
				fc := listener(r, "outbound").DefaultFilterChain
				fc.Filters = []*listenerv3.Filter{rbacFilter(&rbacv3.Principal{Identifier: &rbacv3.Principal_Authenticated_{Authenticated: &rbacv3.Principal_Authenticated{}}}), tcpFilter(translate.BlackholeCluster)}
				fc.TransportSocket = listener(r, "inbound").FilterChains[0].TransportSocket
			},
			good: func(r *envoyrules.Resources) {},
			want: "names which principal is authenticated"},
		{rule: "ORIGINAL_DST with CLUSTER_PROVIDED",
			bad: func(r *envoyrules.Resources) {
				r.Clusters = append(r.Clusters, &clusterv3.Cluster{Name: "od", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST}, ConnectTimeout: cluster(r, local).ConnectTimeout})
			},
			good: func(r *envoyrules.Resources) {
				r.Clusters = append(r.Clusters, &clusterv3.Cluster{Name: "od", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST}, LbPolicy: clusterv3.Cluster_CLUSTER_PROVIDED, ConnectTimeout: cluster(r, local).ConnectTimeout})
			},
			want: "Only 'CLUSTER_PROVIDED' is allowed with cluster type 'ORIGINAL_DST'"},
		{rule: "CLUSTER_PROVIDED only where provided",
			bad:  func(r *envoyrules.Resources) { cluster(r, warehouse).LbPolicy = clusterv3.Cluster_CLUSTER_PROVIDED },
			good: func(r *envoyrules.Resources) { cluster(r, warehouse).LbPolicy = clusterv3.Cluster_LEAST_REQUEST },
			want: "cluster provided LB specified but cluster"},
		{rule: "ORIGINAL_DST has no load assignment",
			bad: func(r *envoyrules.Resources) {
				c := cluster(r, local)
				c.ClusterDiscoveryType, c.LbPolicy = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST}, clusterv3.Cluster_CLUSTER_PROVIDED
			},
			good: func(r *envoyrules.Resources) {
				c := cluster(r, local)
				c.ClusterDiscoveryType, c.LbPolicy, c.LoadAssignment = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST}, clusterv3.Cluster_CLUSTER_PROVIDED, nil
			},
			want: "ORIGINAL_DST clusters must have no load assignment configured"},
		{rule: "EDS endpoints are served",
			bad:  func(r *envoyrules.Resources) { r.Endpoints = r.Endpoints[1:] },
			good: func(r *envoyrules.Resources) {},
			want: "every EDS cluster's ClusterLoadAssignment is served"},
		{rule: "STATIC clusters have endpoints",
			bad:  func(r *envoyrules.Resources) { cluster(r, local).LoadAssignment.Endpoints = nil },
			good: func(r *envoyrules.Resources) { cluster(r, translate.BlackholeCluster).LoadAssignment.Endpoints = nil },
			want: "a STATIC cluster has endpoints"},
		{rule: "EDS config only on EDS clusters",
			bad: func(r *envoyrules.Resources) {
				cluster(r, local).EdsClusterConfig = cluster(r, warehouse).EdsClusterConfig
			},
			good: func(r *envoyrules.Resources) {},
			want: "eds_cluster_config set in a non-EDS cluster"},
		{rule: "HTTP/2 over TLS offers h2",
			bad: func(r *envoyrules.Resources) {
				c := cluster(r, warehouse)
				h2Options(c, explicitH2)
				upstreamTLS(c, func(u *tlsv3.UpstreamTlsContext) { u.CommonTlsContext.AlpnProtocols = []string{"http/1.1"} })
			},
			good: func(r *envoyrules.Resources) {
				c := cluster(r, warehouse)
				h2Options(c, explicitH2)
				upstreamTLS(c, func(u *tlsv3.UpstreamTlsContext) { u.CommonTlsContext.AlpnProtocols = []string{"h2"} })
			},
			want: "offers h2 in ALPN"},
		{rule: "h2-only ALPN speaks HTTP/2",
			bad: func(r *envoyrules.Resources) {
				upstreamTLS(cluster(r, warehouse), func(u *tlsv3.UpstreamTlsContext) { u.CommonTlsContext.AlpnProtocols = []string{"h2"} })
			},
			good: func(r *envoyrules.Resources) {
				upstreamTLS(cluster(r, warehouse), func(u *tlsv3.UpstreamTlsContext) { u.CommonTlsContext.AlpnProtocols = []string{"h2", "http/1.1"} })
			},
			want: "offers only h2 in ALPN speaks HTTP/2"},
		{rule: "ALPN selection needs TLS",
			bad: func(r *envoyrules.Resources) {
				h2Options(cluster(r, local), &httpv3.HttpProtocolOptions{UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_AutoConfig{AutoConfig: &httpv3.HttpProtocolOptions_AutoHttpConfig{}}})
			},
			good: func(r *envoyrules.Resources) {
				c := cluster(r, warehouse)
				c.TransportSocketMatches = nil // bookwarehouse has a pod without a proxy
				h2Options(c, &httpv3.HttpProtocolOptions{UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_AutoConfig{AutoConfig: &httpv3.HttpProtocolOptions_AutoHttpConfig{}}})
			},
			want: "which has a non-ALPN transport socket"},
		{rule: "a transport socket match has a socket",
			bad: func(r *envoyrules.Resources) {
				cluster(r, warehouse).TransportSocketMatches = []*clusterv3.Cluster_TransportSocketMatch{{Name: "no-proxy"}}
			},
			good: func(r *envoyrules.Resources) {
				cluster(r, warehouse).TransportSocketMatches = []*clusterv3.Cluster_TransportSocketMatch{{Name: "no-proxy", TransportSocket: rawBuffer()}}
			},
			want: `the socket of its transport socket match "no-proxy" is set`},
		{rule: "a transport socket match's socket is an upstream one",
			bad: func(r *envoyrules.Resources) {
				cluster(r, warehouse).TransportSocketMatches = []*clusterv3.Cluster_TransportSocketMatch{{Name: "no-proxy", TransportSocket: &corev3.TransportSocket{
					Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(&tlsv3.DownstreamTlsContext{})},
				}}}
			},
			good: func(r *envoyrules.Resources) {
				c := cluster(r, warehouse)
				c.TransportSocketMatches = []*clusterv3.Cluster_TransportSocketMatch{{Name: "again", TransportSocket: c.GetTransportSocket()}}
			},
			want: `the socket of its transport socket match "no-proxy" is an UpstreamTlsContext or a RawBuffer`},
		{rule: "a transport socket match's TLS holds the TLS rules",
			bad: func(r *envoyrules.Resources) {
				c := cluster(r, warehouse)
				c.TransportSocketMatches = []*clusterv3.Cluster_TransportSocketMatch{{Name: "old", TransportSocket: proto.Clone(c.GetTransportSocket()).(*corev3.TransportSocket)}}
				m := &clusterv3.Cluster{TransportSocket: c.TransportSocketMatches[0].TransportSocket}
				upstreamTLS(m, func(u *tlsv3.UpstreamTlsContext) {
					u.CommonTlsContext.TlsParams.TlsMaximumProtocolVersion = tlsv3.TlsParameters_TLS_AUTO
				})
			},
			good: func(r *envoyrules.Resources) {
				c := cluster(r, warehouse)
				c.TransportSocketMatches = []*clusterv3.Cluster_TransportSocketMatch{{Name: "old", TransportSocket: proto.Clone(c.GetTransportSocket()).(*corev3.TransportSocket)}}
			},
			want: `the socket of its transport socket match "old": the TLS minimum version (TLSv1_3) is at most the maximum`},
		{rule: "a cluster's default socket is TLS, a plaintext one a match's only",
			bad: func(r *envoyrules.Resources) {
				cluster(r, warehouse).TransportSocket = rawBuffer()
			},
			good: func(r *envoyrules.Resources) {
				cluster(r, warehouse).TransportSocketMatches = []*clusterv3.Cluster_TransportSocketMatch{{Name: "no-proxy", TransportSocket: rawBuffer()}}
			},
			want: `its transport socket is an UpstreamTlsContext (a plaintext cluster has none)`},
		{rule: "ALPN selection needs TLS on every socket, the matches' too",
			bad: func(r *envoyrules.Resources) {
				c := cluster(r, warehouse)
				h2Options(c, &httpv3.HttpProtocolOptions{UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_AutoConfig{AutoConfig: &httpv3.HttpProtocolOptions_AutoHttpConfig{}}})
				c.TransportSocketMatches = []*clusterv3.Cluster_TransportSocketMatch{{Name: "no-proxy", TransportSocket: rawBuffer()}}
			},
			good: func(r *envoyrules.Resources) {
				c := cluster(r, warehouse)
				h2Options(c, explicitH2)
				upstreamTLS(c, func(u *tlsv3.UpstreamTlsContext) { u.CommonTlsContext.AlpnProtocols = []string{"h2"} })
				c.TransportSocketMatches = []*clusterv3.Cluster_TransportSocketMatch{{Name: "no-proxy", TransportSocket: rawBuffer()}}
			},
			want: "which has a non-ALPN transport socket"},
		{rule: "cluster names are unique",
			bad: func(r *envoyrules.Resources) {
				r.Clusters = append(r.Clusters, proto.Clone(cluster(r, local)).(*clusterv3.Cluster))
			},
			good: func(r *envoyrules.Resources) {},
			want: "duplicate cluster"},
		{rule: "client TLS minimum at most the client default maximum",
			bad: func(r *envoyrules.Resources) {
				upstreamTLS(cluster(r, warehouse), func(u *tlsv3.UpstreamTlsContext) {
					u.CommonTlsContext.TlsParams.TlsMaximumProtocolVersion = tlsv3.TlsParameters_TLS_AUTO
				})
			},
			good: func(r *envoyrules.Resources) {
				upstreamTLS(cluster(r, warehouse), func(u *tlsv3.UpstreamTlsContext) {
					u.CommonTlsContext.TlsParams = &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2}
				})
			},
			want: "the TLS minimum version (TLSv1_3) is at most the maximum (TLSv1_2, Envoy's client default"},
		{rule: "server TLS minimum at most the maximum",
			bad: func(r *envoyrules.Resources) {
				downstreamTLS(r, func(d *tlsv3.DownstreamTlsContext) {
					d.CommonTlsContext.TlsParams.TlsMaximumProtocolVersion = tlsv3.TlsParameters_TLSv1_2
				})
			},
			good: func(r *envoyrules.Resources) { // a server's default maximum is 1.3
				downstreamTLS(r, func(d *tlsv3.DownstreamTlsContext) {
					d.CommonTlsContext.TlsParams.TlsMaximumProtocolVersion = tlsv3.TlsParameters_TLS_AUTO
				})
			},
			want: "is at most the maximum (TLSv1_2"},
		{rule: "a required client certificate comes with a validation context",
			bad: func(r *envoyrules.Resources) {
				downstreamTLS(r, func(d *tlsv3.DownstreamTlsContext) { d.CommonTlsContext.ValidationContextType = nil })
			},
			good: func(r *envoyrules.Resources) {
				downstreamTLS(r, func(d *tlsv3.DownstreamTlsContext) {
					d.CommonTlsContext.ValidationContextType, d.RequireClientCertificate = nil, nil
				})
			},
			want: "mutual TLS is silently not enforced"},
		{rule: "a TLS server has a certificate",
			bad: func(r *envoyrules.Resources) {
				downstreamTLS(r, func(d *tlsv3.DownstreamTlsContext) { d.CommonTlsContext.TlsCertificateSdsSecretConfigs = nil })
			},
			good: func(r *envoyrules.Resources) {},
			want: "No TLS certificates found for server context"},
		{rule: "SAN matchers come with a trusted CA",
			bad: func(r *envoyrules.Resources) {
				upstreamTLS(cluster(r, warehouse), func(u *tlsv3.UpstreamTlsContext) {
					cv := u.CommonTlsContext.GetCombinedValidationContext()
					u.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: cv.DefaultValidationContext}
				})
			},
			good: func(r *envoyrules.Resources) {
				upstreamTLS(cluster(r, warehouse), func(u *tlsv3.UpstreamTlsContext) {
					cv := u.CommonTlsContext.GetCombinedValidationContext()
					cv.DefaultValidationContext.TrustedCa = &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "ca"}}
					u.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: cv.DefaultValidationContext}
				})
			},
			want: "SAN matchers come with a trusted CA"},
		{rule: "an SDS validation context with SAN matchers holds a CA",
			bad: func(r *envoyrules.Resources) {
				for _, s := range r.Secrets {
					if vc := s.GetValidationContext(); vc != nil {
						vc.TrustedCa = nil
					}
				}
			},
			good: func(r *envoyrules.Resources) {},
			want: "SAN-based verification of peer certificates without trusted CA"},
		{rule: "a LOGICAL_DNS cluster has one endpoint",
			bad: func(r *envoyrules.Resources) {
				c := dnsCluster(clusterv3.Cluster_LOGICAL_DNS, "api.example.com")
				c.LoadAssignment.Endpoints[0].LbEndpoints = append(c.LoadAssignment.Endpoints[0].LbEndpoints, dnsEndpoint("api2.example.com"))
				r.Clusters = append(r.Clusters, c)
			},
			good: func(r *envoyrules.Resources) {
				r.Clusters = append(r.Clusters, dnsCluster(clusterv3.Cluster_LOGICAL_DNS, "api.example.com"))
			},
			want: "LOGICAL_DNS clusters must have a single locality_lb_endpoint and a single lb_endpoint"},
		{rule: "a DNS cluster's endpoint is a name to resolve",
			bad: func(r *envoyrules.Resources) {
				r.Clusters = append(r.Clusters, dnsCluster(clusterv3.Cluster_STRICT_DNS, "*.example.com"))
			},
			good: func(r *envoyrules.Resources) {
				r.Clusters = append(r.Clusters, dnsCluster(clusterv3.Cluster_STRICT_DNS, "api.example.com"))
			},
			want: "every resolution fails"},
		{rule: "a DNS cluster's endpoint names no custom resolver",
			bad: func(r *envoyrules.Resources) {
				c := dnsCluster(clusterv3.Cluster_STRICT_DNS, "api.example.com")
				c.LoadAssignment.Endpoints[0].LbEndpoints[0].GetEndpoint().GetAddress().GetSocketAddress().ResolverName = "custom"
				r.Clusters = append(r.Clusters, c)
			},
			good: func(r *envoyrules.Resources) {
				r.Clusters = append(r.Clusters, dnsCluster(clusterv3.Cluster_STRICT_DNS, "api.example.com"))
			},
			want: "STRICT_DNS clusters must NOT have a custom resolver name set"},
		{rule: "server names have no partial wildcard",
			bad: func(r *envoyrules.Resources) {
				l := listener(r, "inbound")
				l.FilterChains[0].FilterChainMatch.ServerNames = []string{"*w.example.com"}
				l.ListenerFilters = append(l.ListenerFilters, tlsInspectorFilter(nil))
			},
			good: func(r *envoyrules.Resources) {
				l := listener(r, "inbound")
				l.FilterChains[0].FilterChainMatch.ServerNames = []string{"*.example.com"}
				l.ListenerFilters = append(l.ListenerFilters, tlsInspectorFilter(nil))
			},
			want: "partial wildcards are not supported"},
		{rule: "a chain's match repeats no value",
			bad: func(r *envoyrules.Resources) {
				m := listener(r, "outbound").FilterChains[0].FilterChainMatch
				m.PrefixRanges = append(m.PrefixRanges, &corev3.CidrRange{AddressPrefix: "10.9.9.0", PrefixLen: wrapperspb.UInt32(24)},
					&corev3.CidrRange{AddressPrefix: "10.9.9.9", PrefixLen: wrapperspb.UInt32(24)}) // the same /24, masked
			},
			good: func(r *envoyrules.Resources) {
				m := listener(r, "outbound").FilterChains[0].FilterChainMatch
				m.PrefixRanges = append(m.PrefixRanges, &corev3.CidrRange{AddressPrefix: "10.9.9.0", PrefixLen: wrapperspb.UInt32(24)},
					&corev3.CidrRange{AddressPrefix: "10.9.9.9", PrefixLen: wrapperspb.UInt32(32)})
			},
			want: "multiple filter chains with overlapping matching rules"},
		{rule: "the TLS inspector runs on the ports of server name chains",
			bad: func(r *envoyrules.Resources) {
				l := listener(r, "inbound")
				m := l.FilterChains[0].FilterChainMatch
				m.ServerNames = []string{"web"}
				p := int32(m.GetDestinationPort().GetValue())
				l.ListenerFilters = append(l.ListenerFilters, tlsInspectorFilter(portRange(p)))
			},
			good: func(r *envoyrules.Resources) {
				l := listener(r, "inbound")
				m := l.FilterChains[0].FilterChainMatch
				m.ServerNames = []string{"web"}
				p := int32(m.GetDestinationPort().GetValue())
				l.ListenerFilters = append(l.ListenerFilters, tlsInspectorFilter(&listenerv3.ListenerFilterChainMatchPredicate{
					Rule: &listenerv3.ListenerFilterChainMatchPredicate_NotMatch{NotMatch: portRange(p)}}))
			},
			want: "so the inspector runs on its port"},
		{rule: "SDS secrets are served",
			bad:        func(r *envoyrules.Resources) { r.Secrets = r.Secrets[:1] },
			good:       func(r *envoyrules.Resources) { r.Secrets = nil }, // pending: the proxies wait for the identity
			optsChange: func(o *envoyrules.Options) {},
			want:       "every secret a TLS context loads by SDS is served"},
	}
	for _, c := range cases {
		t.Run(c.rule, func(t *testing.T) {
			o := opts
			if c.optsChange != nil {
				c.optsChange(&o)
			}
			start := base
			if c.plaintext {
				start = basePlaintext
			}
			bad := start(t)
			c.bad(bad)
			err := envoyrules.Check(bad, o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("breaking the rule gave %v, want a violation saying %q", err, c.want)
			}
			if err != nil && !envoyrules.IsViolation(err) {
				t.Errorf("%v is not a Violation", err)
			}
			good := start(t)
			c.good(good)
			if len(good.Secrets) == 0 {
				o.SecretsPending = true
			}
			if err := envoyrules.Check(good, o); err != nil {
				t.Errorf("keeping the rule gave %v", err)
			}
		})
	}
}

// TestBootstrapRules: a proxy's bootstrap, as the injector and the MeshVM
// controller build it, obeys the rules; the ADS cluster must be static, the
// admin interface on loopback and on a port no listener has.
func TestBootstrapRules(t *testing.T) {
	o := bootstrap.Options{NodeID: "sidecar~ns~pod", Cluster: "sa", XDSHost: "osm.svc", XDSPort: 15128, ServerName: "osm", IdentityDir: "/id", SDSDir: "/sds"}
	b, err := bootstrap.Envoy(o)
	if err != nil {
		t.Fatal(err)
	}
	if got := envoyrules.RegexLimit(b); got != envoyrules.MeshRegexLimit {
		t.Errorf("the bootstrap's regex limit is %d, want the mesh's %d", got, envoyrules.MeshRegexLimit)
	}
	if err := envoyrules.CheckBootstrap(b, base(t), envoyrules.Options{Blackholes: opts.Blackholes}); err != nil {
		t.Errorf("the bootstrap with the bookstore's resources: %v", err)
	}
	for _, c := range []struct {
		name string
		edit func()
		want string
	}{
		{"ADS from a missing cluster", func() { b.StaticResources.Clusters = nil }, "Unknown gRPC client cluster"},
		{"admin on every address", func() { b.Admin.Address.GetSocketAddress().Address = "0.0.0.0" }, "loopback only"},
		{"a listener on the admin port", func() {
			r := base(t)
			listener(r, "prometheus").Address.GetSocketAddress().PortSpecifier = &corev3.SocketAddress_PortValue{PortValue: mesh.AdminPort}
			b.StaticResources.Listeners = []*listenerv3.Listener{listener(r, "prometheus")}
			b.StaticResources.Clusters = append(b.StaticResources.Clusters, r.Clusters...)
		}, "no listener binds the admin interface's port"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err = bootstrap.Envoy(o)
			if err != nil {
				t.Fatal(err)
			}
			c.edit()
			if err := envoyrules.CheckBootstrap(b, nil, envoyrules.Options{}); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want a violation saying %q", err, c.want)
			}
		})
	}
}

func dnsEndpoint(host string) *endpointv3.LbEndpoint {
	return &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 443}}}}}}}
}

func dnsCluster(typ clusterv3.Cluster_DiscoveryType, host string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 "egress|" + host + "|443",
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: typ},
		ConnectTimeout:       durationpb.New(time.Second),
		LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: "egress|" + host + "|443",
			Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{dnsEndpoint(host)}}}},
	}
}

func tlsInspectorFilter(disabled *listenerv3.ListenerFilterChainMatchPredicate) *listenerv3.ListenerFilter {
	return &listenerv3.ListenerFilter{Name: "envoy.filters.listener.tls_inspector", FilterDisabled: disabled,
		ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: &anypb.Any{TypeUrl: "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}}
}

func portRange(p int32) *listenerv3.ListenerFilterChainMatchPredicate {
	return &listenerv3.ListenerFilterChainMatchPredicate{Rule: &listenerv3.ListenerFilterChainMatchPredicate_DestinationPortRange{
		DestinationPortRange: &typev3.Int32Range{Start: p, End: p + 1}}}
}
