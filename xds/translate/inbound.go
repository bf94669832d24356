package translate

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// inbound builds the inbound listener: mutual TLS with the mesh trust bundle
// required on every port the group's workloads serve, SMI policy enforced by
// RBAC, and a cluster to the local application behind each port. Traffic to
// other ports is refused, in a permissive mesh too: passing it through to its
// original destination, the pod's own address, would loop, since the
// sidecar's redirection sends the proxy's connections to its own pod back to
// this listener (webhooks/inject, OSM_PROXY_OUTBOUND).
//
// The listener has no TLS inspector: no chain matches on what it finds, and
// it would hold every plaintext connection of a server-first protocol until
// its timeout.
func (t *translator) inbound() {
	l := t.listener(InboundListener, mesh.InboundListenerPort, corev3.TrafficDirection_INBOUND)
	l.ListenerFilters = []*listenerv3.ListenerFilter{t.originalDst()}
	for _, ip := range t.servedPorts() {
		name := InboundClusterName(ip.TargetPort)
		t.out.Clusters = append(t.out.Clusters, t.localCluster(name, ip.TargetPort, ip.Port.Protocol))
		fc := &listenerv3.FilterChain{
			Name:             name,
			FilterChainMatch: &listenerv3.FilterChainMatch{DestinationPort: wrapperspb.UInt32(uint32(ip.TargetPort))},
			TransportSocket:  t.downstreamTLS(ip.Port.Protocol),
		}
		if ip.Port.Protocol.IsHTTP() {
			route := singleRoute(name, prefixAll(), meshRoute(toCluster(name)))
			fc.Filters = []*listenerv3.Filter{t.httpConnectionManager(name, meshHTTP(&hcmv3.HttpConnectionManager{
				RouteSpecifier:              &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: route},
				ForwardClientCertDetails:    hcmv3.HttpConnectionManager_SANITIZE_SET,
				SetCurrentClientCertDetails: &hcmv3.HttpConnectionManager_SetCurrentClientCertDetails{Uri: true},
			}), t.httpRBAC(name, ip.TargetPort))}
		} else {
			fc.Filters = []*listenerv3.Filter{}
			if f := t.networkRBAC(name, ip.TargetPort); f != nil {
				fc.Filters = append(fc.Filters, f)
			}
			fc.Filters = append(fc.Filters, t.tcpProxy(name, []weighted{{name, 1}}))
		}
		l.FilterChains = append(l.FilterChains, fc)
	}
	t.unmatched(l, false)
	t.out.Listeners = append(t.out.Listeners, l)
}

// servedPorts are the ports the group's workloads serve, each once: a
// target port backs several services (bookstore and bookstore-v1, say) and
// is served with the protocol of the first.
func (t *translator) servedPorts() []mesh.InboundPort {
	seen := map[int32]bool{}
	var out []mesh.InboundPort
	for _, s := range t.view.Inbound {
		for _, ip := range t.view.InboundPorts(s) {
			if !seen[ip.TargetPort] {
				seen[ip.TargetPort] = true
				out = append(out, ip)
			}
		}
	}
	return out
}

// downstreamTLS is the server side of mutual TLS: a client certificate signed
// by the mesh trust bundle is required.
func (t *translator) downstreamTLS(p mesh.Protocol) *corev3.TransportSocket {
	common := &tlsv3.CommonTlsContext{
		TlsParams:                      tlsParams(),
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: IdentitySecret, SdsConfig: adsSource()}},
		ValidationContextType: &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{
			ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: TrustBundleSecret, SdsConfig: adsSource()},
		},
	}
	if p.IsHTTP() {
		common.AlpnProtocols = []string{"h2", "http/1.1"}
	}
	return &corev3.TransportSocket{
		Name: "envoy.transport_sockets.tls",
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: t.any(&tlsv3.DownstreamTlsContext{
			CommonTlsContext:         common,
			RequireClientCertificate: wrapperspb.Bool(true),
		})},
	}
}

// meshHTTP completes the connection manager of mesh traffic: WebSocket
// upgrades pass, and a stream is never cut for being idle (Envoy's default
// is 5 minutes, which ends quiet gRPC and watch streams); the application
// decides how long its streams live, until a policy says otherwise.
func meshHTTP(hcm *hcmv3.HttpConnectionManager) *hcmv3.HttpConnectionManager {
	hcm.UpgradeConfigs = []*hcmv3.HttpConnectionManager_UpgradeConfig{{UpgradeType: "websocket"}}
	hcm.StreamIdleTimeout = durationpb.New(0)
	return hcm
}

// httpConnectionManager completes hcm (which names its routes) with the
// settings every HTTP filter chain shares; rbac, when not nil, runs before the
// router.
func (t *translator) httpConnectionManager(statPrefix string, hcm *hcmv3.HttpConnectionManager, rbac *hcmv3.HttpFilter) *listenerv3.Filter {
	hcm.StatPrefix = statPrefix
	hcm.CodecType = hcmv3.HttpConnectionManager_AUTO
	if rbac != nil {
		hcm.HttpFilters = append(hcm.HttpFilters, rbac)
	}
	hcm.HttpFilters = append(hcm.HttpFilters, &hcmv3.HttpFilter{
		Name:       "envoy.filters.http.router",
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: t.any(&routerv3.Router{})},
	})
	return &listenerv3.Filter{
		Name:       "envoy.filters.network.http_connection_manager",
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: t.any(hcm)},
	}
}
