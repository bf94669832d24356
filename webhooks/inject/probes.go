package inject

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/open-service-mesh/osm-operator/xds/bootstrap"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// probeConfig is what the proxy needs to serve the pod's rewritten probes.
type probeConfig struct {
	routes   []probeRoute
	clusters []probeCluster
	grpc     []grpcProbe
}

// probeRoute forwards path, on mesh.ProbePort, to target on the app's cluster;
// timeout is the probe's, in seconds.
type probeRoute struct {
	path, cluster, target string
	timeout               int32
}

type probeCluster struct {
	name string
	port int32
	tls  bool
}

// grpcProbe serves on proxyPort the gRPC probes of appPort; timeout is the
// longest of theirs, in seconds.
type grpcProbe struct{ proxyPort, appPort, timeout int32 }

// grpcHealthCheck is the one method a gRPC probe calls: the kubelet's probe
// is grpc.health.v1.Health/Check, unary, in plain text HTTP/2 (h2c, prior
// knowledge).
const grpcHealthCheck = "/grpc.health.v1.Health/Check"

// key says what the proxy's probe listeners are made of: pods with the same
// probes have the same key.
func (p probeConfig) key() string { return fmt.Sprint(p.routes, p.clusters, p.grpc) }

// rewriteProbes points the app containers' HTTP and gRPC probes at the
// proxy, which forwards them in plain text to the app on localhost: the
// kubelet has no mesh certificate, and inbound traffic to app ports requires
// one. HTTP probes go to mesh.ProbePort with a path naming the container and the
// probe; gRPC probes to a port of their own. TCP and exec probes are left
// alone (a TCP probe reaches the proxy's inbound listener and so tests that
// the proxy accepts connections).
//
// Those ports bypass the inbound listener, its mutual TLS and its policies,
// and anyone who reaches the pod reaches them: so they forward the probes
// and nothing else (see resources), and never to a port of the proxy's own
// (checkProbePorts). An error names what is refused and leaves pod
// untouched.
func rewriteProbes(pod *corev1.Pod) (probeConfig, error) {
	var out probeConfig
	if err := checkProbePorts(pod); err != nil {
		return out, err
	}
	clusters := map[string]bool{}
	grpcPorts := map[int32]int{} // app port → index in out.grpc
	for ci := range pod.Spec.Containers {
		c := &pod.Spec.Containers[ci]
		for _, kp := range containerProbes(c) {
			p := kp.probe
			switch {
			case p == nil:
			case p.HTTPGet != nil && p.HTTPGet.Host == "":
				port, ok := resolvePort(c, p.HTTPGet.Port)
				if !ok {
					continue // the kubelet will report it; nothing to forward to
				}
				tls := p.HTTPGet.Scheme == corev1.URISchemeHTTPS
				scheme := "http"
				if tls {
					scheme = "https"
				}
				name := fmt.Sprintf("probe|%d|%s", port, scheme)
				if !clusters[name] {
					clusters[name] = true
					out.clusters = append(out.clusters, probeCluster{name, port, tls})
				}
				path := fmt.Sprintf("/osm-probe/%s/%s", c.Name, kp.kind)
				out.routes = append(out.routes, probeRoute{path, name, kubeletRequestURI(p.HTTPGet.Path), probeTimeout(p)})
				p.HTTPGet.Port, p.HTTPGet.Path, p.HTTPGet.Scheme = intstr.FromInt32(mesh.ProbePort), path, corev1.URISchemeHTTP
			case p.GRPC != nil:
				i, ok := grpcPorts[p.GRPC.Port]
				if !ok && mesh.GRPCProbePort+int32(len(out.grpc)) <= mesh.LastProxyPort {
					i, ok = len(out.grpc), true
					grpcPorts[p.GRPC.Port] = i
					out.grpc = append(out.grpc, grpcProbe{proxyPort: mesh.GRPCProbePort + int32(i), appPort: p.GRPC.Port})
				}
				if ok {
					out.grpc[i].timeout = max(out.grpc[i].timeout, probeTimeout(p))
					p.GRPC.Port = out.grpc[i].proxyPort
				}
			}
		}
	}
	slices.SortFunc(out.clusters, func(a, b probeCluster) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// kindProbe is a container's probe of one kind (liveness, readiness,
// startup); probe is nil when the container has none.
type kindProbe struct {
	kind  string
	probe *corev1.Probe
}

func containerProbes(c *corev1.Container) []kindProbe {
	return []kindProbe{{"liveness", c.LivenessProbe}, {"readiness", c.ReadinessProbe}, {"startup", c.StartupProbe}}
}

// checkProbePorts refuses a probe the proxy would forward (HTTP without a
// host, gRPC) to a port of the proxy's own, 15000–15999: the probe
// listeners serve in plain text, past the mesh's mutual TLS, to anyone who
// reaches the pod, so a probe of the admin interface's /config_dump (or of
// the proxy's listeners) would hand it to them. The error names the
// container, the probe and the port.
func checkProbePorts(pod *corev1.Pod) error {
	for ci := range pod.Spec.Containers {
		c := &pod.Spec.Containers[ci]
		for _, kp := range containerProbes(c) {
			p := kp.probe
			var port int32
			var spelled string
			switch {
			case p == nil:
				continue
			case p.HTTPGet != nil && p.HTTPGet.Host == "":
				n, ok := resolvePort(c, p.HTTPGet.Port)
				if !ok {
					continue
				}
				port, spelled = n, fmt.Sprint(n)
				if p.HTTPGet.Port.Type == intstr.String {
					spelled = fmt.Sprintf("%q (%d)", p.HTTPGet.Port.StrVal, n)
				}
				spelled = "httpGet port " + spelled
			case p.GRPC != nil:
				port, spelled = p.GRPC.Port, fmt.Sprintf("grpc port %d", p.GRPC.Port)
			default:
				continue
			}
			if port >= mesh.FirstProxyPort && port <= mesh.LastProxyPort {
				return fmt.Errorf("container %q: %s probe: %s is the proxy's (ports %d-%d are the sidecar's own, %d its admin interface): "+
					"the proxy serves probes in plain text to anyone who reaches the pod, so it forwards none to itself; probe a port of the app",
					c.Name, kp.kind, spelled, mesh.FirstProxyPort, mesh.LastProxyPort, mesh.AdminPort)
			}
		}
	}
	return nil
}

// probeTimeout is how long the kubelet waits for the probe, in seconds: its
// timeoutSeconds, 1 (the API's default and minimum) when unset.
func probeTimeout(p *corev1.Probe) int32 { return max(p.TimeoutSeconds, 1) }

// kubeletRequestURI is the request target the kubelet sends for an HTTP
// probe's path, as its prober builds it (pkg/probe/http: url.Parse of the
// path, the path alone when that fails, then http.NewRequest of the URL):
// what the app would have received without the mesh, and so what the proxy
// sends in its place. It is always a valid header value: Envoy refuses a
// prefix_rewrite holding NUL, CR or LF (its proto validation, which it
// applies to the typed configs of listeners), and with it the bootstrap.
func kubeletRequestURI(path string) string {
	if path == "" {
		path = "/"
	}
	u, err := url.Parse(path)
	if err != nil {
		u = &url.URL{Path: path}
	}
	u.Scheme, u.Host = "http", "probe"
	if again, err := url.Parse(u.String()); err == nil {
		u = again
	}
	return u.RequestURI()
}

// Timeouts of the probe listeners, which anyone who reaches the pod can
// connect to (Envoy marks both options configure_for_untrusted_downstream).
// The kubelet sends its request at once and opens a connection per probe.
const (
	// probeHeadersTimeout bounds the wait for a request's headers, from
	// their first byte (request_headers_timeout; Envoy's default: none).
	probeHeadersTimeout = 10 * time.Second
	// probeIdleTimeout closes a connection with no request in flight
	// (common_http_protocol_options.idle_timeout; Envoy's default: 1 h).
	// A probe in flight is not idle, however long its timeout.
	probeIdleTimeout = 10 * time.Second
)

// resources are the proxy's static listeners and clusters: its health
// listener and those of the pod's probes.
//
// The probe listeners bypass the mesh's inbound listener (the redirection
// lets 15901–15999 through), its mutual TLS and its policies, and bind all
// addresses: the kubelet dials the pod's IP. Each is an HTTP connection
// manager that forwards its probes' exact requests and refuses the rest (see
// onlyRoute), never a TCP proxy: one would hand the app's whole service,
// in plain text, to anyone who reaches the pod.
//
//   - mesh.ProbePort (osm-probes) forwards GET of each /osm-probe/<container>/<kind>
//     to that probe's port and path on localhost, as the kubelet would have
//     sent it: the route replaces the whole path (prefix_rewrite of an
//     exact path match, the :path header exactly that path, so there is no
//     query string for the rewrite to keep), so no request reaches another
//     path of the app.
//   - One port per gRPC port probed (probe|<port>|grpc) speaks HTTP/2 only,
//     as the kubelet's gRPC probe does, and forwards POST of
//     /grpc.health.v1.Health/Check, unchanged, to the app's port over
//     HTTP/2. Any other method of any service, Health/Watch (a stream)
//     included, is refused. The request's service field is in the protobuf
//     body, which Envoy's routes do not read: Health/Check passes whatever
//     service it names. That tells the caller a service's health status,
//     nothing more.
//
// A request no route matches gets the router's local reply, 404 with no
// upstream contacted (source/common/router/router.cc, "no route": response
// flag NR). To a gRPC caller (content-type application/grpc) Envoy sends a
// local reply as a trailers-only gRPC response, its grpc-status mapped from
// the HTTP status (source/common/http/utility.cc, sendLocalReply;
// source/common/grpc/status.cc, httpToGrpcStatus): 404 is UNIMPLEMENTED,
// what a gRPC server answers for a method it does not serve.
func (p probeConfig) resources() ([]*listenerv3.Listener, []*clusterv3.Cluster) {
	listeners := []*listenerv3.Listener{healthListener()}
	clusters := []*clusterv3.Cluster{localCluster("osm-admin", mesh.AdminPort, false)}
	if len(p.routes) > 0 {
		routes := make([]*routev3.Route, 0, len(p.routes))
		for _, r := range p.routes {
			routes = append(routes, onlyRoute(r.path, "GET", r.cluster, r.target, seconds(r.timeout)))
		}
		// The kubelet's HTTP probe is HTTP/1.1; AUTO also takes h2c.
		listeners = append(listeners, httpListener("osm-probes", mesh.ProbePort, hcmv3.HttpConnectionManager_AUTO, routes))
	}
	for _, c := range p.clusters {
		clusters = append(clusters, localCluster(c.name, c.port, c.tls))
	}
	for _, g := range p.grpc {
		name := fmt.Sprintf("probe|%d|grpc", g.appPort)
		cluster := localCluster(name, g.appPort, false)
		// Envoy speaks HTTP/1.1 to a cluster unless its HTTP protocol
		// options say otherwise; gRPC is HTTP/2 (no TLS: h2c, prior
		// knowledge).
		cluster.TypedExtensionProtocolOptions = bootstrap.HTTP2Upstream()
		clusters = append(clusters, cluster)
		listeners = append(listeners, httpListener(name, uint32(g.proxyPort), hcmv3.HttpConnectionManager_HTTP2, []*routev3.Route{
			onlyRoute(grpcHealthCheck, "POST", name, "", seconds(g.timeout)),
		}))
	}
	return listeners, clusters
}

// onlyRoute forwards method on path, and nothing else, to cluster: with
// rewrite, in place of the whole path; within timeout, the time the kubelet
// gives the probe (nil: Envoy's default, 15 s). Path matching is exact and
// case-sensitive, and ignores the query string (source/common/common/
// matchers.cc, PathMatcher: removeQueryAndFragment): the exact :path header
// match refuses one, so that what is forwarded is what the kubelet sends.
func onlyRoute(path, method, cluster, rewrite string, timeout *durationpb.Duration) *routev3.Route {
	exact := func(name, value string) *routev3.HeaderMatcher {
		return &routev3.HeaderMatcher{Name: name, HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{
			StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: value}},
		}}
	}
	return &routev3.Route{
		Match: &routev3.RouteMatch{
			PathSpecifier: &routev3.RouteMatch_Path{Path: path},
			Headers:       []*routev3.HeaderMatcher{exact(":method", method), exact(":path", path)},
		},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster},
			PrefixRewrite:    rewrite,
			Timeout:          timeout,
		}},
	}
}

func seconds(s int32) *durationpb.Duration { return durationpb.New(time.Duration(s) * time.Second) }

// resolvePort finds a probe's port number, by name among the container's
// ports when it is a name.
func resolvePort(c *corev1.Container, port intstr.IntOrString) (int32, bool) {
	if port.Type == intstr.Int {
		return port.IntVal, port.IntVal > 0
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

// healthListener serves the sidecar's own readiness on mesh.HealthPort: Envoy's
// /ready, true once the first config from the operator is in. It forwards
// that one GET to the admin interface, like the probe listeners theirs.
func healthListener() *listenerv3.Listener {
	return httpListener("osm-health", mesh.HealthPort, hcmv3.HttpConnectionManager_AUTO, []*routev3.Route{
		onlyRoute("/healthz/ready", "GET", "osm-admin", "/ready", nil),
	})
}

// httpListener is a listener on all addresses of port whose routes are
// matched against the request's path as the app would read it:
//
//   - a path with an escaped slash (%2F, %5C) is refused, 400 (Envoy's
//     default, IMPLEMENTATION_SPECIFIC_DEFAULT, is to keep it unchanged);
//   - then the path is normalized as RFC 3986 section 6 says, without case
//     normalization (dot segments removed; a malformed path is refused,
//     400), which Envoy does not do by default (normalize_path unset is
//     false, unless the runtime key http_connection_manager.normalize_path
//     says otherwise);
//   - adjacent slashes are not merged (merge_slashes, false by default): a
//     path with them matches no probe.
//
// The probe routes replace or forward unchanged a path that matched exactly,
// so the app never sees a path that differs from the probe's; set
// explicitly, these keep the runtime from changing that.
// (api/envoy/extensions/filters/network/http_connection_manager/v3/
// http_connection_manager.proto: normalize_path, merge_slashes,
// path_with_escaped_slashes_action.)
func httpListener(name string, port uint32, codec hcmv3.HttpConnectionManager_CodecType, routes []*routev3.Route) *listenerv3.Listener {
	router := mustAny(&routerv3.Router{})
	hcm := mustAny(&hcmv3.HttpConnectionManager{
		StatPrefix: name,
		CodecType:  codec,
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
			Name:         name,
			VirtualHosts: []*routev3.VirtualHost{{Name: name, Domains: []string{"*"}, Routes: routes}},
		}},
		HttpFilters:                  []*hcmv3.HttpFilter{{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: router}}},
		NormalizePath:                wrapperspb.Bool(true),
		MergeSlashes:                 false,
		PathWithEscapedSlashesAction: hcmv3.HttpConnectionManager_REJECT_REQUEST,
		RequestHeadersTimeout:        durationpb.New(probeHeadersTimeout),
		CommonHttpProtocolOptions:    &corev3.HttpProtocolOptions{IdleTimeout: durationpb.New(probeIdleTimeout)},
	})
	return &listenerv3.Listener{
		Name:    name,
		Address: bootstrap.SocketAddress("0.0.0.0", port),
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name: "envoy.filters.network.http_connection_manager", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: hcm},
		}}}},
	}
}

// localCluster reaches the app on localhost; with tls, without verifying it,
// as the kubelet does.
func localCluster(name string, port int32, tls bool) *clusterv3.Cluster {
	c := &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(1e9),
		LoadAssignment:       bootstrap.StaticEndpoint(name, "127.0.0.1", uint32(port)),
	}
	if tls {
		c.TransportSocket = &corev3.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{
			TypedConfig: mustAny(&tlsv3.UpstreamTlsContext{}),
		}}
	}
	return c
}

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(fmt.Sprintf("packing %T: %v", m, err)) // only for messages of known types
	}
	return a
}
