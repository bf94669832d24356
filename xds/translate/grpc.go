package translate

import (
	"fmt"
	"net"
	"strconv"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// CertificateProviderInstance is the name of the certificate provider a
// proxyless gRPC application's bootstrap must define (a file watcher over its
// identity Secret).
const CertificateProviderInstance = "mesh"

// GRPCListenerName is the listener a gRPC client of mesh m asks for when it
// dials xds:///<service>.<namespace>.svc.<cluster domain>:<port>.
func GRPCListenerName(m *mesh.Mesh, s mesh.ServiceKey, port int32) string {
	return m.FQDN(s) + ":" + strconv.Itoa(int(port))
}

// grpcClient builds what a proxyless gRPC client needs: an API listener, a
// route and an EDS cluster per service port it may call. gRPC takes its TLS
// material from certificate providers, not SDS, so its clusters name those.
func (t *translator) grpcClient() {
	for _, s := range t.view.Outbound {
		for _, p := range s.Ports {
			name := GRPCListenerName(t.view.Mesh, s.Key, p.Port)
			// The route is inline: go-control-plane's snapshot consistency
			// check does not follow RDS names out of API listeners.
			res := t.view.Mesh.Resilience(s.Key, p.Port)
			a := routeAction(t.clusterTargets(s, p))
			a.HashPolicy = hashPolicy(res)
			if r := t.callerRetry(s.Key); r != nil {
				a.RetryPolicy = callerRetryPolicy(r, 0, true)
			}
			rc := singleRoute(name, prefixAll(), a)
			if table := t.routes(s, p); table != nil {
				rc = t.routeTable(name, table, true)
			}
			hcm := &hcmv3.HttpConnectionManager{RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: rc}}
			// The connection manager only carries the filters and routes of an
			// API listener; its stat prefix and codec mean nothing to gRPC.
			f := t.httpConnectionManager(name, hcm, t.grpcFaults(res, rc, s.Key, p.Port))
			t.out.Listeners = append(t.out.Listeners, &listenerv3.Listener{
				Name:        name,
				ApiListener: &listenerv3.ApiListener{ApiListener: f.GetTypedConfig()},
			})
			t.out.Clusters = append(t.out.Clusters, sharedResource(t, "grpc-cluster", s, p, func(t *translator) *clusterv3.Cluster { return t.grpcCluster(s, p) }))
			t.out.Endpoints = append(t.out.Endpoints, sharedResource(t, "grpc-endpoints", s, p, func(*translator) *endpointv3.ClusterLoadAssignment { return grpcEndpoints(s, p) }))
		}
	}
}

func (t *translator) grpcCluster(s *mesh.Service, p mesh.Port) *clusterv3.Cluster {
	name := OutboundClusterName(s.Key, p.Port)
	var sans []*matcherv3.StringMatcher
	for _, id := range s.PeerIdentities {
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
	c := &clusterv3.Cluster{
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
	t.resilientCluster(c, t.view.Mesh.Resilience(s.Key, p.Port), p.Protocol, true)
	return c
}

// GRPCServerListenerTemplate is the server_listener_resource_name_template
// of a proxyless gRPC server's bootstrap (grpc-go's default): a server
// listening on host:port asks for the listener named with that address.
const GRPCServerListenerTemplate = "grpc/server?xds.resource.listening_address=%s"

// grpcServerHosts are the addresses a meshed gRPC server listens on: every
// interface, as a pod's server does.
var grpcServerHosts = []string{"0.0.0.0", "::"}

// GRPCServerListenerName is the listener a gRPC server created with
// xds.NewGRPCServer asks for when it listens on host:port.
func GRPCServerListenerName(host string, port int32) string {
	return fmt.Sprintf(GRPCServerListenerTemplate, net.JoinHostPort(host, strconv.Itoa(int(port))))
}

// grpcServer builds what a proxyless gRPC server needs, per port its group
// serves: a listener requiring mutual TLS (certificate providers again) and
// enforcing the same SMI RBAC rules as an Envoy sidecar's inbound listener,
// its route handing every call to the application. grpc-go drops a filter
// chain that matches a transport protocol other than raw_buffer, or
// application protocols, so it cannot tell plaintext from TLS on a port:
// plaintextFromOutsideMesh does not apply, and the addresses of an http
// IngressBackend's sources get a plaintext chain of their own, by source
// address (grpcIngressChain).
func (t *translator) grpcServer() {
	for _, ip := range t.servedPorts() {
		for _, host := range grpcServerHosts {
			name := GRPCServerListenerName(host, ip.TargetPort)
			chains := []*listenerv3.FilterChain{{
				Name:            name,
				Filters:         []*listenerv3.Filter{t.httpConnectionManager(name, grpcServerHCM(name), t.httpRBAC(name, ip.TargetPort))},
				TransportSocket: t.grpcServerTLS(),
			}}
			if fc := t.grpcIngressChain(name+"|plaintext", ip.TargetPort); fc != nil {
				chains = append(chains, fc)
			}
			t.out.Listeners = append(t.out.Listeners, &listenerv3.Listener{
				Name:             name,
				Address:          socketAddress(host, ip.TargetPort),
				TrafficDirection: corev3.TrafficDirection_INBOUND,
				FilterChains:     chains,
			})
		}
	}
}

// grpcServerHCM hands every call to the application.
func grpcServerHCM(name string) *hcmv3.HttpConnectionManager {
	route := &routev3.RouteConfiguration{Name: name, VirtualHosts: []*routev3.VirtualHost{{
		Name: name, Domains: []string{"*"},
		Routes: []*routev3.Route{{Match: prefixAll(), Action: &routev3.Route_NonForwardingAction{NonForwardingAction: &routev3.NonForwardingAction{}}}},
	}}}
	return &hcmv3.HttpConnectionManager{RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: route}}
}

// grpcIngressChain is the plaintext chain of a gRPC server's port for its
// http IngressBackends' sources, matched by their addresses (a mesh peer
// calling from one of them is taken for one), or nil.
func (t *translator) grpcIngressChain(name string, port int32) *listenerv3.FilterChain {
	rules := t.view.IngressTo(port)
	rbac := ingressRBAC(rules, false, true)
	if rbac == nil {
		return nil
	}
	var ranges []*corev3.CidrRange
	for _, r := range rules {
		if r.Target.TLS || r.Policy.AllowsNothing(r.Target) || r.Policy.AnyAddress {
			continue
		}
		for _, p := range r.Policy.Addresses {
			ranges = append(ranges, &corev3.CidrRange{AddressPrefix: p.Addr().String(), PrefixLen: wrapperspb.UInt32(uint32(p.Bits()))})
		}
	}
	return &listenerv3.FilterChain{
		Name:             name,
		FilterChainMatch: &listenerv3.FilterChainMatch{SourcePrefixRanges: uniqueRanges(ranges)},
		Filters:          []*listenerv3.Filter{t.httpConnectionManager(name, grpcServerHCM(name), t.httpRBACFilter(name, rbac))},
	}
}

// uniqueRanges drops repeated ranges (two policies naming one address).
func uniqueRanges(rs []*corev3.CidrRange) []*corev3.CidrRange {
	seen := map[string]bool{}
	var out []*corev3.CidrRange
	for _, r := range rs {
		k := r.GetAddressPrefix() + "/" + strconv.Itoa(int(r.GetPrefixLen().GetValue()))
		if !seen[k] {
			seen[k] = true
			out = append(out, r)
		}
	}
	return out
}

// grpcServerTLS requires a client certificate of the mesh, from the
// certificate provider of the server's bootstrap.
func (t *translator) grpcServerTLS() *corev3.TransportSocket {
	provider := &tlsv3.CertificateProviderPluginInstance{InstanceName: CertificateProviderInstance}
	return &corev3.TransportSocket{
		Name: "envoy.transport_sockets.tls",
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: t.any(&tlsv3.DownstreamTlsContext{
			RequireClientCertificate: wrapperspb.Bool(true),
			CommonTlsContext: &tlsv3.CommonTlsContext{
				TlsCertificateProviderInstance: provider,
				ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
					CaCertificateProviderInstance: provider,
				}},
			},
		})},
	}
}
