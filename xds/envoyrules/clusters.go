package envoyrules

import (
	"fmt"
	"slices"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	rawbufferv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

const httpOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// cluster checks a cluster.
func (c *Checker) cluster(cl *clusterv3.Cluster) *facts {
	return c.cached(cl, func(f *facts) {
		name := cl.GetName()
		typ := cl.GetType()
		if cl.GetClusterType() != nil {
			f.fail("cluster", name, "clusters are of a built-in type", "custom cluster types are not part of the mesh")
		}
		if cl.GetConnectTimeout().AsDuration() <= 0 {
			f.fail("cluster", name, "a cluster's connect timeout is above zero", "proto validation: connect_timeout must be greater than 0s")
		}
		switch {
		case typ == clusterv3.Cluster_ORIGINAL_DST && cl.GetLbPolicy() != clusterv3.Cluster_CLUSTER_PROVIDED:
			f.fail("cluster", name, "an ORIGINAL_DST cluster's LB policy is CLUSTER_PROVIDED",
				fmt.Sprintf("\"cluster: LB policy %s is not valid for Cluster type ORIGINAL_DST. Only 'CLUSTER_PROVIDED' is allowed with cluster type 'ORIGINAL_DST'\" (source/extensions/clusters/original_dst/original_dst_cluster.cc)", cl.GetLbPolicy()))
		case typ != clusterv3.Cluster_ORIGINAL_DST && cl.GetLbPolicy() == clusterv3.Cluster_CLUSTER_PROVIDED:
			f.fail("cluster", name, "only a cluster that provides a load balancer has the CLUSTER_PROVIDED policy",
				fmt.Sprintf("\"cluster manager: cluster provided LB specified but cluster '%s' did not provide one. Check cluster documentation.\" (source/common/upstream/cluster_manager_impl.cc)", name))
		}
		if typ == clusterv3.Cluster_ORIGINAL_DST && cl.GetLoadAssignment() != nil {
			f.fail("cluster", name, "an ORIGINAL_DST cluster has no load assignment", "\"ORIGINAL_DST clusters must have no load assignment configured\" (source/extensions/clusters/original_dst/original_dst_cluster.cc)")
		}
		if typ != clusterv3.Cluster_EDS && cl.GetEdsClusterConfig() != nil {
			f.fail("cluster", name, "only an EDS cluster has an EDS config", "\"eds_cluster_config set in a non-EDS cluster\" (source/common/upstream/cluster_factory_impl.cc)")
		}
		switch typ {
		case clusterv3.Cluster_EDS:
			eds := cl.GetEdsClusterConfig()
			if eds.GetEdsConfig().GetAds() == nil {
				f.fail("cluster", name, "an EDS cluster loads its endpoints over ADS", "the mesh's proxies have no other xDS source")
			}
			n := eds.GetServiceName()
			if n == "" {
				n = name
			}
			f.eds = append(f.eds, n)
			if cl.GetLoadAssignment() != nil {
				f.fail("cluster", name, "an EDS cluster's endpoints come from EDS", "its load_assignment is ignored")
			}
		case clusterv3.Cluster_STATIC, clusterv3.Cluster_STRICT_DNS, clusterv3.Cluster_LOGICAL_DNS:
			la := cl.GetLoadAssignment()
			hosts := 0
			for _, l := range la.GetEndpoints() {
				hosts += len(l.GetLbEndpoints())
			}
			if hosts == 0 && !slices.Contains(c.opts.Blackholes, name) {
				f.fail("cluster", name, "a "+typ.String()+" cluster has endpoints", "it loads with no host: every request gets 503, every connection is closed (source/common/upstream/upstream_impl.cc)")
			}
			if la != nil && la.GetClusterName() == "" {
				f.fail("cluster", name, "a load assignment names its cluster", "proto validation: cluster_name must be at least 1 byte")
			}
			if typ == clusterv3.Cluster_LOGICAL_DNS && (len(la.GetEndpoints()) != 1 || len(la.GetEndpoints()[0].GetLbEndpoints()) != 1) {
				f.fail("cluster", name, "a LOGICAL_DNS cluster has one locality of one endpoint",
					"\"LOGICAL_DNS clusters must have a single locality_lb_endpoint and a single lb_endpoint\" (source/extensions/clusters/logical_dns/logical_dns_cluster.cc)")
			}
			if typ != clusterv3.Cluster_STATIC {
				dnsEndpoints(name, la, f)
			}
		}
		sockets := c.upstreamSockets(name, cl, f)
		c.httpOptions(name, cl, sockets, f)
	})
}

// sockets are what a cluster's transport sockets offer, for its HTTP
// options: the ALPN of each TLS one, and whether any is not TLS.
type sockets struct {
	alpn  [][]string
	plain bool
}

// upstreamSockets checks a cluster's transport sockets: its default one and
// those of its transport socket matches, which Envoy loads alike
// (source/common/upstream/transport_socket_match_impl.cc: each match's socket
// is a registered upstream transport socket, its config decoded and built
// when the cluster loads). A cluster without a socket, or a match's raw
// buffer, is plaintext.
func (c *Checker) upstreamSockets(name string, cl *clusterv3.Cluster, f *facts) sockets {
	var s sockets
	add := func(where string, ts *corev3.TransportSocket, matched bool) {
		alpn, tls := c.upstreamSocket(name, where, ts, matched, f)
		if tls {
			s.alpn = append(s.alpn, alpn)
		} else {
			s.plain = true
		}
	}
	add("its transport socket", cl.GetTransportSocket(), false)
	for _, m := range cl.GetTransportSocketMatches() {
		where := fmt.Sprintf("the socket of its transport socket match %q", m.GetName())
		if m.GetTransportSocket() == nil {
			f.fail("cluster", name, where+" is set", "\"Provided name for static registration lookup was empty.\" (source/common/config/utility.h): a match has no default socket")
			continue
		}
		add(where, m.GetTransportSocket(), true)
	}
	return s
}

// upstreamSocket checks one transport socket of a cluster and returns the
// ALPN it offers ([] when none) and whether it is TLS; nil is plaintext.
// Only a match's socket may be a RawBuffer: a cluster's default socket is
// TLS or none (a plaintext cluster), so that an endpoint no match selects
// gets the mesh's mutual TLS, never plaintext by a default set by mistake.
func (c *Checker) upstreamSocket(name, where string, ts *corev3.TransportSocket, matched bool, f *facts) ([]string, bool) {
	if ts == nil {
		return nil, false
	}
	msg, err := c.unpack(ts.GetTypedConfig())
	if err != nil {
		f.fail("cluster", name, where+" decodes: "+err.Error(), "the cluster is refused")
		return nil, false
	}
	switch u := msg.(type) {
	case *rawbufferv3.RawBuffer:
		if !matched {
			f.fail("cluster", name, where+" is an UpstreamTlsContext (a plaintext cluster has none)", "a cluster's default socket decides the endpoints no match selects: the mesh's are mutual TLS")
		}
		return nil, false
	case *tlsv3.UpstreamTlsContext:
		common := u.GetCommonTlsContext()
		c.tlsVersions("cluster", name, where, common.GetTlsParams(), clientDefaults, f)
		c.commonTLS("cluster", name, where, common, f)
		if len(common.GetAlpnProtocols()) == 0 {
			return []string{}, true
		}
		return common.GetAlpnProtocols(), true
	default:
		f.fail("cluster", name, where+" is an UpstreamTlsContext or a RawBuffer", "no other upstream transport socket is part of the mesh")
		return nil, false
	}
}

// httpOptions checks a cluster's HTTP protocol options against the ALPN its
// TLS sockets offer.
func (c *Checker) httpOptions(name string, cl *clusterv3.Cluster, s sockets, f *facts) {
	for k := range cl.GetTypedExtensionProtocolOptions() {
		if k != httpOptionsKey {
			f.fail("cluster", name, "protocol options are HTTP ones: "+k+" is not", "\"Didn't find a registered network or http filter or protocol options implementation for name: '"+k+"'\"")
		}
	}
	a, ok := cl.GetTypedExtensionProtocolOptions()[httpOptionsKey]
	if !ok {
		if slices.ContainsFunc(s.alpn, onlyH2) {
			f.fail("cluster", name, "a cluster that offers only h2 in ALPN speaks HTTP/2", "its codec is HTTP/1.1 unless HTTP/2 options say otherwise: the server answers h2 frames to an HTTP/1.1 client")
		}
		return
	}
	msg, err := c.unpack(a)
	o, ok := msg.(*httpv3.HttpProtocolOptions)
	if err != nil || !ok {
		f.fail("cluster", name, fmt.Sprintf("its HTTP protocol options decode as HttpProtocolOptions: %v", err), "the cluster is refused")
		return
	}
	switch {
	case o.GetAutoConfig() != nil && s.plain:
		// Every socket, the matches' too (allMatchesSupportAlpn).
		f.fail("cluster", name, "a cluster that picks its HTTP version by ALPN has TLS on all its transport sockets",
			fmt.Sprintf("\"ALPN configured for cluster %s which has a non-ALPN transport socket\" (source/common/upstream/upstream_impl.cc)", name))
	case o.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil && slices.ContainsFunc(s.alpn, func(a []string) bool { return len(a) > 0 && !slices.Contains(a, "h2") }):
		f.fail("cluster", name, "a cluster that speaks HTTP/2 over TLS offers h2 in ALPN", "the server picks HTTP/1.1 and every request fails")
	case o.GetExplicitHttpConfig().GetHttpProtocolOptions() != nil && slices.ContainsFunc(s.alpn, onlyH2):
		f.fail("cluster", name, "a cluster that speaks HTTP/1.1 over TLS offers http/1.1 in ALPN", "the server picks h2 and every request fails")
	}
}

// onlyH2 says whether an ALPN list offers h2 and not HTTP/1.1.
func onlyH2(alpn []string) bool {
	return slices.Contains(alpn, "h2") && !slices.Contains(alpn, "http/1.1")
}

// dnsEndpoints checks the endpoints of a STRICT_DNS or LOGICAL_DNS cluster
// as Envoy reads them (source/extensions/clusters/strict_dns/strict_dns_cluster.cc,
// logical_dns/logical_dns_cluster.cc): each endpoint's socket address is
// resolved by the cluster's resolver, by name, and dialled at its port.
func dnsEndpoints(name string, la *endpointv3.ClusterLoadAssignment, f *facts) {
	for _, l := range la.GetEndpoints() {
		for _, e := range l.GetLbEndpoints() {
			sa := e.GetEndpoint().GetAddress().GetSocketAddress()
			switch {
			case sa.GetResolverName() != "":
				f.fail("cluster", name, "a DNS cluster's endpoints name no custom resolver",
					"\"STRICT_DNS clusters must NOT have a custom resolver name set\" (source/extensions/clusters/strict_dns/strict_dns_cluster.cc; logical_dns_cluster.cc alike)")
			case sa.GetAddress() == "" || strings.ContainsAny(sa.GetAddress(), "*/ "):
				f.fail("cluster", name, fmt.Sprintf("a DNS cluster's endpoint %q is a socket address with a host name the resolver can look up", sa.GetAddress()),
					"Envoy loads it and resolves the address as written: every resolution fails, the cluster never has a host and every request gets 503 (source/extensions/clusters/strict_dns/strict_dns_cluster.cc, ResolveTarget::startResolve)")
			case sa.GetPortValue() == 0:
				f.fail("cluster", name, fmt.Sprintf("a DNS cluster's endpoint %q has a port", sa.GetAddress()),
					"the resolved addresses are dialled at the endpoint's port_value, 0: every connection fails (strict_dns_cluster.cc, getAddressWithPort)")
			}
		}
	}
}
