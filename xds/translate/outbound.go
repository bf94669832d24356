package translate

import (
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	origdstv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_dst/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// outbound builds the outbound listener (the pod's outgoing traffic, redirected
// by iptables), a filter chain per destination service port, and the clusters,
// endpoints and routes behind them. Traffic to anything else passes through
// when the mesh allows egress, and is refused when it does not.
func (t *translator) outbound() {
	l := t.listener(OutboundListener, mesh.OutboundListenerPort, corev3.TrafficDirection_OUTBOUND)
	l.ListenerFilters = []*listenerv3.ListenerFilter{t.originalDst()}
	if src := t.ownStat(StatSourceTag); src != "" {
		l.StatPrefix = OutboundListener + src
	}
	matched := map[string]bool{} // filter chain matches already used
	for _, s := range t.view.Outbound {
		for _, p := range s.Ports {
			if s.Headless() {
				t.headless(l, s, p, matched)
				continue
			}
			t.out.Clusters = append(t.out.Clusters, sharedKeyed(t, "cluster", s, p.Port, t.clusterKey(), func(t *translator) *clusterv3.Cluster { return t.outboundCluster(s, p) }))
			t.out.Endpoints = append(t.out.Endpoints, sharedResource(t, "endpoints", s, p, func(*translator) *endpointv3.ClusterLoadAssignment { return endpoints(s, p) }))
			ranges := t.uniqueRanges(s.ClusterIPs, p.Port, matched)
			byEndpoint := t.ingressChains(s, p, matched)
			if len(ranges) == 0 && len(byEndpoint) == 0 {
				continue // every address is another service's: nothing routes here
			}
			if p.Protocol.IsHTTP() {
				t.out.Routes = append(t.out.Routes, t.sharedRoute(s, p))
				t.out.rdsRefs = append(t.out.rdsRefs, OutboundClusterName(s.Key, p.Port))
			}
			switch {
			case len(ranges) == 0:
			case len(ranges) == len(s.ClusterIPs):
				// No address was taken by another service: the chain is the
				// same in every group.
				l.FilterChains = append(l.FilterChains, sharedKeyed(t, "chain", s, p.Port, t.chainKey(p.Protocol.IsHTTP()), func(t *translator) *listenerv3.FilterChain {
					return t.outboundChain(OutboundClusterName(s.Key, p.Port), s, p, p.Port, ranges)
				}))
			default:
				l.FilterChains = append(l.FilterChains, t.outboundChain(OutboundClusterName(s.Key, p.Port), s, p, p.Port, ranges))
			}
			l.FilterChains = append(l.FilterChains, byEndpoint...)
		}
	}
	for _, s := range t.view.Backends {
		if s.Headless() {
			continue // no route sends to a headless service
		}
		for _, p := range s.Ports {
			t.out.Clusters = append(t.out.Clusters, sharedKeyed(t, "cluster", s, p.Port, t.clusterKey(), func(t *translator) *clusterv3.Cluster { return t.outboundCluster(s, p) }))
			t.out.Endpoints = append(t.out.Endpoints, sharedResource(t, "endpoints", s, p, func(*translator) *endpointv3.ClusterLoadAssignment { return endpoints(s, p) }))
		}
	}
	t.egress(l, matched)
	t.unmatched(l, t.view.Mesh.EgressAllowed)
	t.out.Listeners = append(t.out.Listeners, l)
}

// headless adds the chains of a headless service port. Its clients dial an
// endpoint (a StatefulSet member such as mysql-0, not interchangeable with
// the others) at the endpoint's own port, the target port: a chain per
// target port matches the endpoints' addresses there, and its cluster keeps
// each connection on the address that was dialled (ORIGINAL_DST), with the
// same mutual TLS as any mesh cluster. The endpoints without a proxy get a
// chain per target port of their own, a TCP proxy to a plaintext
// ORIGINAL_DST cluster (headlessPlainCluster): with no proxy at the other
// end, there is no mesh HTTP to speak.
func (t *translator) headless(l *listenerv3.Listener, s *mesh.Service, p mesh.Port, matched map[string]bool) {
	name := OutboundClusterName(s.Key, p.Port)
	byTarget, plainByTarget := map[int32][]string{}, map[int32][]string{}
	for _, e := range s.Endpoints {
		tp, ok := e.Ports[p.Name]
		switch {
		case !ok:
		case e.NoProxy:
			plainByTarget[tp] = append(plainByTarget[tp], e.Address)
		default:
			byTarget[tp] = append(byTarget[tp], e.Address)
		}
	}
	t.out.Clusters = append(t.out.Clusters, sharedKeyed(t, "headless-cluster", s, p.Port, t.clusterKey(), func(t *translator) *clusterv3.Cluster { return t.headlessCluster(s, p) }))
	if len(plainByTarget) > 0 {
		plain := headlessPlainClusterName(s, p)
		t.out.Clusters = append(t.out.Clusters, sharedResource(t, "headless-plain-cluster", s, p, func(*translator) *clusterv3.Cluster { return headlessPlainCluster(s, p) }))
		for _, tp := range slices.Sorted(maps.Keys(plainByTarget)) {
			ranges := t.uniqueRanges(plainByTarget[tp], tp, matched)
			if len(ranges) == 0 {
				continue
			}
			l.FilterChains = append(l.FilterChains, &listenerv3.FilterChain{
				Name:             plain + "|" + strconv.Itoa(int(tp)),
				FilterChainMatch: &listenerv3.FilterChainMatch{PrefixRanges: ranges, DestinationPort: wrapperspb.UInt32(uint32(tp))},
				Filters:          []*listenerv3.Filter{t.tcpProxy(plain, []weighted{{plain, 1}})},
			})
		}
	}
	routed := false
	for _, tp := range slices.Sorted(maps.Keys(byTarget)) {
		ranges := t.uniqueRanges(byTarget[tp], tp, matched)
		if len(ranges) == 0 {
			continue
		}
		if p.Protocol.IsHTTP() && !routed {
			routed = true
			t.out.Routes = append(t.out.Routes, t.sharedRoute(s, p))
			t.out.rdsRefs = append(t.out.rdsRefs, name)
		}
		l.FilterChains = append(l.FilterChains, t.outboundChain(name+"|"+strconv.Itoa(int(tp)), s, p, tp, ranges))
	}
}

// outboundChain matches traffic to a service port's addresses and hands it to
// an HTTP connection manager or a TCP proxy.
// chainName names it and its statistics; port is the port clients dial.
func (t *translator) outboundChain(chainName string, s *mesh.Service, p mesh.Port, port int32, ranges []*corev3.CidrRange) *listenerv3.FilterChain {
	name := OutboundClusterName(s.Key, p.Port)
	fc := &listenerv3.FilterChain{
		Name: chainName,
		FilterChainMatch: &listenerv3.FilterChainMatch{
			PrefixRanges:    ranges,
			DestinationPort: wrapperspb.UInt32(uint32(port)),
		},
	}
	if p.Protocol.IsHTTP() {
		fc.Filters = []*listenerv3.Filter{t.httpConnectionManager(name, meshHTTP(t.observe(&hcmv3.HttpConnectionManager{
			RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{ConfigSource: adsSource(), RouteConfigName: name}},
		}, nil)), t.routeFaultFilter(t.view.Mesh.Resilience(s.Key, p.Port), s.Key, p.Port))}
	} else {
		fc.Filters = []*listenerv3.Filter{t.tcpProxy(name, t.clusterTargets(s, p))}
	}
	return fc
}

// ingressChains are the chains of a service port that match its endpoints'
// addresses at their target port, for a group that an IngressBackend names
// as a source of the service at that port: an ingress controller in the
// mesh dials endpoints, not the virtual IP. They go to the service's
// cluster, with its mutual TLS. No other group has them, so that its
// listener does not change when a pod moves.
func (t *translator) ingressChains(s *mesh.Service, p mesh.Port, matched map[string]bool) []*listenerv3.FilterChain {
	if len(t.view.IngressTargets) == 0 {
		return nil
	}
	var out []*listenerv3.FilterChain
	for _, it := range t.view.IngressTargets {
		if it.Service != s.Key {
			continue
		}
		var addrs []string
		for _, e := range s.Endpoints {
			if published(e, p) && e.Ports[p.Name] == it.TargetPort {
				addrs = append(addrs, e.Address)
			}
		}
		ranges := t.uniqueRanges(addrs, it.TargetPort, matched)
		if len(ranges) == 0 {
			continue
		}
		name := OutboundClusterName(s.Key, p.Port)
		out = append(out, t.outboundChain(name+"|endpoints|"+strconv.Itoa(int(it.TargetPort)), s, p, it.TargetPort, ranges))
	}
	return out
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

// weighted is a cluster and its weight.
type weighted struct {
	cluster string
	weight  uint32
}

// clusterTargets are the clusters traffic to a service port goes to: the
// service's own, or the backends of its TrafficSplit when the split routes
// the port (every backend serves it). A backend that is the root of a split
// of the port itself is split in turn, so that each leaf gets its share of
// the whole (90/10 with the 10 split 80/20 is 90/8/2).
func (t *translator) clusterTargets(s *mesh.Service, p mesh.Port) []weighted {
	// A headless service's clients chose their endpoint: it is not split.
	if sp := t.view.Mesh.Splits[s.Key]; sp == nil || !sp.Routes(p.Port) || s.Headless() {
		return []weighted{{OutboundClusterName(s.Key, p.Port), 1}}
	}
	shares := t.splitShares(s.Key, p.Port, map[mesh.ServiceKey]bool{})
	keys := slices.SortedFunc(maps.Keys(shares), func(a, b mesh.ServiceKey) int { return strings.Compare(a.String(), b.String()) })
	// Integer weights in proportion to the shares: out of the root split's
	// own total when that is exact (so a one-level split keeps the user's
	// weights), else over the shares' common denominator, reduced.
	scale := uint64(0)
	for _, be := range t.view.Mesh.Splits[s.Key].Backends {
		scale += uint64(be.Weight)
	}
	for _, k := range keys {
		if scale%shares[k].den != 0 {
			scale = 0
			break
		}
	}
	if scale == 0 {
		scale = 1
		for _, k := range keys {
			scale = lcm(scale, shares[k].den)
		}
	}
	out := make([]weighted, len(keys))
	for i, k := range keys {
		out[i] = weighted{OutboundClusterName(k, p.Port), uint32(min(shares[k].num*(scale/shares[k].den), 1<<31))}
	}
	return out
}

// share is a fraction of a service's traffic.
type share struct{ num, den uint64 }

// splitShares are the leaf services that traffic to port of k reaches
// through TrafficSplits, each with its share. A split that does not route
// the port, that loops back (the model refuses those; never recurse for
// ever), that nests deeper than a user would write, or that would need
// weights past 32 bits stops at its root.
func (t *translator) splitShares(k mesh.ServiceKey, port int32, visiting map[mesh.ServiceKey]bool) map[mesh.ServiceKey]share {
	sp := t.view.Mesh.Splits[k]
	leaf := map[mesh.ServiceKey]share{k: {1, 1}}
	if sp == nil || !sp.Routes(port) || visiting[k] || len(visiting) >= 8 {
		return leaf
	}
	visiting[k] = true
	defer delete(visiting, k)
	var total uint64
	for _, be := range sp.Backends {
		total += uint64(be.Weight)
	}
	if total == 0 {
		return leaf
	}
	out := map[mesh.ServiceKey]share{}
	for _, be := range sp.Backends {
		if be.Weight == 0 {
			continue
		}
		for leafKey, r := range t.splitShares(be.Service, port, visiting) {
			add := reduce(share{uint64(be.Weight) * r.num, total * r.den})
			if prev, ok := out[leafKey]; ok {
				add = reduce(share{prev.num*add.den + add.num*prev.den, prev.den * add.den})
			}
			if add.den > 1<<20 {
				return leaf
			}
			out[leafKey] = add
		}
	}
	return out
}

func reduce(r share) share {
	g := gcd(r.num, r.den)
	return share{r.num / g, r.den / g}
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func lcm(a, b uint64) uint64 { return a / gcd(a, b) * b }

// outboundRoute routes HTTP requests for a service port to its clusters.
func (t *translator) outboundRoute(s *mesh.Service, p mesh.Port) *routev3.RouteConfiguration {
	name := OutboundClusterName(s.Key, p.Port)
	if table := t.routes(s, p); table != nil {
		return t.routeTable(name, table, false)
	}
	a := routeAction(t.clusterTargets(s, p))
	a.HashPolicy = hashPolicy(t.view.Mesh.Resilience(s.Key, p.Port))
	if r := t.callerRetry(s.Key); r != nil {
		a.RetryPolicy = callerRetryPolicy(r, 0, false)
	}
	rc := singleRoute(name, prefixAll(), a)
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

// meshRoute routes to a mesh cluster with no route timeout. Envoy's default
// (15 s) would cut long requests and every gRPC or server-sent-events
// stream; a mesh is transparent to its applications until a policy says
// otherwise.
func meshRoute(a *routev3.RouteAction) *routev3.RouteAction {
	a.Timeout = durationpb.New(0)
	return a
}

func routeAction(targets []weighted) *routev3.RouteAction {
	if len(targets) == 1 {
		return meshRoute(toCluster(targets[0].cluster))
	}
	wc := &routev3.WeightedCluster{}
	for _, w := range targets {
		wc.Clusters = append(wc.Clusters, &routev3.WeightedCluster_ClusterWeight{Name: w.cluster, Weight: wrapperspb.UInt32(w.weight)})
	}
	return meshRoute(&routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_WeightedClusters{WeightedClusters: wc}})
}

func (t *translator) tcpProxy(statPrefix string, targets []weighted) *listenerv3.Filter {
	return t.tcpProxyRBAC(statPrefix, targets, false)
}

// tcpProxyRBAC is tcpProxy for a chain that has an RBAC filter when rbac
// is set: its access log then records the filter's decision.
func (t *translator) tcpProxyRBAC(statPrefix string, targets []weighted, rbac bool) *listenerv3.Filter {
	tp := &tcpproxyv3.TcpProxy{StatPrefix: statPrefix, AccessLog: t.tcpAccessLog(rbac)}
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

// routes is the route table of the group's callers for port p of s, or nil.
func (t *translator) routes(s *mesh.Service, p mesh.Port) *mesh.RouteTable {
	if len(t.view.Mesh.Routes) == 0 {
		return nil
	}
	return t.view.Mesh.RouteTable(t.view.Group.Identity.Namespace, s.Key, p.Port)
}

// sharedRoute is the route configuration of port p of s, shared by the
// groups whose callers see the same routes: every group, but those of a
// namespace with consumer routes of the port.
func (t *translator) sharedRoute(s *mesh.Service, p mesh.Port) *routev3.RouteConfiguration {
	consumer := ""
	if table := t.routes(s, p); table != nil {
		consumer = table.Key.Consumer
	}
	if t.callerRetry(s.Key) != nil {
		// The group's own Retry (one per source identity): "\x00" is in
		// no namespace's name.
		consumer += "\x00retry:" + t.view.Group.Identity.String()
	}
	m, err := t.shared.getKey(sharedKey{kind: "route", svc: s, port: p.Port, name: consumer}, func(bt *translator) proto.Message { return bt.outboundRoute(s, p) }, t.view)
	if err != nil && t.err == nil {
		t.err = err
	}
	rc, _ := m.(*routev3.RouteConfiguration)
	return rc
}
