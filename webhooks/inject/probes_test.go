package inject

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/open-service-mesh/osm-operator/xds/envoyrules"
	"github.com/open-service-mesh/osm-operator/xds/mesh"

	// Types the typed configs of a sidecar's bootstrap are packed from.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// probePod has HTTP probes on two containers (one over TLS, one with a
// query string) and gRPC probes on two ports, one of them probed twice.
func probePod() *corev1.Pod {
	httpGet := func(path string, port intstr.IntOrString, scheme corev1.URIScheme, timeout int32) *corev1.Probe {
		return &corev1.Probe{TimeoutSeconds: timeout, ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: port, Scheme: scheme}}}
	}
	grpc := func(port int32, service string, timeout int32) *corev1.Probe {
		p := &corev1.Probe{TimeoutSeconds: timeout, ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: port}}}
		if service != "" {
			p.GRPC.Service = &service
		}
		return p
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "bookstore"},
		Spec: corev1.PodSpec{ServiceAccountName: "shop", Containers: []corev1.Container{
			{
				Name: "web", Image: "web:v1", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				LivenessProbe:  httpGet("/healthz", intstr.FromString("http"), "", 3),
				ReadinessProbe: httpGet("/ready?full=1", intstr.FromInt32(8080), corev1.URISchemeHTTP, 0),
			},
			{
				Name: "api", Image: "api:v1", Ports: []corev1.ContainerPort{{Name: "admin", ContainerPort: 9443}, {Name: "grpc", ContainerPort: 9090}},
				ReadinessProbe: httpGet("/status", intstr.FromString("admin"), corev1.URISchemeHTTPS, 1),
				LivenessProbe:  grpc(9090, "", 2),
				StartupProbe:   grpc(9090, "shop.Orders", 5),
			},
			{Name: "cache", Image: "cache:v1", LivenessProbe: grpc(6000, "", 0)},
		}},
	}
}

// forward is a request a probe listener must forward: the kubelet's, for
// one probe, as the app receives it.
type forward struct {
	port    uint32
	req     request
	cluster string
	path    string        // the :path the app receives
	timeout time.Duration // the route's
	// The cluster: the app's port on localhost, with TLS or HTTP/2.
	appPort    uint32
	tls, http2 bool
}

// TestProbeListenersForwardOnlyProbes: the listeners that serve the pod's
// rewritten probes bypass the mesh's mutual TLS and policies, so they forward
// the kubelet's probe requests, each to its own probe's port and path, and
// refuse every other request. Each listener is evaluated as Envoy routes a
// request (see envoyModel), a TCP proxy forwarding everything.
func TestProbeListenersForwardOnlyProbes(t *testing.T) {
	pod := probePod()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := Patch(pod, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	checkPatch(t, raw, ops) // Envoy's load rules, the IPv6 twins included
	if err := Pod(pod, testConfig()); err != nil {
		t.Fatal(err)
	}
	b := sidecarBootstrap(t, pod)
	if err := envoyrules.CheckBootstrap(b, nil, envoyrules.Options{}); err != nil {
		t.Errorf("the bootstrap: %v", err)
	}
	envoy := newEnvoyModel(t, b)

	// The probes point where the listeners are.
	web, api, cache := pod.Spec.Containers[0], pod.Spec.Containers[1], pod.Spec.Containers[2]
	for _, c := range []struct {
		probe *corev1.Probe
		port  int32
		path  string
	}{
		{web.LivenessProbe, mesh.ProbePort, "/osm-probe/web/liveness"},
		{web.ReadinessProbe, mesh.ProbePort, "/osm-probe/web/readiness"},
		{api.ReadinessProbe, mesh.ProbePort, "/osm-probe/api/readiness"},
		{api.LivenessProbe, mesh.GRPCProbePort, ""},
		{api.StartupProbe, mesh.GRPCProbePort, ""},
		{cache.LivenessProbe, mesh.GRPCProbePort + 1, ""},
	} {
		if h := c.probe.HTTPGet; h != nil && (h.Port.IntVal != c.port || h.Path != c.path || h.Scheme != corev1.URISchemeHTTP) {
			t.Errorf("HTTP probe rewritten to %+v, want %s on %d", h, c.path, c.port)
		}
		if g := c.probe.GRPC; g != nil && g.Port != c.port {
			t.Errorf("gRPC probe rewritten to port %d, want %d", g.Port, c.port)
		}
	}
	// They bind all IPv4 addresses, as they did (checkIPv6Overlay checks
	// their twins on [::]).
	for port, name := range map[uint32]string{mesh.ProbePort: "osm-probes", mesh.GRPCProbePort: "probe|9090|grpc", mesh.GRPCProbePort + 1: "probe|6000|grpc"} {
		l := envoy.listeners[port]
		if l.GetName() != name || l.GetAddress().GetSocketAddress().GetAddress() != "0.0.0.0" {
			t.Errorf("port %d: listener %q on %s, want %q on 0.0.0.0", port, l.GetName(), l.GetAddress().GetSocketAddress().GetAddress(), name)
		}
	}

	kubeletGRPC := request{method: "POST", path: "/grpc.health.v1.Health/Check", h2: true, grpc: true}
	forwards := []forward{
		{port: mesh.ProbePort, req: request{method: "GET", path: "/osm-probe/web/liveness"}, cluster: "probe|8080|http", path: "/healthz", timeout: 3 * time.Second, appPort: 8080},
		{port: mesh.ProbePort, req: request{method: "GET", path: "/osm-probe/web/readiness"}, cluster: "probe|8080|http", path: "/ready?full=1", timeout: time.Second, appPort: 8080},
		{port: mesh.ProbePort, req: request{method: "GET", path: "/osm-probe/api/readiness"}, cluster: "probe|9443|https", path: "/status", timeout: time.Second, appPort: 9443, tls: true},
		{port: mesh.GRPCProbePort, req: kubeletGRPC, cluster: "probe|9090|grpc", path: kubeletGRPC.path, timeout: 5 * time.Second, appPort: 9090, http2: true},
		{port: mesh.GRPCProbePort + 1, req: kubeletGRPC, cluster: "probe|6000|grpc", path: kubeletGRPC.path, timeout: time.Second, appPort: 6000, http2: true},
	}
	for _, f := range forwards {
		got := envoy.serve(f.port, f.req)
		if got.cluster != f.cluster || got.path != f.path {
			t.Errorf("port %d, %s: %s; want forwarded to %s as %s", f.port, f.req, got, f.cluster, f.path)
			continue
		}
		if got.timeout != f.timeout {
			t.Errorf("port %d, %s: route timeout %v, want the probe's %v", f.port, f.req, got.timeout, f.timeout)
		}
		port, tls, http2 := envoy.upstream(f.cluster)
		if port != f.appPort || tls != f.tls || http2 != f.http2 {
			t.Errorf("cluster %s: 127.0.0.1:%d, TLS %v, HTTP/2 %v; want port %d, TLS %v, HTTP/2 %v", f.cluster, port, tls, http2, f.appPort, f.tls, f.http2)
		}
	}
	for _, port := range []uint32{mesh.GRPCProbePort, mesh.GRPCProbePort + 1} {
		if codec := envoy.hcm(port).GetCodecType(); codec != hcmv3.HttpConnectionManager_HTTP2 {
			t.Errorf("port %d: codec %v, want HTTP2 (the kubelet's gRPC probe is h2c)", port, codec)
		}
	}

	// Refused: any other path, method or service.
	refused := map[uint32][]request{mesh.ProbePort: {}, mesh.GRPCProbePort: {}, mesh.GRPCProbePort + 1: {}}
	for _, path := range []string{
		"/admin", "/", "/healthz", "/ready?full=1", "/status", "/healthz/../admin", "/healthz%2F..%2Fadmin",
		"/osm-probe/web/liveness/../../../admin", "/osm-probe/web/liveness/..%2F..%2Fadmin", "/osm-probe/web/liveness%2F..%2F..%2Fadmin",
		"/osm-probe/web/liveness/%2e%2e/%2e%2e/%2e%2e/admin", "/osm-probe/web/liveness?x=/admin", "/osm-probe/web/liveness?",
		"/osm-probe/web/liveness/", "//osm-probe/web/liveness", "/osm-probe/web/LIVENESS", "/osm-probe/web/liveness/admin",
		"/osm-probe/web", "/osm-probe/", "/osm-probe/cache/liveness", "/grpc.health.v1.Health/Check",
	} {
		refused[mesh.ProbePort] = append(refused[mesh.ProbePort], request{method: "GET", path: path}, request{method: "GET", path: path, h2: true})
	}
	for _, method := range []string{"POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"} {
		refused[mesh.ProbePort] = append(refused[mesh.ProbePort], request{method: method, path: "/osm-probe/web/liveness"})
	}
	for _, port := range []uint32{mesh.GRPCProbePort, mesh.GRPCProbePort + 1} {
		for _, path := range []string{
			"/grpc.health.v1.Health/Watch", "/shop.Orders/Delete", "/", "/grpc.health.v1.Health/Check/../../shop.Orders/Delete",
			"/grpc.health.v1.Health/Check%2F..%2F..%2Fshop.Orders%2FDelete", "/grpc.health.v1.Health%2FCheck", "/grpc.health.v1.Health/Check?x=1",
			"/grpc.health.v1.Health/CheckX", "/grpc.health.v1.Health/check", "//grpc.health.v1.Health/Check", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
		} {
			refused[port] = append(refused[port], request{method: "POST", path: path, h2: true, grpc: true})
		}
		refused[port] = append(refused[port],
			request{method: "GET", path: kubeletGRPC.path, h2: true, grpc: true},
			request{method: "POST", path: kubeletGRPC.path, grpc: true}, // HTTP/1.1
		)
	}
	for port, reqs := range refused {
		for _, req := range reqs {
			if got := envoy.serve(port, req); got.cluster != "" {
				t.Errorf("port %d, %s: %s; want it refused", port, req, got)
			}
		}
	}

	// Whatever the request, what reaches an app is one of the probes. The
	// paths are the probes' and their targets, mangled.
	allowed := map[string]bool{}
	var bases []string
	for _, f := range forwards {
		allowed[fmt.Sprint(f.port, f.req.method, f.cluster, f.path)] = true
		bases = append(bases, f.req.path, f.path)
	}
	bases = append(bases, "/", "/admin", "/grpc.health.v1.Health/Watch", "/osm-probe")
	slices.Sort(bases)
	var paths []string
	for _, base := range slices.Compact(bases) {
		for _, mangle := range []func(string) string{
			func(p string) string { return p },
			func(p string) string { return p + "/" },
			func(p string) string { return p + "?x=1" },
			func(p string) string { return p + "#x" },
			func(p string) string { return p + ";x" },
			func(p string) string { return p + "/../admin" },
			func(p string) string { return p + "/../../../admin" },
			func(p string) string { return p + "%2F..%2F..%2Fadmin" },
			func(p string) string { return p + "/%2e%2e/%2e%2e/%2e%2e/admin" },
			func(p string) string { return p + "/." },
			func(p string) string { return "/x/.." + p },
			func(p string) string { return "/." + p },
			func(p string) string { return "/" + p },
			func(p string) string { return strings.ToUpper(p) },
			func(p string) string { return strings.ReplaceAll(p, "/", "%2F") },
			func(p string) string { return strings.ReplaceAll(p, "/", "\\") },
			func(p string) string { return strings.ReplaceAll(p, "e", "%65") },
		} {
			paths = append(paths, mangle(base))
		}
	}
	for port := range refused {
		leaks := 0
		for _, path := range paths {
			for _, method := range []string{"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT"} {
				for _, h2 := range []bool{false, true} {
					req := request{method: method, path: path, h2: h2, grpc: h2 && method == "POST"}
					got := envoy.serve(port, req)
					if got.cluster == "" || allowed[fmt.Sprint(port, method, got.cluster, got.path)] {
						continue
					}
					if leaks++; leaks <= 5 {
						t.Errorf("port %d, %s: %s, which is no probe", port, req, got)
					}
				}
			}
		}
		if leaks > 5 {
			t.Errorf("port %d: %d requests in all reach the app and are no probe", port, leaks)
		}
	}
}

// TestKubeletRequestURI: the proxy sends the app what the kubelet would have
// sent it for the probe's path.
func TestKubeletRequestURI(t *testing.T) {
	for path, want := range map[string]string{
		"":              "/",
		"/healthz":      "/healthz",
		"/ready?full=1": "/ready?full=1",
		"healthz":       "/healthz",
		"/a b":          "/a%20b",
		"/x#frag":       "/x",
		"/x'\nEOF\n":    "/x%27%0AEOF%0A",
	} {
		if got := kubeletRequestURI(path); got != want {
			t.Errorf("kubeletRequestURI(%q) = %q, want %q", path, got, want)
		}
	}
}

// sidecarBootstrap is the bootstrap of an injected pod's proxy, named as
// Kubernetes expands it.
func sidecarBootstrap(t *testing.T, pod *corev1.Pod) *bootstrapv3.Bootstrap {
	t.Helper()
	i := slices.IndexFunc(pod.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == ProxyContainer })
	if i < 0 {
		t.Fatal("the pod has no proxy")
	}
	args := pod.Spec.InitContainers[i].Args
	j := slices.Index(args, "--config-yaml")
	if j < 0 || j+1 >= len(args) {
		t.Fatalf("the proxy has no bootstrap: %v", args)
	}
	boot := strings.NewReplacer("$(POD_NAMESPACE)", pod.Namespace, "$(POD_NAME)", "p-1").Replace(args[j+1])
	b := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal([]byte(boot), b); err != nil {
		t.Fatalf("the bootstrap does not parse: %v", err)
	}
	return b
}

// checkTypedConfigs validates the typed configs of a bootstrap's static
// listeners and clusters, as Envoy does when it builds them (its proto
// validation reaches into them; Bootstrap.ValidateAll stops at an Any): a
// route whose prefix_rewrite holds a line feed fails here, and Envoy
// refuses the bootstrap.
func checkTypedConfigs(t *testing.T, b *bootstrapv3.Bootstrap) {
	t.Helper()
	check := func(where string, a *anypb.Any) proto.Message {
		if a == nil {
			return nil
		}
		m, err := a.UnmarshalNew()
		if err != nil {
			t.Errorf("%s: %v", where, err)
			return nil
		}
		if v, ok := m.(interface{ ValidateAll() error }); ok {
			if err := v.ValidateAll(); err != nil {
				t.Errorf("%s: Envoy refuses its %s: %v", where, a.GetTypeUrl(), err)
			}
		}
		return m
	}
	for _, l := range b.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			check("listener "+l.GetName(), fc.GetTransportSocket().GetTypedConfig())
			for _, f := range fc.GetFilters() {
				if h, ok := check("listener "+l.GetName(), f.GetTypedConfig()).(*hcmv3.HttpConnectionManager); ok {
					for _, hf := range h.GetHttpFilters() {
						check("listener "+l.GetName()+", HTTP filter "+hf.GetName(), hf.GetTypedConfig())
					}
				}
			}
		}
	}
	for _, c := range b.GetStaticResources().GetClusters() {
		check("cluster "+c.GetName(), c.GetTransportSocket().GetTypedConfig())
		for _, o := range c.GetTypedExtensionProtocolOptions() {
			check("cluster "+c.GetName(), o)
		}
	}
}

// request is one HTTP request to a listener: its method and :path; over
// HTTP/2 (h2c, as the kubelet's gRPC probe) or HTTP/1.1; with gRPC's
// content-type. It has no other header a route could match.
type request struct {
	method, path string
	h2, grpc     bool
}

func (r request) String() string {
	proto := "HTTP/1.1"
	if r.h2 {
		proto = "HTTP/2"
	}
	if r.grpc {
		proto += " gRPC"
	}
	return fmt.Sprintf("%s %q (%s)", r.method, r.path, proto)
}

// outcome is what a listener does with a request: forwards it to cluster
// with :path path, within the route's timeout, or refuses it, saying why.
type outcome struct {
	cluster, path string
	timeout       time.Duration
	refused       string
}

func (o outcome) String() string {
	if o.cluster == "" {
		return "refused: " + o.refused
	}
	return fmt.Sprintf("forwarded to %s as %q", o.cluster, o.path)
}

// envoyModel evaluates a bootstrap's static listeners the way Envoy handles
// a request, for the configuration forms the injector emits, and stops the
// test at any other (so that it never guesses): a TCP proxy forwards the
// request as it is; an HTTP connection manager with an inline route table
// and the router alone checks its codec, transforms the path as its
// options say, then takes the first route that matches. Sources (Envoy):
// source/common/http/conn_manager_utility.cc (path transformations, escaped
// slashes first), source/common/router/config_impl.cc (route matching;
// exact and prefix paths are compared without the query string and
// fragment, case-sensitively by default; prefix_rewrite replaces the
// matched part and keeps the rest), source/common/router/router.cc (no
// route: a local 404).
type envoyModel struct {
	t         *testing.T
	listeners map[uint32]*listenerv3.Listener // by port: the IPv4 ones
	clusters  map[string]*clusterv3.Cluster
}

func newEnvoyModel(t *testing.T, b *bootstrapv3.Bootstrap) *envoyModel {
	m := &envoyModel{t: t, listeners: map[uint32]*listenerv3.Listener{}, clusters: map[string]*clusterv3.Cluster{}}
	for _, l := range b.GetStaticResources().GetListeners() {
		m.listeners[l.GetAddress().GetSocketAddress().GetPortValue()] = l
	}
	for _, c := range b.GetStaticResources().GetClusters() {
		m.clusters[c.GetName()] = c
	}
	return m
}

func (m *envoyModel) unsupported(format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf("the model of Envoy does not know this config: "+format, args...)
}

// filter is the one network filter of the listener on port.
func (m *envoyModel) filter(port uint32) proto.Message {
	m.t.Helper()
	l := m.listeners[port]
	if l == nil {
		m.t.Fatalf("no listener on port %d", port)
	}
	if len(l.GetFilterChains()) != 1 || l.GetDefaultFilterChain() != nil || len(l.GetListenerFilters()) > 0 {
		m.unsupported("listener %s has %d filter chains", l.GetName(), len(l.GetFilterChains()))
	}
	fc := l.GetFilterChains()[0]
	if fc.GetFilterChainMatch() != nil || fc.GetTransportSocket() != nil || len(fc.GetFilters()) != 1 {
		m.unsupported("listener %s: a chain with a match, TLS or %d filters", l.GetName(), len(fc.GetFilters()))
	}
	f, err := fc.GetFilters()[0].GetTypedConfig().UnmarshalNew()
	if err != nil {
		m.t.Fatalf("listener %s: %v", l.GetName(), err)
	}
	return f
}

func (m *envoyModel) hcm(port uint32) *hcmv3.HttpConnectionManager {
	h, _ := m.filter(port).(*hcmv3.HttpConnectionManager)
	return h
}

func (m *envoyModel) serve(port uint32, req request) outcome {
	m.t.Helper()
	switch f := m.filter(port).(type) {
	case *tcpproxyv3.TcpProxy:
		if f.GetCluster() == "" {
			m.unsupported("a TCP proxy to weighted clusters")
		}
		return outcome{cluster: f.GetCluster(), path: req.path}
	case *hcmv3.HttpConnectionManager:
		return m.http(f, req)
	default:
		m.unsupported("network filter %T", f)
		return outcome{}
	}
}

func (m *envoyModel) http(h *hcmv3.HttpConnectionManager, req request) outcome {
	m.t.Helper()
	switch h.GetCodecType() {
	case hcmv3.HttpConnectionManager_AUTO:
	case hcmv3.HttpConnectionManager_HTTP1:
		if req.h2 {
			return outcome{refused: "the codec is HTTP/1.1"}
		}
	case hcmv3.HttpConnectionManager_HTTP2:
		if !req.h2 {
			return outcome{refused: "the codec is HTTP/2"}
		}
	default:
		m.unsupported("codec %v", h.GetCodecType())
	}
	for _, f := range h.GetHttpFilters() {
		if f.GetTypedConfig().GetTypeUrl() != "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" {
			m.unsupported("HTTP filter %s", f.GetName())
		}
	}
	if h.GetTypedHeaderValidationConfig() != nil || h.GetPathNormalizationOptions() != nil || h.GetStripPortMode() != nil {
		m.unsupported("header validation or path normalization options")
	}

	// The path's transformations, on the path without its query.
	path, query := req.path, ""
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path, query = path[:i], path[i:]
	}
	switch h.GetPathWithEscapedSlashesAction() {
	case hcmv3.HttpConnectionManager_IMPLEMENTATION_SPECIFIC_DEFAULT, hcmv3.HttpConnectionManager_KEEP_UNCHANGED:
	case hcmv3.HttpConnectionManager_REJECT_REQUEST:
		if strings.Contains(strings.ToLower(path), "%2f") || strings.Contains(strings.ToLower(path), "%5c") {
			return outcome{refused: "400, an escaped slash"}
		}
	case hcmv3.HttpConnectionManager_UNESCAPE_AND_FORWARD:
		path = strings.NewReplacer("%2F", "/", "%2f", "/", "%5C", "\\", "%5c", "\\").Replace(path)
	default:
		m.unsupported("path_with_escaped_slashes_action %v", h.GetPathWithEscapedSlashesAction())
	}
	if h.GetNormalizePath().GetValue() {
		path = normalizePath(path)
	}
	if h.GetMergeSlashes() {
		for strings.Contains(path, "//") {
			path = strings.ReplaceAll(path, "//", "/")
		}
	}
	fullPath := path + query

	rc := h.GetRouteConfig()
	if rc == nil || len(rc.GetVirtualHosts()) != 1 || !slices.Equal(rc.GetVirtualHosts()[0].GetDomains(), []string{"*"}) {
		m.unsupported("routes other than one inline virtual host for *")
	}
	for _, r := range rc.GetVirtualHosts()[0].GetRoutes() {
		matched, ok := m.match(r.GetMatch(), req, fullPath)
		if !ok {
			continue
		}
		switch a := r.GetAction().(type) {
		case *routev3.Route_Route:
			ra := a.Route
			if ra.GetCluster() == "" || ra.GetRegexRewrite() != nil || ra.GetPathRewritePolicy() != nil || ra.GetPathRewrite() != "" {
				m.unsupported("a route action other than to one cluster with a prefix rewrite")
			}
			if m.clusters[ra.GetCluster()] == nil {
				m.t.Fatalf("a route to cluster %s, which the bootstrap lacks", ra.GetCluster())
			}
			to := fullPath
			if ra.GetPrefixRewrite() != "" {
				to = ra.GetPrefixRewrite() + fullPath[len(matched):]
			}
			timeout := 15 * time.Second // RouteAction.timeout's default
			if ra.GetTimeout() != nil {
				timeout = ra.GetTimeout().AsDuration() // 0: none
			}
			return outcome{cluster: ra.GetCluster(), path: to, timeout: timeout}
		case *routev3.Route_DirectResponse:
			return outcome{refused: fmt.Sprintf("a direct response, %d", a.DirectResponse.GetStatus())}
		case *routev3.Route_Redirect:
			return outcome{refused: "a redirect"}
		default:
			m.unsupported("route action %T", a)
		}
	}
	return outcome{refused: "no route, 404"}
}

// match says whether a route matches, and which part of the path it matched
// (for prefix_rewrite).
func (m *envoyModel) match(rm *routev3.RouteMatch, req request, path string) (string, bool) {
	m.t.Helper()
	if (rm.GetCaseSensitive() != nil && !rm.GetCaseSensitive().GetValue()) || len(rm.GetQueryParameters()) > 0 || len(rm.GetCookies()) > 0 ||
		rm.GetGrpc() != nil || rm.GetRuntimeFraction() != nil || rm.GetTlsContext() != nil || len(rm.GetDynamicMetadata()) > 0 || len(rm.GetFilterState()) > 0 {
		m.unsupported("route match %v", rm)
	}
	bare := path
	if i := strings.IndexAny(bare, "?#"); i >= 0 {
		bare = bare[:i]
	}
	var matched string
	switch ps := rm.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Path:
		if bare != ps.Path {
			return "", false
		}
		matched = ps.Path
	case *routev3.RouteMatch_Prefix:
		if !strings.HasPrefix(bare, ps.Prefix) {
			return "", false
		}
		matched = ps.Prefix
	default:
		m.unsupported("path match %T", ps)
	}
	headers := map[string]string{":method": req.method, ":path": path}
	if req.grpc {
		headers["content-type"] = "application/grpc"
	}
	for _, hm := range rm.GetHeaders() {
		if hm.GetInvertMatch() || hm.GetTreatMissingHeaderAsEmpty() {
			m.unsupported("header matcher %v", hm)
		}
		value, present := headers[hm.GetName()]
		var ok bool
		switch s := hm.GetHeaderMatchSpecifier().(type) {
		case *routev3.HeaderMatcher_StringMatch:
			if s.StringMatch.GetIgnoreCase() {
				m.unsupported("header matcher %v", hm)
			}
			switch {
			case s.StringMatch.GetExact() != "":
				ok = present && value == s.StringMatch.GetExact()
			case s.StringMatch.GetPrefix() != "":
				ok = present && strings.HasPrefix(value, s.StringMatch.GetPrefix())
			default:
				m.unsupported("header matcher %v", hm)
			}
		case *routev3.HeaderMatcher_PresentMatch:
			ok = present == s.PresentMatch
		default:
			m.unsupported("header matcher %v", hm)
		}
		if !ok {
			return "", false
		}
	}
	return matched, true
}

// normalizePath models normalize_path: RFC 3986 normalization (section
// 6.2.2), which Envoy does with Chromium's URL canonicalizer. The model
// decodes escapes of unreserved characters, reads a backslash as a slash and
// removes dot segments; where it differs from Chromium's, the test's claims
// hold still: a route matches only a :path equal to its probe's, which is
// then replaced by the probe's target or forwarded as it is.
func normalizePath(path string) string {
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c == '%' && i+2 < len(path) {
			var d byte
			if _, err := fmt.Sscanf(path[i+1:i+3], "%02x", &d); err == nil && (d >= 'a' && d <= 'z' || d >= 'A' && d <= 'Z' || d >= '0' && d <= '9' || strings.IndexByte("-._~", d) >= 0) {
				b.WriteByte(d)
				i += 2
				continue
			}
		}
		if c == '\\' {
			c = '/'
		}
		b.WriteByte(c)
	}
	// RFC 3986 section 5.2.4, on a path that starts with a slash.
	if !strings.HasPrefix(b.String(), "/") {
		return b.String()
	}
	var out []string
	segments := strings.Split(b.String(), "/")[1:]
	for i, s := range segments {
		last := i == len(segments)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}

// upstream is where a probe cluster connects: its port on localhost, and
// whether with TLS and HTTP/2.
func (m *envoyModel) upstream(name string) (port uint32, tls, http2 bool) {
	m.t.Helper()
	c := m.clusters[name]
	eps := c.GetLoadAssignment().GetEndpoints()
	if len(eps) != 1 || len(eps[0].GetLbEndpoints()) != 1 {
		m.t.Fatalf("cluster %s has %d localities", name, len(eps))
	}
	sa := eps[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
	if sa.GetAddress() != "127.0.0.1" {
		m.t.Errorf("cluster %s reaches %s, not the pod's loopback", name, sa.GetAddress())
	}
	if o := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]; o != nil {
		opts := &httpv3.HttpProtocolOptions{}
		if err := o.UnmarshalTo(opts); err != nil {
			m.t.Fatal(err)
		}
		http2 = opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil
	}
	return sa.GetPortValue(), c.GetTransportSocket() != nil, http2
}

// TestAProbeOfTheProxysOwnPortIsRefused: the probe listeners serve in plain
// text to anyone who reaches the pod, so a probe the proxy would forward
// (HTTP without a host, gRPC) to a port of the proxy's own, 15000–15999 (the
// admin interface's /config_dump on 15000, its listeners, the probe ports
// themselves), is refused, naming the container, the probe and the port
// (and the name of a named port), and the pod is left untouched. Ports next
// to the range, and an HTTP probe of another host (which the kubelet sends
// itself), are injected.
func TestAProbeOfTheProxysOwnPortIsRefused(t *testing.T) {
	httpGet := func(path string, port intstr.IntOrString) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: port}}}
	}
	grpc := func(port int32) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: port}}}
	}
	for _, tc := range []struct {
		name string
		set  func(c *corev1.Container)
		want string // in the error; empty when the pod is injected
	}{
		{"HTTP liveness of the admin interface", func(c *corev1.Container) { c.LivenessProbe = httpGet("/config_dump", intstr.FromInt32(15000)) },
			`container "api": liveness probe: httpGet port 15000 is the proxy's (ports 15000-15999 are the sidecar's own, 15000 its admin interface)`},
		{"HTTP readiness of a named port", func(c *corev1.Container) {
			c.Ports = append(c.Ports, corev1.ContainerPort{Name: "envoy", ContainerPort: 15000})
			c.ReadinessProbe = httpGet("/stats", intstr.FromString("envoy"))
		}, `container "api": readiness probe: httpGet port "envoy" (15000) is the proxy's`},
		{"HTTP startup of the probe port", func(c *corev1.Container) {
			c.StartupProbe = httpGet("/osm-probe/web/liveness", intstr.FromInt32(mesh.ProbePort))
		},
			`container "api": startup probe: httpGet port 15901 is the proxy's`},
		{"HTTPS of the last proxy port", func(c *corev1.Container) {
			c.LivenessProbe = httpGet("/", intstr.FromInt32(15999))
			c.LivenessProbe.HTTPGet.Scheme = corev1.URISchemeHTTPS
		}, `container "api": liveness probe: httpGet port 15999 is the proxy's`},
		{"gRPC of the admin interface", func(c *corev1.Container) { c.LivenessProbe = grpc(15000) },
			`container "api": liveness probe: grpc port 15000 is the proxy's`},
		{"gRPC of the inbound listener", func(c *corev1.Container) { c.StartupProbe = grpc(mesh.InboundListenerPort) },
			`container "api": startup probe: grpc port 15003 is the proxy's`},
		{"HTTP below the range", func(c *corev1.Container) { c.LivenessProbe = httpGet("/", intstr.FromInt32(14999)) }, ""},
		{"gRPC above the range", func(c *corev1.Container) { c.LivenessProbe = grpc(16000) }, ""},
		{"HTTP of another host", func(c *corev1.Container) {
			c.LivenessProbe = httpGet("/", intstr.FromInt32(15000))
			c.LivenessProbe.HTTPGet.Host = "192.0.2.1"
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := probePod()
			tc.set(&pod.Spec.Containers[1])
			before := pod.DeepCopy()
			err := Pod(pod, testConfig())
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want %q", err, tc.want)
			}
			if !equality.Semantic.DeepEqual(pod, before) {
				t.Error("the refused pod was changed")
			}
		})
	}
}
