package envoyrules_test

import (
	"fmt"
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
	return clone(r)
}

// clone copies what the translator made, which its groups share.
func clone(r *translate.Resources) *envoyrules.Resources {
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

// inboundFirstRoute edits the first route of the inbound chain's route
// configuration.
func inboundFirstRoute(r *envoyrules.Resources, edit func(*routev3.Route)) {
	inboundRoute(r, func(rc *routev3.RouteConfiguration) { edit(rc.VirtualHosts[0].Routes[0]) })
}

// redirect makes the inbound chain's first route a redirect.
func redirect(r *envoyrules.Resources, rd *routev3.RedirectAction) {
	inboundFirstRoute(r, func(rt *routev3.Route) { rt.Action = &routev3.Route_Redirect{Redirect: rd} })
}

// mirror gives the inbound chain's first route a request mirror policy.
func mirror(r *envoyrules.Resources, mp *routev3.RouteAction_RequestMirrorPolicy) {
	inboundFirstRoute(r, func(rt *routev3.Route) {
		rt.GetRoute().RequestMirrorPolicies = []*routev3.RouteAction_RequestMirrorPolicy{mp}
	})
}

func weighted(cws ...*routev3.WeightedCluster_ClusterWeight) *routev3.RouteAction_WeightedClusters {
	return &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{Clusters: cws}}
}

func header(key, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: key, Value: value}}
}

// headers are n headers to add, x-0 to x-<n-1>.
func headers(n int) []*corev3.HeaderValueOption {
	out := make([]*corev3.HeaderValueOption, n)
	for i := range out {
		out[i] = header(fmt.Sprintf("x-%d", i), "1")
	}
	return out
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
		{rule: "a path_separated_prefix has no trailing /",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.Match.PathSpecifier = &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: "/api/"}
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.Match.PathSpecifier = &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: "/api"}
				})
			},
			want: `path_separated_prefix "/api/" has 2 characters or more`},
		{rule: "a path_separated_prefix is not /",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.Match.PathSpecifier = &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: "/"}
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) { rt.Match.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: "/"} })
			},
			want: `value does not match regex pattern \"^[^?#]+[^?#/]$\"`},
		{rule: "a route rewrites its path one way",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					a := rt.GetRoute()
					a.PrefixRewrite = "/v2"
					a.RegexRewrite = &matcherv3.RegexMatchAndSubstitute{Pattern: &matcherv3.RegexMatcher{Regex: "^/v1"}, Substitution: "/v2"}
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.GetRoute().RegexRewrite = &matcherv3.RegexMatchAndSubstitute{Pattern: &matcherv3.RegexMatcher{Regex: "^/v1"}, Substitution: "/v2"}
				})
			},
			want: "Specify only one of prefix_rewrite, regex_rewrite or path_rewrite_policy"},
		{rule: "path_rewrite counts among the path rewrites",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					a := rt.GetRoute()
					a.PrefixRewrite, a.PathRewrite = "/v2", "/v3"
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) { rt.GetRoute().PathRewrite = "/v3" })
			},
			want: "Specify only one of prefix_rewrite"},
		{rule: "no prefix_rewrite with a path_match_policy",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.Match.PathSpecifier = &routev3.RouteMatch_PathMatchPolicy{PathMatchPolicy: &corev3.TypedExtensionConfig{Name: "uri-template"}}
					rt.GetRoute().PrefixRewrite = "/v2"
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.Match.PathSpecifier = &routev3.RouteMatch_PathMatchPolicy{PathMatchPolicy: &corev3.TypedExtensionConfig{Name: "uri-template"}}
				})
			},
			want: "Cannot use prefix_rewrite with matcher extension"},
		{rule: "a prefix_rewrite has no CR or LF",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) { rt.GetRoute().PrefixRewrite = "/v2\r\n" })
			},
			good: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) { rt.GetRoute().PrefixRewrite = "/v2" })
			},
			want: "its prefix_rewrite has no NUL, CR or LF"},
		{rule: "a regex_rewrite compiles",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.GetRoute().RegexRewrite = &matcherv3.RegexMatchAndSubstitute{Pattern: &matcherv3.RegexMatcher{Regex: "^/(v1"}, Substitution: "/v2"}
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.GetRoute().RegexRewrite = &matcherv3.RegexMatchAndSubstitute{Pattern: &matcherv3.RegexMatcher{Regex: "^/(v1)"}, Substitution: "/v2"}
				})
			},
			want: `regex "^/(v1" compiles`},
		{rule: "a regex_rewrite is within the RE2 program size",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.GetRoute().RegexRewrite = &matcherv3.RegexMatchAndSubstitute{Pattern: &matcherv3.RegexMatcher{Regex: "/[a-z]{500}/[0-9]{500}"}, Substitution: "/"}
				})
			},
			good: func(r *envoyrules.Resources) {},
			want: "RE2 program size of"},
		{rule: "a regex_rewrite has a pattern",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.GetRoute().RegexRewrite = &matcherv3.RegexMatchAndSubstitute{Substitution: "/v2"}
				})
			},
			good: func(r *envoyrules.Resources) {},
			want: "its regex_rewrite has a pattern"},
		{rule: "a path_rewrite is a format string",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) { rt.GetRoute().PathRewrite = "/100%/x" })
			},
			good: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) { rt.GetRoute().PathRewrite = "/100%%/x" })
			},
			want: "Failed to create path rewrite formatter"},
		{rule: "query parameter regexes compile",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.Match.QueryParameters = []*routev3.QueryParameterMatcher{{Name: "q", QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_StringMatch{
						StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "(a"}}}}}}
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.Match.QueryParameters = []*routev3.QueryParameterMatcher{{Name: "q", QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_StringMatch{
						StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "(a)"}}}}}}
				})
			},
			want: `regex "(a" compiles`},
		{rule: "a route adds no pseudo-header",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) { rt.RequestHeadersToAdd = []*corev3.HeaderValueOption{header(":path", "/x")} })
			},
			good: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) { rt.RequestHeadersToAdd = []*corev3.HeaderValueOption{header("x-path", "/x")} })
			},
			want: ":-prefixed or host headers may not be modified"},
		{rule: "a virtual host sets no host header",
			bad: func(r *envoyrules.Resources) {
				inboundRoute(r, func(rc *routev3.RouteConfiguration) {
					rc.VirtualHosts[0].ResponseHeadersToAdd = []*corev3.HeaderValueOption{header("Host", "a")}
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundRoute(r, func(rc *routev3.RouteConfiguration) {
					rc.VirtualHosts[0].ResponseHeadersToAdd = []*corev3.HeaderValueOption{header("x-host", "a")}
				})
			},
			want: `virtual host "in|14001": the response header "Host" to add is neither a pseudo-header (:name) nor host`},
		{rule: "a route configuration removes no host header",
			bad: func(r *envoyrules.Resources) {
				inboundRoute(r, func(rc *routev3.RouteConfiguration) { rc.RequestHeadersToRemove = []string{"HOST"} })
			},
			good: func(r *envoyrules.Resources) {
				inboundRoute(r, func(rc *routev3.RouteConfiguration) { rc.RequestHeadersToRemove = []string{"x-host", ""} }) // an empty name is no rule here
			},
			want: ":-prefixed or host headers may not be removed"},
		{rule: "a weighted cluster removes no pseudo-header",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.GetRoute().ClusterSpecifier = weighted(&routev3.WeightedCluster_ClusterWeight{Name: local, Weight: wrapperspb.UInt32(1), RequestHeadersToRemove: []string{":authority"}})
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.GetRoute().ClusterSpecifier = weighted(&routev3.WeightedCluster_ClusterWeight{Name: local, Weight: wrapperspb.UInt32(1), RequestHeadersToRemove: []string{"x-authority"}})
				})
			},
			want: `weighted cluster "in|14001": the request header ":authority" to remove`},
		{rule: "a weighted cluster's headers to add are format strings",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.GetRoute().ClusterSpecifier = weighted(&routev3.WeightedCluster_ClusterWeight{Name: local, Weight: wrapperspb.UInt32(1),
						RequestHeadersToAdd: []*corev3.HeaderValueOption{header("x-share", "100%")}})
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.GetRoute().ClusterSpecifier = weighted(&routev3.WeightedCluster_ClusterWeight{Name: local, Weight: wrapperspb.UInt32(1),
						RequestHeadersToAdd: []*corev3.HeaderValueOption{header("x-share", "100%%")}})
				})
			},
			want: "Incorrect configuration: 100%. Couldn't find valid command at position 3"},
		{rule: "header values' % form commands",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.ResponseHeadersToAdd = []*corev3.HeaderValueOption{header("x-a", "%REQ(:authority)"), header("x-b", "%req(x)%")}
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.ResponseHeadersToAdd = []*corev3.HeaderValueOption{header("x-a", "%REQ(:authority)%"), header("x-b", "at %START_TIME(%s.%3f)% from %DOWNSTREAM_REMOTE_ADDRESS% (%REQ(user-agent):10%), 50%%")}
				})
			},
			want: "Couldn't find valid command at position 0"},
		{rule: "at most 1000 headers to add",
			bad: func(r *envoyrules.Resources) {
				inboundRoute(r, func(rc *routev3.RouteConfiguration) { rc.VirtualHosts[0].RequestHeadersToAdd = headers(1001) })
			},
			good: func(r *envoyrules.Resources) {
				inboundRoute(r, func(rc *routev3.RouteConfiguration) { rc.VirtualHosts[0].RequestHeadersToAdd = headers(1000) })
			},
			want: "value must contain no more than 1000 item(s)"},
		{rule: "header names to add have no CR or LF",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.RequestHeadersToAdd = []*corev3.HeaderValueOption{header("x-a\r\nx-b", "1")}
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) { rt.RequestHeadersToAdd = []*corev3.HeaderValueOption{header("x-a", "1")} })
			},
			want: "has a name of 1 to 16384 bytes without NUL, CR or LF"},
		{rule: "header values to add are at most 16384 bytes",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.RequestHeadersToAdd = []*corev3.HeaderValueOption{header("x-a", strings.Repeat("a", 16385))}
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.RequestHeadersToAdd = []*corev3.HeaderValueOption{header("x-a", strings.Repeat("a", 16384))}
				})
			},
			want: `the value of the request header "x-a" to add is at most 16384 bytes`},
		{rule: "header values to add have no NUL",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) { rt.RequestHeadersToAdd = []*corev3.HeaderValueOption{header("x-a", "a\x00b")} })
			},
			good: func(r *envoyrules.Resources) {},
			want: "without NUL, CR or LF"},
		{rule: "a header to add has a header",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) { rt.RequestHeadersToAdd = []*corev3.HeaderValueOption{{}} })
			},
			good: func(r *envoyrules.Resources) {},
			want: "HeaderValueOption.header \"value is required\""},
		{rule: "append or append_action, not both",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					h := header("x-a", "1")
					h.Append, h.AppendAction = wrapperspb.Bool(true), corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD //nolint:staticcheck // append is deprecated, and still loaded
					rt.RequestHeadersToAdd = []*corev3.HeaderValueOption{h}
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					h := header("x-a", "1")
					h.Append, h.AppendAction = wrapperspb.Bool(false), corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD //nolint:staticcheck // append is deprecated, and still loaded
					rt.RequestHeadersToAdd = []*corev3.HeaderValueOption{h}
				})
			},
			want: "Both append and append_action are set and it's not allowed"},
		{rule: "append_action is defined",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					h := header("x-a", "1")
					h.AppendAction = 7
					rt.RequestHeadersToAdd = []*corev3.HeaderValueOption{h}
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					h := header("x-a", "1")
					h.AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS
					rt.RequestHeadersToAdd = []*corev3.HeaderValueOption{h}
				})
			},
			want: "has an append_action Envoy defines"},
		{rule: "a route's headers to remove are named",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) { rt.ResponseHeadersToRemove = []string{""} })
			},
			good: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) { rt.ResponseHeadersToRemove = []string{"server"} })
			},
			want: "every response header to remove is named"},
		{rule: "headers to remove have no LF",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) { rt.ResponseHeadersToRemove = []string{"x-a\nx-b"} })
			},
			good: func(r *envoyrules.Resources) {},
			want: `the response header "x-a\nx-b" to remove has no NUL, CR or LF`},
		{rule: "a retry back-off has a base interval",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.GetRoute().RetryPolicy = &routev3.RetryPolicy{RetryBackOff: &routev3.RetryPolicy_RetryBackOff{MaxInterval: durationpb.New(time.Second)}}
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.GetRoute().RetryPolicy = &routev3.RetryPolicy{RetryBackOff: &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(25 * time.Millisecond), MaxInterval: durationpb.New(time.Second)}}
				})
			},
			want: "its retry back-off has a base interval above 0"},
		{rule: "a retry back-off's max interval is not below its base",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.GetRoute().RetryPolicy = &routev3.RetryPolicy{RetryBackOff: &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(time.Second), MaxInterval: durationpb.New(500 * time.Millisecond)}}
				})
			},
			good: func(r *envoyrules.Resources) { // both round up to 1 ms
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.GetRoute().RetryPolicy = &routev3.RetryPolicy{RetryBackOff: &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(500 * time.Microsecond), MaxInterval: durationpb.New(200 * time.Microsecond)}}
				})
			},
			want: "retry_policy.max_interval must greater than or equal to the base_interval"},
		{rule: "a virtual host's retry back-off holds the same rules",
			bad: func(r *envoyrules.Resources) {
				inboundRoute(r, func(rc *routev3.RouteConfiguration) {
					rc.VirtualHosts[0].RetryPolicy = &routev3.RetryPolicy{RetryBackOff: &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(time.Second), MaxInterval: durationpb.New(0)}}
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundRoute(r, func(rc *routev3.RouteConfiguration) {
					rc.VirtualHosts[0].RetryPolicy = &routev3.RetryPolicy{RetryBackOff: &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(time.Second)}}
				})
			},
			want: `virtual host "in|14001": its retry back-off's max interval is above 0`},
		{rule: "a direct response's status is in [200, 600)",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.Action = &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 600}}
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.Action = &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 599}}
				})
			},
			want: "value must be inside range [200, 600)"},
		{rule: "a redirect's host has no CR or LF",
			bad: func(r *envoyrules.Resources) {
				redirect(r, &routev3.RedirectAction{HostRedirect: "a.example\r\nx-injected: 1"})
			},
			good: func(r *envoyrules.Resources) { redirect(r, &routev3.RedirectAction{HostRedirect: "a.example"}) },
			want: "its redirect's host_redirect has no NUL, CR or LF"},
		{rule: "a redirect's path has no LF",
			bad: func(r *envoyrules.Resources) {
				redirect(r, &routev3.RedirectAction{PathRewriteSpecifier: &routev3.RedirectAction_PathRedirect{PathRedirect: "/a\n"}})
			},
			good: func(r *envoyrules.Resources) {
				redirect(r, &routev3.RedirectAction{PathRewriteSpecifier: &routev3.RedirectAction_PrefixRewrite{PrefixRewrite: "/a"}})
			},
			want: "its redirect's path_redirect has no NUL, CR or LF"},
		{rule: "a redirect's port is a TCP port",
			bad:  func(r *envoyrules.Resources) { redirect(r, &routev3.RedirectAction{PortRedirect: 70000}) },
			good: func(r *envoyrules.Resources) { redirect(r, &routev3.RedirectAction{PortRedirect: 65535}) },
			want: "its redirect's port 70000 is a TCP port"},
		{rule: "a redirect's response code is defined",
			bad: func(r *envoyrules.Resources) { redirect(r, &routev3.RedirectAction{ResponseCode: 9}) },
			good: func(r *envoyrules.Resources) {
				redirect(r, &routev3.RedirectAction{ResponseCode: routev3.RedirectAction_PERMANENT_REDIRECT})
			},
			want: "its redirect's response code is one Envoy defines"},
		{rule: "a redirect's regex_rewrite compiles",
			bad: func(r *envoyrules.Resources) {
				redirect(r, &routev3.RedirectAction{PathRewriteSpecifier: &routev3.RedirectAction_RegexRewrite{RegexRewrite: &matcherv3.RegexMatchAndSubstitute{
					Pattern: &matcherv3.RegexMatcher{Regex: "^/[a-"}, Substitution: "/"}}})
			},
			good: func(r *envoyrules.Resources) {
				redirect(r, &routev3.RedirectAction{PathRewriteSpecifier: &routev3.RedirectAction_RegexRewrite{RegexRewrite: &matcherv3.RegexMatchAndSubstitute{
					Pattern: &matcherv3.RegexMatcher{Regex: "^/[a-z]"}, Substitution: "/"}}})
			},
			want: `regex "^/[a-" compiles`},
		{rule: "a mirror names a cluster or a cluster header, not both",
			bad: func(r *envoyrules.Resources) {
				mirror(r, &routev3.RouteAction_RequestMirrorPolicy{Cluster: local, ClusterHeader: "x-mirror"})
			},
			good: func(r *envoyrules.Resources) {
				mirror(r, &routev3.RouteAction_RequestMirrorPolicy{ClusterHeader: "x-mirror"})
			},
			want: "Only one of cluster 'in|14001' or cluster_header 'x-mirror' in request mirror policy can be specified"},
		{rule: "a mirror names a cluster or a cluster header",
			bad:  func(r *envoyrules.Resources) { mirror(r, &routev3.RouteAction_RequestMirrorPolicy{}) },
			good: func(r *envoyrules.Resources) { mirror(r, &routev3.RouteAction_RequestMirrorPolicy{Cluster: local}) },
			want: "Exactly one of cluster or cluster_header in request mirror policy need to be specified"},
		{rule: "a mirror's runtime fraction has a default value",
			bad: func(r *envoyrules.Resources) {
				mirror(r, &routev3.RouteAction_RequestMirrorPolicy{Cluster: local, RuntimeFraction: &corev3.RuntimeFractionalPercent{RuntimeKey: "mirror"}})
			},
			good: func(r *envoyrules.Resources) {
				mirror(r, &routev3.RouteAction_RequestMirrorPolicy{Cluster: local, RuntimeFraction: &corev3.RuntimeFractionalPercent{
					DefaultValue: &typev3.FractionalPercent{Numerator: 10}}})
			},
			want: "RuntimeFractionalPercent.default_value \"value is required\""},
		{rule: "a weighted cluster names a cluster or a cluster header, not both",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.GetRoute().ClusterSpecifier = weighted(&routev3.WeightedCluster_ClusterWeight{Name: local, ClusterHeader: "x-cluster", Weight: wrapperspb.UInt32(1)})
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.GetRoute().ClusterSpecifier = weighted(&routev3.WeightedCluster_ClusterWeight{ClusterHeader: "x-cluster", Weight: wrapperspb.UInt32(1)})
				})
			},
			want: "Only one of name or cluster_header can be specified"},
		{rule: "a weighted cluster names a cluster or a cluster header",
			bad: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.GetRoute().ClusterSpecifier = weighted(&routev3.WeightedCluster_ClusterWeight{Name: local, Weight: wrapperspb.UInt32(1)}, &routev3.WeightedCluster_ClusterWeight{Weight: wrapperspb.UInt32(1)})
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundFirstRoute(r, func(rt *routev3.Route) {
					rt.GetRoute().ClusterSpecifier = weighted(&routev3.WeightedCluster_ClusterWeight{Name: local, Weight: wrapperspb.UInt32(1)}, &routev3.WeightedCluster_ClusterWeight{Name: warehouse, Weight: wrapperspb.UInt32(1)})
				})
			},
			want: "At least one of name or cluster_header need to be specified"},
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
