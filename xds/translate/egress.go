package translate

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// EgressOriginalDstCluster reaches the address a workload dialled: the
// destination of egress matched by address range, or by a wildcard host.
// Egress cluster names start with "egress|", which no mesh cluster's does
// (out|, in|, passthrough, blackhole, self-admin), and a host's cluster
// name has two "|" (a host name has none), so none collides with this one.
const EgressOriginalDstCluster = "egress|original-dst"

// EgressClusterName names the cluster of an egress host (not a wildcard) on
// a port.
func EgressClusterName(host string, port int32) string {
	return "egress|" + host + "|" + strconv.Itoa(int(port))
}

// egress adds the chains and clusters of the destinations outside the mesh
// the group may reach (its Egresses, merged by the model), to the outbound
// listener l; matched holds the address:port matches the mesh's chains
// took, which an egress range of one address leaves to them. The listener's
// default chain refuses everything else.
func (t *translator) egress(l *listenerv3.Listener, matched map[string]bool) {
	if len(t.view.Egress) == 0 {
		return
	}
	original := false
	var sniPorts []int32
	for _, ep := range t.view.Egress {
		var chains []*listenerv3.FilterChain
		var orig bool
		switch ep.Protocol {
		case policyv1alpha1.EgressProtocolHTTP:
			chains, orig = t.egressHTTP(ep)
		case policyv1alpha1.EgressProtocolHTTPS:
			chains, orig = t.egressHTTPS(ep, matched)
			if slices.ContainsFunc(chains, func(fc *listenerv3.FilterChain) bool { return len(fc.GetFilterChainMatch().GetServerNames()) > 0 }) {
				sniPorts = append(sniPorts, ep.Port)
			}
		default:
			if fc := t.egressRanges("egress|tcp|"+strconv.Itoa(int(ep.Port)), ep, matched); fc != nil {
				chains, orig = []*listenerv3.FilterChain{fc}, true
			}
		}
		l.FilterChains = append(l.FilterChains, chains...)
		original = original || orig
	}
	if original {
		t.out.Clusters = append(t.out.Clusters, sharedNamed(t, "egress-original-dst", EgressOriginalDstCluster, 0, func(*translator) *clusterv3.Cluster { return egressOriginalDst() }))
	}
	if len(sniPorts) > 0 {
		t.inspectTLS(l, sniPorts)
	}
}

// egressHTTP is the chain of an http egress port: an HTTP connection
// manager whose virtual hosts are the hosts (the Host header, its port
// ignored), each routed to its cluster; a request for any other host gets
// 404. Hosts are DNS names (the model leaves wildcards out), each reached
// by its own name, so the chain uses no original destination.
func (t *translator) egressHTTP(ep mesh.EgressPort) ([]*listenerv3.FilterChain, bool) {
	name := "egress|http|" + strconv.Itoa(int(ep.Port))
	rc := &routev3.RouteConfiguration{Name: name, IgnorePortInHostMatching: true}
	for _, h := range ep.Hosts {
		if !h.AllowAll && len(h.HTTP) == 0 {
			continue // its HTTPRouteGroups match nothing
		}
		routes := egressRoutes(h, t.egressHostCluster(h, ep.Port))
		rc.VirtualHosts = append(rc.VirtualHosts, &routev3.VirtualHost{Name: h.Name, Domains: []string{h.Name}, Routes: routes})
	}
	if len(rc.VirtualHosts) == 0 {
		return nil, false
	}
	fc := &listenerv3.FilterChain{
		Name:             name,
		FilterChainMatch: &listenerv3.FilterChainMatch{DestinationPort: wrapperspb.UInt32(uint32(ep.Port))},
		Filters: []*listenerv3.Filter{t.httpConnectionManager(name, meshHTTP(t.observe(&hcmv3.HttpConnectionManager{
			RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: rc},
		}, nil)), nil)},
	}
	return []*listenerv3.FilterChain{fc}, false
}

// egressRoutes are the routes of an egress host: every request when some
// Egress allows all, else those its HTTPRouteGroups' matches describe.
func egressRoutes(h mesh.EgressHost, cluster string) []*routev3.Route {
	action := &routev3.Route_Route{Route: meshRoute(toCluster(cluster))}
	if h.AllowAll {
		return []*routev3.Route{{Match: prefixAll(), Action: action}}
	}
	out := make([]*routev3.Route, 0, len(h.HTTP))
	for _, m := range h.HTTP {
		rm := prefixAll()
		if m.PathRegex != "" {
			rm.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: regex(m.PathRegex).GetSafeRegex()}
		}
		if len(m.Methods) > 0 {
			rm.Headers = append(rm.Headers, &routev3.HeaderMatcher{Name: ":method", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{
				StringMatch: regex(strings.Join(m.Methods, "|")),
			}})
		}
		for _, k := range sortedKeys(m.Headers) {
			rm.Headers = append(rm.Headers, &routev3.HeaderMatcher{Name: k, HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: regex(m.Headers[k])}})
		}
		out = append(out, &routev3.Route{Match: rm, Action: action})
	}
	return out
}

// egressHTTPS are the chains of an https egress port: one per host,
// matched by the TLS server name (SNI) and proxied, still encrypted, to the
// host's cluster; and one for the address ranges, to the address dialled.
// It says whether one uses the original destination.
func (t *translator) egressHTTPS(ep mesh.EgressPort, matched map[string]bool) ([]*listenerv3.FilterChain, bool) {
	prefix := "egress|https|" + strconv.Itoa(int(ep.Port))
	var chains []*listenerv3.FilterChain
	for _, h := range ep.Hosts {
		cluster := t.egressHostCluster(h, ep.Port)
		chains = append(chains, &listenerv3.FilterChain{
			Name:             prefix + "|" + h.Name,
			FilterChainMatch: &listenerv3.FilterChainMatch{DestinationPort: wrapperspb.UInt32(uint32(ep.Port)), ServerNames: []string{h.Name}},
			Filters:          []*listenerv3.Filter{t.tcpProxy(cluster, []weighted{{cluster, 1}})},
		})
	}
	original := false
	if len(ep.Ranges) > 0 {
		if fc := t.egressRanges(prefix+"|ranges", ep, matched); fc != nil {
			original = true
			chains = append(chains, fc)
		}
	}
	return chains, original
}

// egressRanges is the chain of a port's address ranges (every address with
// AnyAddress), proxied to the address dialled; nil when the mesh's chains
// took every range.
func (t *translator) egressRanges(name string, ep mesh.EgressPort, matched map[string]bool) *listenerv3.FilterChain {
	m := &listenerv3.FilterChainMatch{DestinationPort: wrapperspb.UInt32(uint32(ep.Port))}
	if !ep.AnyAddress {
		for _, r := range ep.Ranges {
			if r.IsSingleIP() && matched[netip.AddrPortFrom(r.Addr(), uint16(ep.Port)).String()] {
				continue // a mesh service's address: its chain takes it
			}
			m.PrefixRanges = append(m.PrefixRanges, &corev3.CidrRange{AddressPrefix: r.Addr().String(), PrefixLen: wrapperspb.UInt32(uint32(r.Bits()))})
		}
		if len(m.PrefixRanges) == 0 {
			return nil
		}
	}
	return &listenerv3.FilterChain{
		Name:             name,
		FilterChainMatch: m,
		Filters:          []*listenerv3.Filter{t.tcpProxy(EgressOriginalDstCluster, []weighted{{EgressOriginalDstCluster, 1}})},
	}
}

// egressHostCluster adds the cluster of an egress host and returns its
// name.
func (t *translator) egressHostCluster(h mesh.EgressHost, port int32) string {
	name := EgressClusterName(h.Name, port)
	t.out.Clusters = append(t.out.Clusters, sharedNamed(t, "egress-dns", h.Name, port, func(*translator) *clusterv3.Cluster { return egressDNSCluster(name, h.Name, port) }))
	return name
}

// egressDNSCluster reaches an egress host by the name itself, resolved by
// the proxy: the destination is what the name resolves to, whatever address
// the workload dialled, so a Host header or a server name cannot take a
// connection elsewhere.
//
// LOGICAL_DNS rather than STRICT_DNS: hosts outside the mesh are typically
// large services behind DNS that rotates many addresses (CDNs, cloud APIs).
// STRICT_DNS makes a host of every address of every answer and drains the
// connections of those that leave it, churning pools at each refresh;
// LOGICAL_DNS keeps one logical host whose new connections go to the
// latest answer's first address, and existing connections live on, as
// Envoy's documentation recommends for large web services. Envoy requires
// exactly one endpoint of it (envoyrules checks that).
func egressDNSCluster(name, host string, port int32) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_LOGICAL_DNS},
		ConnectTimeout:       durationpb.New(connectTimeout),
		DnsLookupFamily:      clusterv3.Cluster_V4_PREFERRED,
		RespectDnsTtl:        true,
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: socketAddress(host, port)}},
			}}}},
		},
	}
}

// egressOriginalDst is EgressOriginalDstCluster: ORIGINAL_DST takes the
// CLUSTER_PROVIDED policy and no load assignment.
func egressOriginalDst() *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 EgressOriginalDstCluster,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST},
		LbPolicy:             clusterv3.Cluster_CLUSTER_PROVIDED,
		ConnectTimeout:       durationpb.New(connectTimeout),
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
