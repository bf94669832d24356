package translate

import (
	"strconv"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// BlackholeCluster has no endpoints: a TCP proxy to it closes every
// connection at once. It is how a listener refuses traffic.
const BlackholeCluster = "blackhole"

// loopPorts are the proxy's own ports that a passthrough chain must never
// forward to: the proxy's connection to them is not redirected, so it lands
// on the proxy's own listener (or admin interface) and, through the same
// passthrough chain, dials itself again until it runs out of descriptors.
var loopPorts = []int32{mesh.AdminPort, mesh.OutboundListenerPort, mesh.InboundListenerPort, mesh.PrometheusPort}

// listener is a listener of the proxy on port, on each address family its
// group has (mesh.View's IPv6): 0.0.0.0 and [::] too (Envoy sets IPV6_V6ONLY on it,
// so the two sockets do not collide).
func (t *translator) listener(name string, port int32, dir corev3.TrafficDirection) *listenerv3.Listener {
	l := &listenerv3.Listener{Name: name, Address: socketAddress("0.0.0.0", port), TrafficDirection: dir}
	if t.view.IPv6 {
		l.AdditionalAddresses = []*listenerv3.AdditionalAddress{{Address: socketAddress("::", port)}}
	}
	return l
}

// unmatched completes a listener that redirected traffic reaches with what
// happens to traffic no chain matches: it passes through to its original
// destination when pass is set, else it is refused. Envoy refuses a listener
// with no chain at all, which in state-of-the-world LDS NACKs every listener
// of the update, so every such listener has this default chain. With
// passthrough, traffic to the proxy's own ports is refused by a chain each.
func (t *translator) unmatched(l *listenerv3.Listener, pass bool) {
	// The chains are the same in every group: they are built once.
	chain := func(kind string, port int32, build func(*translator) *listenerv3.FilterChain) *listenerv3.FilterChain {
		return sharedKeyed(t, kind, nil, port, t.chainKey(false), build)
	}
	if !pass {
		l.DefaultFilterChain = chain("blackhole-chain", 0, func(t *translator) *listenerv3.FilterChain {
			return &listenerv3.FilterChain{
				Name:    BlackholeCluster,
				Filters: []*listenerv3.Filter{t.tcpProxy(BlackholeCluster, []weighted{{BlackholeCluster, 1}})},
			}
		})
		return
	}
	for _, p := range loopPorts {
		l.FilterChains = append(l.FilterChains, chain("self-chain", p, func(t *translator) *listenerv3.FilterChain {
			return &listenerv3.FilterChain{
				Name:             "self|" + strconv.Itoa(int(p)),
				FilterChainMatch: &listenerv3.FilterChainMatch{DestinationPort: wrapperspb.UInt32(uint32(p))},
				Filters:          []*listenerv3.Filter{t.tcpProxy("self", []weighted{{BlackholeCluster, 1}})},
			}
		}))
	}
	l.DefaultFilterChain = chain("passthrough-chain", 0, func(t *translator) *listenerv3.FilterChain {
		return &listenerv3.FilterChain{
			Name:    PassthroughCluster,
			Filters: []*listenerv3.Filter{t.tcpProxy(PassthroughCluster, []weighted{{PassthroughCluster, 1}})},
		}
	})
}

// defaultClusters adds the clusters the default chains of the group's
// listeners use: the blackhole always (the inbound listener refuses what it
// does not serve), passthrough when the outbound listener passes egress.
func (t *translator) defaultClusters() {
	if t.view.Mesh.EgressAllowed {
		t.out.Clusters = append(t.out.Clusters, sharedResource(t, "passthrough-cluster", nil, mesh.Port{}, func(*translator) *clusterv3.Cluster { return passthroughCluster() }))
	}
	t.out.Clusters = append(t.out.Clusters, sharedResource(t, "blackhole-cluster", nil, mesh.Port{}, func(*translator) *clusterv3.Cluster { return blackholeCluster() }))
}

// blackholeCluster is a static cluster with an empty load assignment: the
// one cluster Envoy is given that can never have a host.
func blackholeCluster() *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 BlackholeCluster,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(connectTimeout),
		LoadAssignment:       &endpointv3.ClusterLoadAssignment{ClusterName: BlackholeCluster},
	}
}
