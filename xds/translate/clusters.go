package translate

import (
	"slices"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	rawbufferv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

const connectTimeout = 5 * time.Second

// outboundCluster is the EDS cluster of a service port, reached with mutual
// TLS and accepting only the identities that run the service. Endpoints
// without a proxy (labelled so in EDS: see endpoints) are reached in
// plaintext, by the cluster's one transport socket match; a cluster only
// has it while it has such endpoints, so the common cluster is unchanged,
// and a roll that injects the last pod changes it once.
//
// Mutual TLS is the default socket, used for every endpoint the match does
// not select, so an endpoint is sent plaintext only when the control plane
// labelled it: a label lost or mistyped fails closed (a handshake the pod
// refuses), never open. Envoy matches the endpoint's metadata first, then
// its locality's, then falls back to the default
// (source/common/upstream/transport_socket_match_impl.cc); the localities
// carry none.
func (t *translator) outboundCluster(s *mesh.Service, p mesh.Port) *clusterv3.Cluster {
	name := OutboundClusterName(s.Key, p.Port)
	c := &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource(), ServiceName: name},
		ConnectTimeout:       durationpb.New(connectTimeout),
		LbPolicy:             clusterv3.Cluster_ROUND_ROBIN,
		TransportSocket:      t.upstreamTLS(s, p),
		AltStatName:          t.destinationStat(name, s),
	}
	if slices.ContainsFunc(s.Endpoints, func(e mesh.Endpoint) bool { return e.NoProxy && published(e, p) }) {
		c.TransportSocketMatches = []*clusterv3.Cluster_TransportSocketMatch{{
			Name:            noProxyMatch,
			Match:           noProxyLabels(),
			TransportSocket: t.plaintext(),
		}}
	}
	if p.Protocol == mesh.ProtocolGRPC || p.Protocol == mesh.ProtocolHTTP2 {
		c.TypedExtensionProtocolOptions = t.http2Options()
	}
	t.resilientCluster(c, t.view.Mesh.Resilience(s.Key, p.Port), p.Protocol, false)
	return c
}

// headlessCluster reaches the endpoint of a headless service port that the
// client dialled, with the same mutual TLS as outboundCluster.
func (t *translator) headlessCluster(s *mesh.Service, p mesh.Port) *clusterv3.Cluster {
	c := &clusterv3.Cluster{
		Name:                 OutboundClusterName(s.Key, p.Port),
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST},
		LbPolicy:             clusterv3.Cluster_CLUSTER_PROVIDED,
		ConnectTimeout:       durationpb.New(connectTimeout),
		TransportSocket:      t.upstreamTLS(s, p),
		AltStatName:          t.destinationStat(OutboundClusterName(s.Key, p.Port), s),
	}
	if p.Protocol == mesh.ProtocolGRPC || p.Protocol == mesh.ProtocolHTTP2 {
		c.TypedExtensionProtocolOptions = t.http2Options()
	}
	return c
}

// headlessPlainCluster reaches the endpoint without a proxy of a headless
// service port that the client dialled, in plaintext. An ORIGINAL_DST
// cluster's hosts are made from the address dialled and carry no metadata,
// so a transport socket match could never pick them: they get a cluster of
// their own, and the outbound listener a chain matching their addresses.
func headlessPlainCluster(s *mesh.Service, p mesh.Port) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 headlessPlainClusterName(s, p),
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST},
		LbPolicy:             clusterv3.Cluster_CLUSTER_PROVIDED,
		ConnectTimeout:       durationpb.New(connectTimeout),
	}
}

func headlessPlainClusterName(s *mesh.Service, p mesh.Port) string {
	return OutboundClusterName(s.Key, p.Port) + "|" + noProxyMatch
}

// Endpoints without a proxy are labelled in EDS under the filter metadata
// key that Envoy's transport socket matching reads; the cluster's match of
// the same name selects them.
const (
	transportSocketMatchKey = "envoy.transport_socket_match"
	noProxyMatch            = "no-proxy"
)

// noProxyLabels are the labels of an endpoint without a proxy, and the
// match's criteria: every one must be equal in the endpoint's metadata.
func noProxyLabels() *structpb.Struct {
	return &structpb.Struct{Fields: map[string]*structpb.Value{"proxy": structpb.NewStringValue("none")}}
}

// plaintext is the raw buffer socket: Envoy's default when a cluster has
// none, named here because a match must name its socket.
func (t *translator) plaintext() *corev3.TransportSocket {
	return &corev3.TransportSocket{
		Name:       "envoy.transport_sockets.raw_buffer",
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: t.any(&rawbufferv3.RawBuffer{})},
	}
}

// upstreamTLS is the client side of mutual TLS towards a service: our identity
// certificate, the mesh trust bundle, and the SPIFFE IDs of the service's
// peer identities (those of its endpoints with a proxy) as the only
// acceptable server identities.
func (t *translator) upstreamTLS(s *mesh.Service, p mesh.Port) *corev3.TransportSocket {
	var sans []*tlsv3.SubjectAltNameMatcher
	for _, id := range s.PeerIdentities {
		sans = append(sans, &tlsv3.SubjectAltNameMatcher{
			SanType: tlsv3.SubjectAltNameMatcher_URI,
			Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: id.SPIFFE(t.view.Mesh.TrustDomain)}},
		})
	}
	common := &tlsv3.CommonTlsContext{
		TlsParams:                      tlsParams(),
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: IdentitySecret, SdsConfig: adsSource()}},
		ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{
			CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
				DefaultValidationContext:         &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: sans},
				ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: TrustBundleSecret, SdsConfig: adsSource()},
			},
		},
	}
	common.AlpnProtocols = upstreamALPN(p.Protocol)
	return &corev3.TransportSocket{
		Name:       "envoy.transport_sockets.tls",
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: t.any(&tlsv3.UpstreamTlsContext{CommonTlsContext: common, Sni: t.view.Mesh.FQDN(s.Key)})},
	}
}

// upstreamALPN is what a proxy offers its mesh peer: MeshALPN, by which
// the peer's inbound listener tells it from a TLS caller outside the mesh
// (the peer negotiates none of it), and h2 to a port that speaks HTTP/2.
func upstreamALPN(p mesh.Protocol) []string {
	if p == mesh.ProtocolGRPC || p == mesh.ProtocolHTTP2 {
		return []string{MeshALPN, "h2"}
	}
	return []string{MeshALPN}
}

// tlsParams holds sidecar-to-sidecar mutual TLS to 1.3: both ends are the
// mesh's proxies, so nothing older needs to be spoken. Both ends are set:
// Envoy's default maximum is 1.2 for a client, so a minimum alone would make
// every connection fail.
func tlsParams() *tlsv3.TlsParameters {
	return &tlsv3.TlsParameters{
		TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_3,
		TlsMaximumProtocolVersion: tlsv3.TlsParameters_TLSv1_3,
	}
}

func (t *translator) http2Options() map[string]*anypb.Any {
	return t.protocolOptions(httpOptions(mesh.ProtocolHTTP2))
}

// protocolOptions packs a cluster's upstream HTTP protocol options.
func (t *translator) protocolOptions(o *httpv3.HttpProtocolOptions) map[string]*anypb.Any {
	return map[string]*anypb.Any{"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": t.any(o)}
}

// localCluster reaches the application in the proxy's own pod or VM.
func (t *translator) localCluster(name string, port int32, proto mesh.Protocol) *clusterv3.Cluster {
	c := &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(connectTimeout),
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: socketAddress("127.0.0.1", port)}},
			}}}},
		},
	}
	if proto == mesh.ProtocolGRPC || proto == mesh.ProtocolHTTP2 {
		c.TypedExtensionProtocolOptions = t.http2Options()
	}
	return c
}

// passthroughCluster forwards to the original destination, for allowed egress.
func passthroughCluster() *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 PassthroughCluster,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST},
		LbPolicy:             clusterv3.Cluster_CLUSTER_PROVIDED,
		ConnectTimeout:       durationpb.New(connectTimeout),
	}
}

// published says whether endpoint e of a service is one of port p's
// endpoints in EDS: it serves, on that port.
func published(e mesh.Endpoint, p mesh.Port) bool {
	_, ok := e.Ports[p.Name]
	return ok && e.Serving
}

// endpoints are the serving endpoints of a service port, one locality per
// zone, weighted by its endpoint count. Ready endpoints are healthy; serving
// but not ready ones (terminating) are degraded, used only when no healthy
// endpoint is left. An endpoint without a proxy carries the labels that
// the cluster's transport socket match selects (outboundCluster).
func endpoints(s *mesh.Service, p mesh.Port) *endpointv3.ClusterLoadAssignment {
	return endpointsOf(s, p, func(mesh.Endpoint) bool { return true })
}

// grpcEndpoints are the endpoints of a service port for a proxyless gRPC
// client: those with a proxy. grpc-go refuses a cluster with transport
// socket matches (its CDS validation, xdsresource), so it would speak
// mutual TLS to a pod that cannot answer it.
func grpcEndpoints(s *mesh.Service, p mesh.Port) *endpointv3.ClusterLoadAssignment {
	return endpointsOf(s, p, func(e mesh.Endpoint) bool { return !e.NoProxy })
}

func endpointsOf(s *mesh.Service, p mesh.Port, keep func(mesh.Endpoint) bool) *endpointv3.ClusterLoadAssignment {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: OutboundClusterName(s.Key, p.Port)}
	byZone := map[string]*endpointv3.LocalityLbEndpoints{}
	for _, e := range s.Endpoints {
		if !published(e, p) || !keep(e) {
			continue
		}
		port := e.Ports[p.Name]
		health := corev3.HealthStatus_HEALTHY
		if !e.Ready || e.Terminating {
			health = corev3.HealthStatus_DEGRADED
		}
		loc := byZone[e.Zone]
		if loc == nil {
			// gRPC requires a locality and a weight on each; Envoy uses the
			// zone for zone-aware routing and ignores the weight.
			loc = &endpointv3.LocalityLbEndpoints{Locality: &corev3.Locality{Zone: e.Zone}}
			byZone[e.Zone] = loc
			cla.Endpoints = append(cla.Endpoints, loc)
		}
		lb := &endpointv3.LbEndpoint{
			HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: socketAddress(e.Address, port)}},
			HealthStatus:   health,
		}
		if e.NoProxy {
			lb.Metadata = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{transportSocketMatchKey: noProxyLabels()}}
		}
		loc.LbEndpoints = append(loc.LbEndpoints, lb)
	}
	for _, loc := range cla.Endpoints {
		loc.LoadBalancingWeight = wrapperspb.UInt32(uint32(len(loc.LbEndpoints)))
	}
	slices.SortFunc(cla.Endpoints, func(a, b *endpointv3.LocalityLbEndpoints) int {
		return strings.Compare(a.GetLocality().GetZone(), b.GetLocality().GetZone())
	})
	return cla
}
