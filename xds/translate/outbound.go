package translate

import (
	"net/netip"
	"slices"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	origdstv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_dst/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// outbound builds the outbound listener (the pod's outgoing traffic, redirected
// by iptables), a filter chain per destination service port, and the clusters,
// endpoints and routes behind them.
func (t *translator) outbound() {
	l := &listenerv3.Listener{
		Name:             OutboundListener,
		Address:          socketAddress("0.0.0.0", OutboundPort),
		ListenerFilters:  []*listenerv3.ListenerFilter{t.originalDst()},
		TrafficDirection: corev3.TrafficDirection_OUTBOUND,
	}
	matched := map[string]bool{} // filter chain matches already used
	for _, s := range t.view.Outbound {
		dsts := s.ClusterIPs
		if s.Headless() {
			dsts = endpointAddresses(s)
		}
		for _, p := range s.Ports {
			t.out.Clusters = append(t.out.Clusters, sharedResource(t, "cluster", s, p, func(t *translator) *clusterv3.Cluster { return t.outboundCluster(s, p) }))
			t.out.Endpoints = append(t.out.Endpoints, sharedResource(t, "endpoints", s, p, func(*translator) *endpointv3.ClusterLoadAssignment { return endpoints(s, p) }))
			ranges := t.uniqueRanges(dsts, p.Port, matched)
			if len(ranges) == 0 {
				continue // every address is another service's: nothing routes here
			}
			if p.Protocol.IsHTTP() {
				t.out.Routes = append(t.out.Routes, sharedResource(t, "route", s, p, func(t *translator) *routev3.RouteConfiguration { return t.outboundRoute(s, p) }))
				t.out.rdsRefs = append(t.out.rdsRefs, OutboundClusterName(s.Key, p.Port))
			}
			switch {
			case len(ranges) == len(dsts):
				// No address was taken by another service: the chain is the
				// same in every group.
				l.FilterChains = append(l.FilterChains, sharedResource(t, "chain", s, p, func(t *translator) *listenerv3.FilterChain { return t.outboundChain(s, p, ranges) }))
			default:
				l.FilterChains = append(l.FilterChains, t.outboundChain(s, p, ranges))
			}
		}
	}
	if t.view.Mesh.EgressAllowed {
		t.out.Clusters = append(t.out.Clusters, passthroughCluster())
		l.DefaultFilterChain = &listenerv3.FilterChain{
			Name:    PassthroughCluster,
			Filters: []*listenerv3.Filter{t.tcpProxy(PassthroughCluster, []weighted{{PassthroughCluster, 1}})},
		}
	}
	t.out.Listeners = append(t.out.Listeners, l)
}

// outboundChain matches traffic to a service port's addresses and hands it to
// an HTTP connection manager or a TCP proxy.
func (t *translator) outboundChain(s *mesh.Service, p mesh.Port, ranges []*corev3.CidrRange) *listenerv3.FilterChain {
	name := OutboundClusterName(s.Key, p.Port)
	fc := &listenerv3.FilterChain{
		Name: name,
		FilterChainMatch: &listenerv3.FilterChainMatch{
			PrefixRanges:    ranges,
			DestinationPort: wrapperspb.UInt32(uint32(p.Port)),
		},
	}
	if p.Protocol.IsHTTP() {
		fc.Filters = []*listenerv3.Filter{t.httpConnectionManager(name, &hcmv3.HttpConnectionManager{
			RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{ConfigSource: adsSource(), RouteConfigName: name}},
		}, nil)}
	} else {
		fc.Filters = []*listenerv3.Filter{t.tcpProxy(name, t.clusterTargets(s, p))}
	}
	return fc
}

// uniqueRanges are the /32 or /128 ranges of addrs not yet used with port: two
// headless services sharing a pod must not produce two identical matches,
// which Envoy would refuse.
func (t *translator) uniqueRanges(addrs []string, port int32, used map[string]bool) []*corev3.CidrRange {
	var out []*corev3.CidrRange
	for _, a := range addrs {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			continue
		}
		key := netip.AddrPortFrom(ip, uint16(port)).String()
		if used[key] {
			continue
		}
		used[key] = true
		out = append(out, &corev3.CidrRange{AddressPrefix: ip.String(), PrefixLen: wrapperspb.UInt32(uint32(ip.BitLen()))})
	}
	return out
}

func endpointAddresses(s *mesh.Service) []string {
	var out []string
	for _, e := range s.Endpoints {
		out = append(out, e.Address)
	}
	return out
}

// weighted is a cluster and its weight.
type weighted struct {
	cluster string
	weight  uint32
}

// clusterTargets are the clusters traffic to a service port goes to: the
// service's own, or the backends of its TrafficSplit.
func (t *translator) clusterTargets(s *mesh.Service, p mesh.Port) []weighted {
	sp := t.view.Mesh.Splits[s.Key]
	if sp == nil {
		return []weighted{{OutboundClusterName(s.Key, p.Port), 1}}
	}
	var out []weighted
	for _, be := range sp.Backends {
		if be.Weight == 0 {
			continue
		}
		out = append(out, weighted{OutboundClusterName(be.Service, p.Port), be.Weight})
	}
	if len(out) == 0 { // the model refuses such splits; never route nowhere
		return []weighted{{OutboundClusterName(s.Key, p.Port), 1}}
	}
	return out
}

// outboundRoute routes HTTP requests for a service port to its clusters.
func (t *translator) outboundRoute(s *mesh.Service, p mesh.Port) *routev3.RouteConfiguration {
	name := OutboundClusterName(s.Key, p.Port)
	rc := singleRoute(name, prefixAll(), routeAction(t.clusterTargets(s, p)))
	rc.ValidateClusters = wrapperspb.Bool(false)
	return rc
}

// singleRoute is a route configuration of one virtual host, for any domain,
// with one route.
func singleRoute(name string, match *routev3.RouteMatch, action *routev3.RouteAction) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{
		Name: name,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    name,
			Domains: []string{"*"},
			Routes:  []*routev3.Route{{Match: match, Action: &routev3.Route_Route{Route: action}}},
		}},
	}
}

func prefixAll() *routev3.RouteMatch {
	return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}
}

func toCluster(name string) *routev3.RouteAction {
	return &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: name}}
}

func routeAction(targets []weighted) *routev3.RouteAction {
	if len(targets) == 1 {
		return toCluster(targets[0].cluster)
	}
	wc := &routev3.WeightedCluster{}
	for _, w := range targets {
		wc.Clusters = append(wc.Clusters, &routev3.WeightedCluster_ClusterWeight{Name: w.cluster, Weight: wrapperspb.UInt32(w.weight)})
	}
	return &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_WeightedClusters{WeightedClusters: wc}}
}

func (t *translator) tcpProxy(statPrefix string, targets []weighted) *listenerv3.Filter {
	tp := &tcpproxyv3.TcpProxy{StatPrefix: statPrefix}
	if len(targets) == 1 {
		tp.ClusterSpecifier = &tcpproxyv3.TcpProxy_Cluster{Cluster: targets[0].cluster}
	} else {
		wc := &tcpproxyv3.TcpProxy_WeightedCluster{}
		for _, w := range targets {
			wc.Clusters = append(wc.Clusters, &tcpproxyv3.TcpProxy_WeightedCluster_ClusterWeight{Name: w.cluster, Weight: w.weight})
		}
		tp.ClusterSpecifier = &tcpproxyv3.TcpProxy_WeightedClusters{WeightedClusters: wc}
	}
	return &listenerv3.Filter{Name: "envoy.filters.network.tcp_proxy", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: t.any(tp)}}
}

func (t *translator) originalDst() *listenerv3.ListenerFilter {
	return &listenerv3.ListenerFilter{
		Name:       "envoy.filters.listener.original_dst",
		ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: t.any(&origdstv3.OriginalDst{})},
	}
}

func sortByName[T any](items []T, name func(T) string) {
	slices.SortStableFunc(items, func(a, b T) int { return strings.Compare(name(a), name(b)) })
}
