package translate

import (
	"maps"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// MeshALPN is the ALPN token mesh proxies offer their peers (see
// upstreamALPN). On a port that also takes TLS from callers outside the
// mesh (an https IngressBackend), the mesh's chain matches it.
const MeshALPN = "osm-mesh"

// Transport protocols as Envoy's TLS inspector sets them.
const (
	transportTLS       = "tls"
	transportPlaintext = "raw_buffer"
)

// inspectorTimeout bounds how long the TLS inspector waits for a caller's
// first bytes (on a port that accepts plaintext inbound, an https egress
// port outbound); then the connection goes on without them (as plaintext
// inbound, to a chain that needs no server name outbound), so a
// server-first protocol (the caller waits for the server to speak) is
// delayed, not refused.
const inspectorTimeout = 5 * time.Second

// inbound builds the inbound listener: mutual TLS with the mesh trust bundle
// on every port the group's workloads serve, SMI policy enforced by RBAC,
// and a cluster to the local application behind each port. A port may also
// take callers outside the mesh (inboundChains). Traffic to other ports is
// refused, in a permissive mesh too: passing it through to its original
// destination, the pod's own address, would loop, since the sidecar's
// redirection sends the proxy's connections to its own pod back to this
// listener (webhooks/inject, OSM_PROXY_OUTBOUND).
//
// The TLS inspector runs only on the ports with more than the mesh's
// chain: elsewhere no chain matches on what it finds, and it would hold
// every plaintext connection of a server-first protocol until its timeout.
func (t *translator) inbound() {
	l := t.listener(InboundListener, mesh.InboundListenerPort, corev3.TrafficDirection_INBOUND)
	l.ListenerFilters = []*listenerv3.ListenerFilter{t.originalDst()}
	dst := t.ownStat(StatDestinationTag)
	if dst != "" {
		l.StatPrefix = InboundListener + dst
	}
	var inspected []int32
	for _, ip := range t.servedPorts() {
		c := t.localCluster(InboundClusterName(ip.TargetPort), ip.TargetPort, ip.Port.Protocol)
		if dst != "" {
			c.AltStatName = c.GetName() + dst
		}
		t.out.Clusters = append(t.out.Clusters, c)
		chains := t.inboundChains(ip)
		if len(chains) > 1 {
			inspected = append(inspected, ip.TargetPort)
		}
		l.FilterChains = append(l.FilterChains, chains...)
	}
	if len(inspected) > 0 {
		t.inspectTLS(l, inspected)
	}
	t.unmatched(l, false)
	t.out.Listeners = append(t.out.Listeners, l)
}

// inboundChains are the chains of a served port: the mesh's (mutual TLS),
// and for callers outside the mesh a plaintext chain and an https one,
// each only when it lets someone in. With more than the mesh's chain, the
// chains are told apart by transport protocol, and the mesh's and the https
// one by MeshALPN.
func (t *translator) inboundChains(ip mesh.InboundPort) []*listenerv3.FilterChain {
	port := ip.TargetPort
	name := InboundClusterName(port)
	rules := t.view.IngressTo(port)
	var extra []*listenerv3.FilterChain
	if pr, ok := t.plaintextRules(port, ip.Port.Protocol, rules); ok {
		extra = append(extra, &listenerv3.FilterChain{
			Name:             name + "|plaintext",
			FilterChainMatch: &listenerv3.FilterChainMatch{DestinationPort: wrapperspb.UInt32(uint32(port)), TransportProtocol: transportPlaintext},
			Filters:          t.inboundFilters(name+"|plaintext", name, ip, pr),
		})
	}
	ingressTLS := false
	if tr := t.ingressTLSRules(port, ip.Port.Protocol.IsHTTP(), rules); tr != nil {
		ingressTLS = true
		extra = append(extra, &listenerv3.FilterChain{
			Name:             name + "|ingress-tls",
			FilterChainMatch: &listenerv3.FilterChainMatch{DestinationPort: wrapperspb.UInt32(uint32(port)), TransportProtocol: transportTLS},
			TransportSocket:  t.ingressTLS(ip.Port.Protocol, rules),
			Filters:          t.inboundFilters(name+"|ingress-tls", name, ip, tr),
		})
	}
	match := &listenerv3.FilterChainMatch{DestinationPort: wrapperspb.UInt32(uint32(port))}
	if len(extra) > 0 {
		match.TransportProtocol = transportTLS
	}
	if ingressTLS {
		match.ApplicationProtocols = []string{MeshALPN}
	}
	meshChain := &listenerv3.FilterChain{
		Name:             name,
		FilterChainMatch: match,
		TransportSocket:  t.downstreamTLS(ip.Port.Protocol),
		Filters:          t.inboundFilters(name, name, ip, t.rbacRules(port, ip.Port.Protocol.IsHTTP())),
	}
	return append([]*listenerv3.FilterChain{meshChain}, extra...)
}

// ingressTLSRules are the RBAC rules of a port's https chain for callers
// outside the mesh, or nil when none gets in there. A mesh peer that offers
// no MeshALPN (a proxyless gRPC client offers h2) lands on that chain too:
// when the chain validates client certificates with the mesh trust bundle,
// its rules also let in the mesh peers the port's mesh chain lets in (by
// SMI policy, or in a Permissive mesh any SPIFFE ID of the trust domain).
// A chain that validates no certificate lets in no mesh peer: anyone could
// name one.
func (t *translator) ingressTLSRules(port int32, http bool, rules []mesh.IngressRule) *rbacv3.RBAC {
	tr := ingressRBAC(rules, true, http)
	if validate, _ := clientCertValidation(rules); tr == nil || !validate {
		return tr
	}
	if peers := t.rbacRules(port, http); peers != nil {
		maps.Copy(tr.Policies, peers.Policies)
		return tr
	}
	tr.Policies[meshPeersPolicy] = &rbacv3.Policy{
		Principals: []*rbacv3.Principal{{Identifier: &rbacv3.Principal_Authenticated_{
			Authenticated: &rbacv3.Principal_Authenticated{PrincipalName: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: t.meshIDPrefix()},
			}},
		}}},
		Permissions: []*rbacv3.Permission{{Rule: &rbacv3.Permission_Any{Any: true}}},
	}
	return tr
}

// meshPeersPolicy names the RBAC policy that lets in every mesh peer of a
// Permissive mesh; policy names of SMI ("ns/name") and IngressBackends
// ("ns/name|service") hold a "/", so it is none of theirs.
const meshPeersPolicy = "mesh-peers"

// meshIDPrefix is how every SPIFFE ID of the mesh's workloads begins.
func (t *translator) meshIDPrefix() string { return "spiffe://" + t.view.Mesh.TrustDomain + "/ns/" }

// clientCertValidation says whether an https port's backends validate
// client certificates (one does) and whether one skips it.
func clientCertValidation(rules []mesh.IngressRule) (validate, skip bool) {
	for _, r := range rules {
		if r.Target.TLS {
			validate = validate || !r.Target.SkipClientCertValidation
			skip = skip || r.Target.SkipClientCertValidation
		}
	}
	return validate, skip
}

// plaintextRules are the RBAC rules of a port's plaintext chain (nil: no
// filter), and whether it has one: every caller, when its setting accepts
// plaintext (Permissive mode only: mesh.View.AcceptsPlaintext) and no
// IngressBackend names it; else the addresses of its http IngressBackends.
func (t *translator) plaintextRules(port int32, p mesh.Protocol, rules []mesh.IngressRule) (*rbacv3.RBAC, bool) {
	if t.view.AcceptsPlaintext(port) {
		return nil, true
	}
	r := ingressRBAC(rules, false, p.IsHTTP())
	return r, r != nil
}

// inboundFilters are a chain's filters to the local cluster of ip: the
// port's connection rate limit, then an HTTP connection manager (its RBAC
// filter, when rules is not nil, then its request rate limit) or RBAC and
// a TCP proxy. With identity labels, the connection manager's and the TCP
// proxy's stat prefixes name the group's identity as the destination; the
// RBAC filters' and rate limits' keep statPrefix, which Envoy's default tag
// extractors leave in metric names.
func (t *translator) inboundFilters(statPrefix, cluster string, ip mesh.InboundPort, rules *rbacv3.RBAC) []*listenerv3.Filter {
	p := ip.Port.Protocol
	res := t.view.Mesh.Resilience(ip.Service.Key, ip.Port.Port)
	labelled := statPrefix + t.ownStat(StatDestinationTag)
	var filters []*listenerv3.Filter
	if f := t.connectionRateLimit(statPrefix, res); f != nil {
		filters = append(filters, f)
	}
	if p.IsHTTP() {
		var rbacPrefix *string
		if rules != nil {
			rbacPrefix = &statPrefix
		}
		route := singleRoute(statPrefix, prefixAll(), meshRoute(toCluster(cluster)))
		return append(filters, t.httpConnectionManager(labelled, meshHTTP(t.observe(&hcmv3.HttpConnectionManager{
			RouteSpecifier:              &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: route},
			ForwardClientCertDetails:    hcmv3.HttpConnectionManager_SANITIZE_SET,
			SetCurrentClientCertDetails: &hcmv3.HttpConnectionManager_SetCurrentClientCertDetails{Uri: true},
		}, rbacPrefix)), t.httpRBACFilter(statPrefix, rules), t.requestRateLimit(statPrefix, res)))
	}
	if f := t.networkRBACFilter(statPrefix, rules); f != nil {
		filters = append(filters, f)
	}
	return append(filters, t.tcpProxyRBAC(labelled, []weighted{{cluster, 1}}, rules != nil))
}

// inspectTLS runs the TLS inspector on the listener's ports, waiting at
// most inspectorTimeout for a caller's first bytes and then matching
// chains without them: Envoy's defaults wait 15 s and close the connection,
// which would cut a caller that waits for the server to speak first.
func (t *translator) inspectTLS(l *listenerv3.Listener, ports []int32) {
	l.ListenerFilters = append(l.ListenerFilters, t.tlsInspector(ports))
	l.ListenerFiltersTimeout = durationpb.New(inspectorTimeout)
	l.ContinueOnListenerFiltersTimeout = true
}

// tlsInspector detects TLS, its ALPN and server name on ports (served ports
// inbound, https egress ports outbound), and is disabled on every other
// port: it waits for the client's first bytes, and a protocol whose server
// speaks first (SMTP, MySQL) would wait with it until the listener filter
// timeout.
func (t *translator) tlsInspector(ports []int32) *listenerv3.ListenerFilter {
	var on []*listenerv3.ListenerFilterChainMatchPredicate
	for _, p := range ports {
		on = append(on, &listenerv3.ListenerFilterChainMatchPredicate{Rule: &listenerv3.ListenerFilterChainMatchPredicate_DestinationPortRange{
			DestinationPortRange: &typev3.Int32Range{Start: p, End: p + 1},
		}})
	}
	served := on[0]
	if len(on) > 1 {
		served = &listenerv3.ListenerFilterChainMatchPredicate{Rule: &listenerv3.ListenerFilterChainMatchPredicate_OrMatch{
			OrMatch: &listenerv3.ListenerFilterChainMatchPredicate_MatchSet{Rules: on},
		}}
	}
	return &listenerv3.ListenerFilter{
		Name:           "envoy.filters.listener.tls_inspector",
		ConfigType:     &listenerv3.ListenerFilter_TypedConfig{TypedConfig: t.any(&tlsinspectorv3.TlsInspector{})},
		FilterDisabled: &listenerv3.ListenerFilterChainMatchPredicate{Rule: &listenerv3.ListenerFilterChainMatchPredicate_NotMatch{NotMatch: served}},
	}
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
// by the mesh trust bundle and naming a SPIFFE ID of the mesh's trust
// domain is required. The bundle's CA may sign more than the mesh's
// workloads (a corporate CA, the ingress gateway's client certificate), and
// where no RBAC filter names identities (a Permissive mesh) its every
// certificate would otherwise pass as a mesh peer.
func (t *translator) downstreamTLS(p mesh.Protocol) *corev3.TransportSocket {
	meshIDs := &tlsv3.CommonTlsContext_CombinedValidationContext{
		CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
			DefaultValidationContext: &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
				SanType: tlsv3.SubjectAltNameMatcher_URI,
				Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: t.meshIDPrefix()}},
			}}},
			ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: TrustBundleSecret, SdsConfig: adsSource()},
		},
	}
	ctx := serverTLS(p, tlsParams())
	ctx.CommonTlsContext.ValidationContextType = meshIDs
	ctx.RequireClientCertificate = wrapperspb.Bool(true)
	return t.tlsSocket(ctx)
}

// ingressTLS is the server side of an https IngressBackend port, with the
// backend's mesh certificate: client certificates are validated against the
// mesh trust bundle unless every backend skips it, and required unless one
// does (the RBAC rules then require them of the others). Callers outside
// the mesh carry DNS names as often as not: their names are the RBAC
// rules' to check.
func (t *translator) ingressTLS(p mesh.Protocol, rules []mesh.IngressRule) *corev3.TransportSocket {
	validate, skip := clientCertValidation(rules)
	ctx := serverTLS(p, ingressTLSParams())
	if validate {
		ctx.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{
			ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: TrustBundleSecret, SdsConfig: adsSource()},
		}
	}
	if validate && !skip {
		ctx.RequireClientCertificate = wrapperspb.Bool(true)
	}
	return t.tlsSocket(ctx)
}

// ingressTLSParams admit TLS 1.2 as well, which ingress controllers and
// load balancers outside the mesh may still speak.
func ingressTLSParams() *tlsv3.TlsParameters {
	return &tlsv3.TlsParameters{
		TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2,
		TlsMaximumProtocolVersion: tlsv3.TlsParameters_TLSv1_3,
	}
}

// serverTLS is a TLS server with the group's certificate that validates
// no client certificate yet.
func serverTLS(p mesh.Protocol, params *tlsv3.TlsParameters) *tlsv3.DownstreamTlsContext {
	common := &tlsv3.CommonTlsContext{
		TlsParams:                      params,
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: IdentitySecret, SdsConfig: adsSource()}},
	}
	if p.IsHTTP() {
		common.AlpnProtocols = []string{"h2", "http/1.1"}
	}
	return &tlsv3.DownstreamTlsContext{CommonTlsContext: common}
}

// tlsSocket is the TLS transport socket of a server context.
func (t *translator) tlsSocket(ctx *tlsv3.DownstreamTlsContext) *corev3.TransportSocket {
	return &corev3.TransportSocket{
		Name:       "envoy.transport_sockets.tls",
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: t.any(ctx)},
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
// settings every HTTP filter chain shares; filters (RBAC, a fault, a rate
// limit), those not nil, run before the router, in order.
func (t *translator) httpConnectionManager(statPrefix string, hcm *hcmv3.HttpConnectionManager, filters ...*hcmv3.HttpFilter) *listenerv3.Filter {
	hcm.StatPrefix = statPrefix
	hcm.CodecType = hcmv3.HttpConnectionManager_AUTO
	for _, f := range filters {
		if f != nil {
			hcm.HttpFilters = append(hcm.HttpFilters, f)
		}
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
