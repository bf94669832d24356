// Package explain answers "what happens to this request?" from the control
// plane's own model and translation: the route and backends the caller's
// proxy picks (xds/routesim over the route configuration it is sent), and
// whether each backend's proxy lets it in, by evaluating the RBAC
// configuration that proxy is sent (xds/rbaceval), not a second reading of
// the SMI policies.
package explain

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/rbaceval"
	"github.com/open-service-mesh/osm-operator/xds/routesim"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// Query is a request to explain: from a proxy group to a service port.
type Query struct {
	From mesh.Group
	// To and Port are the Service and the service port (its number).
	To   mesh.ServiceKey
	Port int32
	// Method, Path and Headers are the request's; a gRPC call is a POST of
	// /<service>/<method> with content-type application/grpc.
	Method, Path string
	Headers      routesim.Headers
}

// GRPC is the query's request as the gRPC call service/method.
func (q *Query) GRPC(serviceMethod string) error {
	svc, method, ok := strings.Cut(serviceMethod, "/")
	if !ok || svc == "" || method == "" {
		return fmt.Errorf("gRPC method %q is not <package.Service>/<Method>", serviceMethod)
	}
	q.Method, q.Path = "POST", "/"+svc+"/"+method
	q.Headers = append(q.Headers, routesim.Header{Name: "content-type", Value: "application/grpc"}, routesim.Header{Name: "te", Value: "trailers"})
	return nil
}

// Answer is what happens to the request.
type Answer struct {
	Query Query
	// Allowed says that every backend the request may go to lets it in.
	Allowed bool
	// Route is the route entry the caller's proxy picks ("" for none), and
	// Outcome what it does: forward, redirect, direct response, no route.
	Route   string
	Outcome routesim.Kind
	// Status is what the caller's proxy answers itself (a redirect, a
	// direct response, 404), zero when it forwards.
	Status int
	// Backends are where the request may go, with their shares.
	Backends []Backend
	// Route settings: the timeout and the retry policy, from the route.
	Timeout string
	Retry   *routesim.Retry
	// Resilience is the mesh's resilience of the service port.
	Resilience *meshv1alpha1.Resilience
	// Unrouted is, when the caller's proxy has no route, what the
	// destination's proxies would do with the request did it arrive.
	Unrouted *Backend
	// Notes say what the answer rests on, and what it could not tell.
	Notes []string
	// Version is the caller group's config version of what the answer
	// rests on; Held, when set, what the caller's proxies run.
	Version string
	Held    *Held
}

// Backend is a service port a request may go to, and what each group of
// its endpoints does with the request.
type Backend struct {
	Cluster string
	Service mesh.ServiceKey
	Port    int32
	// Share is the backend's share of the requests, 0 to 1.
	Share float64
	// Invalid says that the backend does not resolve: Envoy answers 500.
	Invalid bool
	Groups  []Destination
}

// Destination is a proxy group of a backend's endpoints and its verdict.
type Destination struct {
	Group mesh.Group
	// TargetPort is where its workloads serve the port.
	TargetPort int32
	Decision   rbaceval.Decision
	// MTLS is "required", or says what else the port accepts.
	MTLS string
	// NoProxy says that the endpoints have no proxy: nothing authorizes.
	NoProxy bool
}

// Explain answers q on the mesh m.
func Explain(m *mesh.Mesh, q Query) (*Answer, error) {
	a := &Answer{Query: q}
	svc := m.Service(q.To)
	if svc == nil {
		return nil, fmt.Errorf("Service %s is not a Service of mesh %s", q.To, m.Name)
	}
	i := slices.IndexFunc(svc.Ports, func(p mesh.Port) bool { return p.Port == q.Port })
	if i < 0 {
		return nil, fmt.Errorf("Service %s has no port %d", q.To, q.Port)
	}
	port := svc.Ports[i]
	a.Resilience = m.Resilience(q.To, q.Port)
	if q.Method == "" {
		q.Method = "GET"
	}
	if q.Path == "" {
		q.Path = "/"
	}
	a.Query = q
	sh := translate.NewShared()
	src, err := sh.Translate(m.View(q.From), nil)
	if err != nil {
		return nil, fmt.Errorf("translating the caller's group: %w", err)
	}
	if a.Version, err = ConfigVersion(src); err != nil {
		return nil, err
	}
	req := routesim.Request{Method: q.Method, Path: q.Path, Host: m.FQDN(q.To) + ":" + strconv.Itoa(int(q.Port)), Headers: q.Headers}
	var backends []routesim.Backend
	http := true
	switch q.From.Kind {
	case mesh.ProxyGRPC:
		backends, err = a.grpcRoute(m, src, req)
	default:
		backends, http, err = a.envoyRoute(svc, port, src, req)
	}
	if err != nil {
		return nil, err
	}
	a.Allowed = len(backends) > 0
	if a.Outcome == routesim.NoRoute && q.From.Kind != mesh.ProxyGRPC {
		// What the destination's proxies would do were the request to
		// reach them (from a caller whose proxy is bypassed, or once a
		// policy gives it a route).
		be := Backend{Service: q.To, Port: q.Port, Cluster: translate.OutboundClusterName(q.To, q.Port)}
		r := req
		r.Headers = append(routesim.Headers{}, r.Headers...)
		if err := be.authorize(m, sh, q.From.Identity, r, port.Protocol != mesh.ProtocolTCP); err != nil {
			return nil, err
		}
		a.Unrouted = &be
	}
	var total float64
	for _, b := range backends {
		total += float64(b.Weight)
	}
	for _, b := range backends {
		be := Backend{Cluster: b.Cluster, Share: float64(b.Weight) / max(total, 1)}
		k, p, ok := parseOutboundCluster(b.Cluster)
		if !ok {
			be.Invalid = true
			a.Allowed = a.Allowed && be.Share == 0
			a.Backends = append(a.Backends, be)
			continue
		}
		be.Service, be.Port = k, p
		if err := be.authorize(m, sh, q.From.Identity, b.Request, http); err != nil {
			return nil, err
		}
		for _, d := range be.Groups {
			if be.Share > 0 && !d.Decision.Allowed {
				a.Allowed = false
			}
		}
		if be.Share > 0 && len(be.Groups) == 0 {
			a.Notes = append(a.Notes, fmt.Sprintf("%s has no endpoint: the request fails (503)", be.Service))
			a.Allowed = false
		}
		a.Backends = append(a.Backends, be)
	}
	return a, nil
}

// envoyRoute finds what the caller's sidecar does with a connection to
// the service port's address, and with the request on it.
func (a *Answer) envoyRoute(svc *mesh.Service, port mesh.Port, src *translate.Resources, req routesim.Request) ([]routesim.Backend, bool, error) {
	l := listener(src.Listeners, translate.OutboundListener)
	addrs := svc.ClusterIPs
	if len(addrs) == 0 && len(svc.Endpoints) > 0 {
		addrs = []string{svc.Endpoints[0].Address} // headless: an endpoint's
	}
	if l == nil || len(addrs) == 0 {
		return nil, true, fmt.Errorf("the caller's group has no outbound listener or %s no address", svc.Key)
	}
	ip, err := netip.ParseAddr(addrs[0])
	if err != nil {
		return nil, true, fmt.Errorf("address of %s: %w", svc.Key, err)
	}
	fc := routesim.Chain(l, routesim.Conn{Dst: netip.AddrPortFrom(ip, uint16(port.Port))})
	if fc == nil || fc.GetName() == translate.BlackholeCluster {
		a.Outcome = routesim.NoRoute
		a.Notes = append(a.Notes, fmt.Sprintf("the caller's proxy has no route to %s: it closes the connection (in SMI mode a caller sees only what a TrafficTarget lets it call; in a Permissive mesh, only what its namespace's MeshMember spec.outbound.services name, when they name any)", svc.Key))
		return nil, true, nil
	}
	hcm, err := routesim.ConnectionManager(fc)
	if err != nil {
		return nil, true, err
	}
	if hcm == nil {
		a.Outcome = routesim.Forward
		a.Route = fc.GetName()
		bes, err := tcpBackends(fc)
		return bes, false, err
	}
	rc := hcm.GetRouteConfig()
	if name := hcm.GetRds().GetRouteConfigName(); name != "" {
		i := slices.IndexFunc(src.Routes, func(r *routev3.RouteConfiguration) bool { return r.GetName() == name })
		if i < 0 {
			return nil, true, fmt.Errorf("route configuration %s is not in the caller's config", name)
		}
		rc = src.Routes[i]
	}
	return a.route(rc, req), true, nil
}

// grpcRoute is what a proxyless gRPC client does with the call.
func (a *Answer) grpcRoute(m *mesh.Mesh, src *translate.Resources, req routesim.Request) ([]routesim.Backend, error) {
	name := translate.GRPCListenerName(m, a.Query.To, a.Query.Port)
	l := listener(src.Listeners, name)
	if l == nil {
		a.Outcome = routesim.NoRoute
		a.Notes = append(a.Notes, fmt.Sprintf("the gRPC client is sent no listener %s: the call fails UNAVAILABLE", name))
		return nil, nil
	}
	hcm, err := routesim.APIListenerManager(l)
	if err != nil {
		return nil, err
	}
	return a.route(hcm.GetRouteConfig(), req), nil
}

// route simulates req on rc and records the outcome.
func (a *Answer) route(rc *routev3.RouteConfiguration, req routesim.Request) []routesim.Backend {
	res := routesim.Route(rc, req)
	a.Outcome, a.Route, a.Status, a.Retry = res.Kind, res.Route, res.Status, res.Retry
	if res.Route == "" && res.RouteIndex >= 0 {
		a.Route = fmt.Sprintf("%s route %d", res.VirtualHost, res.RouteIndex)
	}
	switch {
	case res.Timeout == 0:
		a.Timeout = "none"
	default:
		a.Timeout = res.Timeout.String()
	}
	if res.MaxStreamDuration > 0 {
		a.Timeout = res.MaxStreamDuration.String() + " (gRPC deadline)"
	}
	a.Notes = append(a.Notes, res.Warnings...)
	if res.Kind != routesim.Forward {
		return nil
	}
	return res.Backends
}

// authorize evaluates, for each group of the backend's endpoints, the RBAC
// configuration its inbound listener is sent.
func (b *Backend) authorize(m *mesh.Mesh, sh *translate.Shared, caller mesh.Identity, req routesim.Request, http bool) error {
	svc := m.Service(b.Service)
	if svc == nil {
		return nil
	}
	i := slices.IndexFunc(svc.Ports, func(p mesh.Port) bool { return p.Port == b.Port })
	if i < 0 {
		return nil
	}
	port := svc.Ports[i]
	type target struct {
		id      mesh.Identity
		port    int32
		addr    string
		noProxy bool
	}
	var targets []target
	for _, e := range svc.Endpoints {
		tp, ok := e.Ports[port.Name]
		if !ok || !e.Ready {
			continue
		}
		t := target{e.Identity, tp, e.Address, e.NoProxy}
		if !slices.ContainsFunc(targets, func(o target) bool { return o.id == t.id && o.port == t.port && o.noProxy == t.noProxy }) {
			targets = append(targets, t)
		}
	}
	for _, t := range targets {
		if t.noProxy {
			b.Groups = append(b.Groups, Destination{Group: mesh.Group{Kind: mesh.ProxyEnvoy, Identity: t.id}, TargetPort: t.port, NoProxy: true,
				Decision: rbaceval.Decision{Allowed: true, Reason: "the endpoint has no proxy: it is reached in plaintext and nothing authorizes the request"}, MTLS: "none (no proxy)"})
			continue
		}
		for _, g := range m.Groups {
			if g.Identity != t.id {
				continue
			}
			d, err := evaluate(m, sh, g, t.addr, t.port, caller, req, http)
			if err != nil {
				return fmt.Errorf("group %s: %w", g, err)
			}
			b.Groups = append(b.Groups, d)
		}
	}
	return nil
}

// evaluate is what group g's inbound listener does with the request of
// caller, arriving over mutual TLS at addr:port.
func evaluate(m *mesh.Mesh, sh *translate.Shared, g mesh.Group, addr string, port int32, caller mesh.Identity, req routesim.Request, http bool) (Destination, error) {
	d := Destination{Group: g, TargetPort: port}
	res, err := sh.Translate(m.View(g), nil)
	if err != nil {
		return d, err
	}
	name := translate.InboundListener
	if g.Kind == mesh.ProxyGRPC {
		name = translate.GRPCServerListenerName("0.0.0.0", port)
	}
	l := listener(res.Listeners, name)
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return d, err
	}
	dst := netip.AddrPortFrom(ip, uint16(port))
	if l == nil {
		d.Decision = rbaceval.Decision{Reason: fmt.Sprintf("the group is sent no listener %s: the connection is refused", name)}
		return d, nil
	}
	fc := routesim.Chain(l, routesim.Conn{Dst: dst, TransportProtocol: "tls", ALPN: []string{translate.MeshALPN}})
	if fc == nil || fc.GetName() == translate.BlackholeCluster {
		d.Decision = rbaceval.Decision{Reason: fmt.Sprintf("no filter chain of %s takes a mesh connection to port %d: it is closed", name, port)}
		return d, nil
	}
	d.MTLS = "required"
	if plain := routesim.Chain(l, routesim.Conn{Dst: dst, TransportProtocol: "raw_buffer"}); plain != nil && plain.GetName() != translate.BlackholeCluster && plain != fc {
		d.MTLS = "required of mesh callers; plaintext from outside the mesh accepted on this port (" + plain.GetName() + ")"
	}
	if g.Kind == mesh.ProxyGRPC {
		d.MTLS = "required (the gRPC server's certificate providers)"
	}
	headers := append(routesim.Headers{{Name: ":method", Value: req.Method}, {Name: ":path", Value: req.Path}, {Name: ":authority", Value: req.Host}}, req.Headers...)
	rr := rbaceval.Request{
		PeerURISANs:     []string{caller.SPIFFE(m.TrustDomain)},
		DestinationPort: uint32(port),
		HTTP:            http,
		Headers:         headers,
		DirectRemoteIP:  netip.IPv4Unspecified(),
	}
	dec, err := rbaceval.EvaluateChain(fc, rr)
	if err != nil {
		return d, err
	}
	d.Decision = dec
	return d, nil
}

func listener(ls []*listenerv3.Listener, name string) *listenerv3.Listener {
	for _, l := range ls {
		if l.GetName() == name {
			return l
		}
	}
	return nil
}

// tcpBackends are the clusters of a chain's tcp_proxy.
func tcpBackends(fc *listenerv3.FilterChain) ([]routesim.Backend, error) {
	for _, f := range fc.GetFilters() {
		tc := f.GetTypedConfig()
		if tc == nil || !strings.HasSuffix(tc.GetTypeUrl(), "/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy") {
			continue
		}
		tp := &tcpproxyv3.TcpProxy{}
		if err := tc.UnmarshalTo(tp); err != nil {
			return nil, fmt.Errorf("filter %s: %w", f.GetName(), err)
		}
		if c := tp.GetCluster(); c != "" {
			return []routesim.Backend{{Cluster: c, Weight: 1}}, nil
		}
		var out []routesim.Backend
		for _, w := range tp.GetWeightedClusters().GetClusters() {
			out = append(out, routesim.Backend{Cluster: w.GetName(), Weight: w.GetWeight()})
		}
		return out, nil
	}
	return nil, fmt.Errorf("filter chain %s has neither a connection manager nor a TCP proxy", fc.GetName())
}

// parseOutboundCluster reads translate.OutboundClusterName.
func parseOutboundCluster(name string) (mesh.ServiceKey, int32, bool) {
	rest, ok := strings.CutPrefix(name, "out|")
	if !ok {
		return mesh.ServiceKey{}, 0, false
	}
	key, port, ok := strings.Cut(rest, "|")
	ns, svc, ok2 := strings.Cut(key, "/")
	p, err := strconv.ParseInt(port, 10, 32)
	if !ok || !ok2 || err != nil {
		return mesh.ServiceKey{}, 0, false
	}
	return mesh.ServiceKey{Namespace: ns, Name: svc}, int32(p), true
}
