package translate

import (
	"strconv"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// CertificateProviderInstance is the name of the certificate provider a
// proxyless gRPC application's bootstrap must define (a file watcher over its
// identity Secret).
const CertificateProviderInstance = "mesh"

// GRPCListenerName is the listener a gRPC client asks for when it dials
// xds:///<service>.<namespace>.svc.cluster.local:<port>.
func GRPCListenerName(s *mesh.Service, port int32) string {
	return s.FQDN() + ":" + strconv.Itoa(int(port))
}

// grpcClient builds what a proxyless gRPC client needs: an API listener, a
// route and an EDS cluster per service port it may call. gRPC takes its TLS
// material from certificate providers, not SDS, so its clusters name those.
func (t *translator) grpcClient() {
	for _, s := range t.view.Outbound {
		for _, p := range s.Ports {
			name := GRPCListenerName(s, p.Port)
			// The route is inline: go-control-plane's snapshot consistency
			// check does not follow RDS names out of API listeners.
			hcm := &hcmv3.HttpConnectionManager{
				RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: singleRoute(name, prefixAll(), routeAction(t.clusterTargets(s, p)))},
			}
			// The connection manager only carries the filters and routes of an
			// API listener; its stat prefix and codec mean nothing to gRPC.
			f := t.httpConnectionManager(name, hcm, nil)
			t.out.Listeners = append(t.out.Listeners, &listenerv3.Listener{
				Name:        name,
				ApiListener: &listenerv3.ApiListener{ApiListener: f.GetTypedConfig()},
			})
			t.out.Clusters = append(t.out.Clusters, sharedResource(t, "grpc-cluster", s, p, func(t *translator) *clusterv3.Cluster { return t.grpcCluster(s, p) }))
			t.out.Endpoints = append(t.out.Endpoints, sharedResource(t, "endpoints", s, p, func(*translator) *endpointv3.ClusterLoadAssignment { return endpoints(s, p) }))
		}
	}
}

func (t *translator) grpcCluster(s *mesh.Service, p mesh.Port) *clusterv3.Cluster {
	name := OutboundClusterName(s.Key, p.Port)
	var sans []*matcherv3.StringMatcher
	for _, id := range s.Identities {
		sans = append(sans, exact(id.SPIFFE(t.view.Mesh.TrustDomain)))
	}
	provider := &tlsv3.CertificateProviderPluginInstance{InstanceName: CertificateProviderInstance}
	tls := &tlsv3.UpstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
		TlsCertificateProviderInstance: provider,
		ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			CaCertificateProviderInstance: provider,
			MatchSubjectAltNames:          sans,
		}},
	}}
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource(), ServiceName: name},
		ConnectTimeout:       durationpb.New(connectTimeout),
		LbPolicy:             clusterv3.Cluster_ROUND_ROBIN,
		TransportSocket: &corev3.TransportSocket{
			Name:       "envoy.transport_sockets.tls",
			ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: t.any(tls)},
		},
	}
}
