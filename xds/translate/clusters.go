package translate

import (
	"slices"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

const connectTimeout = 5 * time.Second

// outboundCluster is the EDS cluster of a service port, reached with mutual
// TLS and accepting only the identities that run the service.
func (t *translator) outboundCluster(s *mesh.Service, p mesh.Port) *clusterv3.Cluster {
	name := OutboundClusterName(s.Key, p.Port)
	c := &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource(), ServiceName: name},
		ConnectTimeout:       durationpb.New(connectTimeout),
		LbPolicy:             clusterv3.Cluster_ROUND_ROBIN,
		TransportSocket:      t.upstreamTLS(s, p),
	}
	if p.Protocol == mesh.ProtocolGRPC || p.Protocol == mesh.ProtocolHTTP2 {
		c.TypedExtensionProtocolOptions = t.http2Options()
	}
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
	}
	if p.Protocol == mesh.ProtocolGRPC || p.Protocol == mesh.ProtocolHTTP2 {
		c.TypedExtensionProtocolOptions = t.http2Options()
	}
	return c
}

// upstreamTLS is the client side of mutual TLS towards a service: our identity
// certificate, the mesh trust bundle, and the service's SPIFFE IDs as the only
// acceptable server identities.
func (t *translator) upstreamTLS(s *mesh.Service, p mesh.Port) *corev3.TransportSocket {
	var sans []*tlsv3.SubjectAltNameMatcher
	for _, id := range s.Identities {
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
	if p.Protocol == mesh.ProtocolGRPC || p.Protocol == mesh.ProtocolHTTP2 {
		common.AlpnProtocols = []string{"h2"}
	}
	return &corev3.TransportSocket{
		Name:       "envoy.transport_sockets.tls",
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: t.any(&tlsv3.UpstreamTlsContext{CommonTlsContext: common, Sni: s.FQDN()})},
	}
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
	return map[string]*anypb.Any{
		"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": t.any(&httpv3.HttpProtocolOptions{
			UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{
				ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
					ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
						Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
					},
				},
			},
		}),
	}
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

// endpoints are the serving endpoints of a service port, one locality per
// zone, weighted by its endpoint count. Ready endpoints are healthy; serving
// but not ready ones (terminating) are degraded, used only when no healthy
// endpoint is left.
func endpoints(s *mesh.Service, p mesh.Port) *endpointv3.ClusterLoadAssignment {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: OutboundClusterName(s.Key, p.Port)}
	byZone := map[string]*endpointv3.LocalityLbEndpoints{}
	for _, e := range s.Endpoints {
		port, ok := e.Ports[p.Name]
		if !ok || !e.Serving {
			continue
		}
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
		loc.LbEndpoints = append(loc.LbEndpoints, &endpointv3.LbEndpoint{
			HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: socketAddress(e.Address, port)}},
			HealthStatus:   health,
		})
	}
	for _, loc := range cla.Endpoints {
		loc.LoadBalancingWeight = wrapperspb.UInt32(uint32(len(loc.LbEndpoints)))
	}
	slices.SortFunc(cla.Endpoints, func(a, b *endpointv3.LocalityLbEndpoints) int {
		return strings.Compare(a.GetLocality().GetZone(), b.GetLocality().GetZone())
	})
	return cla
}
