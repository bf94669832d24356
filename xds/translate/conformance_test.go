package translate_test

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/open-service-mesh/osm-operator/xds/envoyrules"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/routesim"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// The Gateway API mesh conformance tests (GAMMA, sigs.k8s.io/gateway-api
// v1.6.3, conformance/tests/mesh on release-1.6), run on the translation
// instead of a cluster: each upstream test is a sub-test, named with the
// test's ShortName and the features it needs, with the upstream fixture
// (conformance/mesh/manifests.yaml: Services echo, echo-v1 and echo-v2 and
// their pods, here meshed) and the test's routes. Each request of the test
// goes from the client's proxy group: its outbound listener's chain for the
// Service address it dials, that chain's route configuration, and what
// Envoy does with the request there (routesim). Each expectation of the
// upstream test is checked, and, where the upstream harness is looser than
// the spec (redirect Locations, rewritten paths), the spec's value.

const (
	meshNS     = "gateway-conformance-mesh"
	consumerNS = "gateway-conformance-mesh-consumer"
)

// The fixture's addresses.
var (
	clusterIPs = map[string]string{"echo": "10.96.0.10", "echo-v1": "10.96.0.11", "echo-v2": "10.96.0.12"}
	echoV2Pod  = "10.244.1.2"
)

// conformanceFixture is conformance/mesh/manifests.yaml for this mesh: both
// namespaces are members; echo-v1 and echo-v2 run in the mesh namespace
// (labels app=echo, version=v1|v2; service account default, as upstream)
// behind Services echo-v1, echo-v2 and echo (both versions), with the
// upstream ports (http 80→8080 and http-alt 8080, appProtocol http; https
// 443→8443; tcp 9090; grpc 7070, kubernetes.io/h2c on echo only); echo-v1
// runs in the consumer namespace too. Each pod has its sidecar. The mesh is
// Permissive, and lets traffic to what is not a Service through (egress
// Allow), as MeshFrontend's request to a pod's address needs. A proxyless
// gRPC client (grpc-client) calls from the mesh namespace, for the GRPCRoute
// tests.
func conformanceFixture() string {
	var b strings.Builder
	b.WriteString(`apiVersion: mesh.openservicemesh.io/v1alpha1
kind: MeshInstance
metadata: {name: osm}
spec:
  trustDomain: cluster.local
  trafficPolicy: {mode: Permissive}
  egress: {mode: Allow}
`)
	for _, ns := range []string{meshNS, consumerNS} {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: %s, labels: {openservicemesh.io/monitor: osm}}\n", ns)
	}
	for _, svc := range []string{"echo", "echo-v1", "echo-v2"} {
		grpcProto := ""
		if svc == "echo" {
			grpcProto = ", appProtocol: kubernetes.io/h2c"
		}
		fmt.Fprintf(&b, `---
apiVersion: v1
kind: Service
metadata: {name: %s, namespace: %s}
spec:
  clusterIP: %q
  ports:
  - {name: http, port: 80, appProtocol: http, targetPort: 8080}
  - {name: http-alt, port: 8080, appProtocol: http}
  - {name: https, port: 443, targetPort: 8443}
  - {name: tcp, port: 9090}
  - {name: grpc, port: 7070%s}
`, svc, meshNS, clusterIPs[svc], grpcProto)
	}
	type pod struct{ ns, name, ip, version string }
	pods := []pod{{meshNS, "echo-v1-0", "10.244.1.1", "v1"}, {meshNS, "echo-v2-0", echoV2Pod, "v2"}, {consumerNS, "echo-v1-0", "10.244.2.1", "v1"}}
	backing := map[string][]pod{"echo": {pods[0], pods[1]}, "echo-v1": {pods[0]}, "echo-v2": {pods[1]}}
	for _, svc := range []string{"echo", "echo-v1", "echo-v2"} {
		fmt.Fprintf(&b, `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: %s-0, namespace: %s, labels: {kubernetes.io/service-name: %s}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: http-alt, port: 8080}, {name: https, port: 8443}, {name: tcp, port: 9090}, {name: grpc, port: 7070}]
endpoints:
`, svc, meshNS, svc)
		for _, p := range backing[svc] {
			fmt.Fprintf(&b, "- addresses: [%q]\n  conditions: {ready: true}\n  targetRef: {kind: Pod, name: %s, namespace: %s}\n", p.ip, p.name, p.ns)
		}
	}
	for _, p := range pods {
		fmt.Fprintf(&b, `---
apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: %s, labels: {app: echo, version: %s}}
spec:
  serviceAccountName: default
  initContainers: [{name: osm-envoy, image: envoy, restartPolicy: Always}]
  containers: [{name: echo, image: echo-advanced}]
status: {podIP: %s}
`, p.name, p.ns, p.version, p.ip)
	}
	fmt.Fprintf(&b, `---
apiVersion: v1
kind: Pod
metadata: {name: grpc-client-0, namespace: %s, annotations: {openservicemesh.io/proxy: grpc}}
spec:
  serviceAccountName: grpc-client
  containers: [{name: app, image: app, env: [{name: GRPC_XDS_BOOTSTRAP_CONFIG, value: "{}"}]}]
status: {podIP: 10.244.1.9}
`, meshNS)
	return b.String()
}

// meshCase is one request of an upstream test and what must happen to it.
type meshCase struct {
	name string
	// from is the client's namespace; "" is the mesh namespace.
	from string
	// to and port are the Service (of the mesh namespace) and port the
	// client dials; dial, when set, is the address dialled instead (a pod's).
	to    string
	port  int32
	dial  string
	req   routesim.Request
	grpc  bool // the proxyless gRPC client sends it too
	want  want
	notes string
}

// want is what the client sees, and what the backend receives.
type want struct {
	// status is what Envoy answers itself (a redirect, 404, 500); 0 is a
	// forwarded request (the backend's 200).
	status   int
	location string
	// backend is the Service "name:port" every request goes to; weights
	// the share of each, for a split.
	backend string
	weights map[string]float64
	// path is the path the backend receives; "" is the request's.
	path                         string
	reqHeaders, respHeaders      map[string]string
	absentReqHeaders, absentResp []string
	routeNameContains            string
	// unroutedToPod: the request passes through to the pod, outside any route.
	unroutedToPod bool
}

// meshTest is an upstream conformance test.
type meshTest struct {
	name     string
	features []string
	routes   string
	cases    []meshCase
}

// knownGaps are the cases the translation gets wrong, each with why: they
// are logged and skipped, and every other case must pass. Keys are
// "<test>/<case>" (the upstream ShortName and the case's name). None today.
var knownGaps = map[string]string{}

func get(host, path string, headers ...string) routesim.Request {
	return routesim.Request{Method: "GET", Host: host, Path: path, Headers: routesim.H(headers...)}
}

// grpcCall is a unary gRPC call: a POST of "/<service>/<method>". Envoy's
// route matching stands for grpc-go's on the proxyless client: for the
// prefixes, exact paths, regexes and exact header matches translated for
// gRPC they agree (gRFC A28).
func grpcCall(host, service, method string, headers ...string) routesim.Request {
	return routesim.Request{Method: "POST", Host: host, Path: "/" + service + "/" + method,
		Headers: append(routesim.H("content-type", "application/grpc", "te", "trailers"), routesim.H(headers...)...)}
}

func TestMeshConformance(t *testing.T) {
	for _, mt := range meshTests() {
		t.Run(mt.name+"("+strings.Join(mt.features, ",")+")", func(t *testing.T) {
			run := newMeshRun(t, mt.routes)
			for _, c := range mt.cases {
				t.Run(c.name, func(t *testing.T) {
					if why, ok := knownGaps[mt.name+"/"+c.name]; ok {
						t.Logf("known gap of the translation: %s", why)
						t.Skip("known gap")
					}
					if c.notes != "" {
						t.Log(c.notes)
					}
					run.check(t, c)
				})
			}
		})
	}
}

// meshRun is the translation of the fixture with a test's routes.
type meshRun struct {
	m   *mesh.Mesh
	res map[mesh.Group]*translate.Resources
}

func newMeshRun(t *testing.T, routes string) *meshRun {
	t.Helper()
	in, err := meshtest.Decode([]byte(conformanceFixture() + routes))
	if err != nil {
		t.Fatal(err)
	}
	m, problems := mesh.Build(in)
	for _, p := range problems {
		t.Logf("problem: %v", p)
	}
	for _, st := range m.RouteStatuses {
		t.Logf("%s %s/%s parentRefs[%d]: Accepted=%v %s (%s); ResolvedRefs=%v %s", st.Kind, st.Namespace, st.Name, st.Parent,
			st.Accepted.OK, st.Accepted.Reason, st.Accepted.Message, st.ResolvedRefs.OK, st.ResolvedRefs.Reason)
	}
	run := &meshRun{m: m, res: map[mesh.Group]*translate.Resources{}}
	for _, g := range m.Groups {
		res, err := translate.Translate(m.View(g), fakeCerts(g))
		if err != nil {
			t.Fatalf("group %s: %v", g, err)
		}
		if g.Kind == mesh.ProxyEnvoy {
			if err := envoyrules.Check(res.Envoy(), translate.RuleOptions()); err != nil {
				t.Errorf("group %s: %v", g, err)
			}
		}
		run.res[g] = res
	}
	return run
}

func (r *meshRun) group(t *testing.T, kind mesh.ProxyKind, ns, sa string) *translate.Resources {
	t.Helper()
	res := r.res[mesh.Group{Kind: kind, Identity: mesh.Identity{Namespace: ns, ServiceAccount: sa}}]
	if res == nil {
		t.Fatalf("no %s group for %s/%s; groups: %v", kind, ns, sa, r.m.Groups)
	}
	return res
}

func listener(res *translate.Resources, name string) *listenerv3.Listener {
	for _, l := range res.Listeners {
		if l.GetName() == name {
			return l
		}
	}
	return nil
}

func routeConfig(res *translate.Resources, name string) *routev3.RouteConfiguration {
	for _, rc := range res.Routes {
		if rc.GetName() == name {
			return rc
		}
	}
	return nil
}

func hasCluster(res *translate.Resources, name string) bool {
	for _, c := range res.Clusters {
		if c.GetName() == name {
			return true
		}
	}
	return false
}

// serviceCluster is the cluster of a "name:port" Service of the mesh namespace.
func serviceCluster(t *testing.T, backend string) string {
	t.Helper()
	name, port, ok := strings.Cut(backend, ":")
	var p int32
	if _, err := fmt.Sscan(port, &p); !ok || err != nil {
		t.Fatalf("backend %q is not name:port", backend)
	}
	return translate.OutboundClusterName(mesh.ServiceKey{Namespace: meshNS, Name: name}, p)
}

func (r *meshRun) check(t *testing.T, c meshCase) {
	from := c.from
	if from == "" {
		from = meshNS
	}
	res := r.group(t, mesh.ProxyEnvoy, from, "default")
	out := listener(res, translate.OutboundListener)
	if out == nil {
		t.Fatalf("the client has no %s listener", translate.OutboundListener)
	}
	svc := mesh.ServiceKey{Namespace: meshNS, Name: c.to}
	dst := netip.AddrPortFrom(netip.MustParseAddr(clusterIPs[c.to]), uint16(c.port))
	if c.dial != "" {
		dst = netip.MustParseAddrPort(c.dial)
	}
	fc := routesim.Chain(out, routesim.Conn{Dst: dst, Src: netip.MustParseAddrPort("10.244.1.1:40000")})
	if fc == nil {
		t.Fatalf("no chain of the outbound listener takes %s", dst)
	}
	hcm, err := routesim.ConnectionManager(fc)
	if err != nil {
		t.Fatal(err)
	}
	if c.want.unroutedToPod {
		r.checkUnrouted(t, c, fc, hcm != nil, dst)
		return
	}
	if hcm == nil {
		t.Fatalf("chain %s for %s has no HTTP connection manager", fc.GetName(), dst)
	}
	name := translate.OutboundClusterName(svc, c.port)
	if got := hcm.GetRds().GetRouteConfigName(); got != name {
		t.Fatalf("chain %s for %s loads routes %q, want %q", fc.GetName(), dst, got, name)
	}
	rc := routeConfig(res, name)
	if rc == nil {
		t.Fatalf("the client has no route configuration %q", name)
	}
	checkResult(t, "envoy", c, routesim.Route(rc, c.req), func(cluster string) bool { return hasCluster(res, cluster) })

	if c.grpc {
		gres := r.group(t, mesh.ProxyGRPC, meshNS, "grpc-client")
		ln := translate.GRPCListenerName(r.m, svc, c.port)
		l := listener(gres, ln)
		if l == nil {
			t.Fatalf("the gRPC client has no listener %q", ln)
		}
		ghcm, err := routesim.APIListenerManager(l)
		if err != nil {
			t.Fatal(err)
		}
		if ghcm.GetRouteConfig() == nil {
			t.Fatalf("listener %q has no inline route configuration", ln)
		}
		checkResult(t, "grpc", c, routesim.Route(ghcm.GetRouteConfig(), c.req), func(cluster string) bool { return hasCluster(gres, cluster) })
	}
}

// checkUnrouted checks a request to a pod's own address: no route applies;
// the client's proxy passes it through (no HTTP connection manager), and
// the pod's own proxy hands it to the application, plaintext.
func (r *meshRun) checkUnrouted(t *testing.T, c meshCase, fc *listenerv3.FilterChain, isHTTP bool, dst netip.AddrPort) {
	t.Helper()
	if isHTTP {
		t.Fatalf("chain %s for %s routes HTTP: the routes of a Service would apply to its pod's address", fc.GetName(), dst)
	}
	t.Logf("the client's chain for %s is %s (no HTTP routing)", dst, fc.GetName())
	server := r.group(t, mesh.ProxyEnvoy, meshNS, "default")
	in := listener(server, translate.InboundListener)
	ifc := routesim.Chain(in, routesim.Conn{Dst: dst, Src: netip.MustParseAddrPort("10.244.1.1:40000")})
	if ifc == nil {
		t.Fatalf("the pod's inbound listener takes no plaintext connection to %s", dst)
	}
	ihcm, err := routesim.ConnectionManager(ifc)
	if err != nil || ihcm == nil {
		t.Fatalf("the pod's chain %s for %s is no HTTP connection manager (%v)", ifc.GetName(), dst, err)
	}
	rc := ihcm.GetRouteConfig()
	if rc == nil {
		rc = routeConfig(server, ihcm.GetRds().GetRouteConfigName())
	}
	got := routesim.Route(rc, c.req)
	wantCluster := translate.InboundClusterName(int32(dst.Port()))
	if got.Kind != routesim.Forward || got.Share(wantCluster) != 1 {
		t.Fatalf("the pod's proxy does %s (%+v) with the request, want it sent to %s", got.Kind, got.Backends, wantCluster)
	}
	resp := got.Backends[0].Response(nil)
	for _, h := range c.want.absentResp {
		if resp.Has(h) {
			t.Errorf("the response has %s: %v", h, resp.Values(h))
		}
	}
}

// checkResult checks what Envoy (or gRPC) does with the request against
// the case; exists says whether the client has a cluster.
func checkResult(t *testing.T, client string, c meshCase, got routesim.Result, exists func(string) bool) {
	t.Helper()
	w := c.want
	for _, warn := range got.Warnings {
		t.Errorf("%s: routesim: %s", client, warn)
	}
	if w.routeNameContains != "" && !strings.Contains(got.Route, w.routeNameContains) {
		t.Errorf("%s: route %q, want one named for %q", client, got.Route, w.routeNameContains)
	}
	if w.status != 0 {
		if got.Status != w.status {
			t.Fatalf("%s: %s %d (route %q, backends %+v), want %d", client, got.Kind, got.Status, got.Route, got.Backends, w.status)
		}
		if sameURL(got.Location) != sameURL(w.location) {
			t.Errorf("%s: Location %q, want %q", client, got.Location, w.location)
		}
		checkHeaders(t, client+": response", got.LocalResponse(), w.respHeaders, w.absentResp)
		return
	}
	if got.Kind != routesim.Forward {
		t.Fatalf("%s: %s %d (route %q, location %q), want the request forwarded", client, got.Kind, got.Status, got.Route, got.Location)
	}
	weights := w.weights
	if w.backend != "" {
		weights = map[string]float64{w.backend: 1}
	}
	total := 0.0
	for backend, share := range weights {
		cl := serviceCluster(t, backend)
		if s := got.Share(cl); math.Abs(s-share) > 1e-9 {
			t.Errorf("%s: %s gets %.4f of the requests, want %.4f (backends %+v, total weight %d)", client, cl, s, share, got.Backends, got.TotalWeight)
		}
		total += share
	}
	if math.Abs(total-1) > 1e-9 {
		t.Fatalf("test bug: the shares of %v sum to %v", weights, total)
	}
	for _, b := range got.Backends {
		if b.Weight == 0 {
			continue
		}
		if !exists(b.Cluster) {
			t.Errorf("%s: %d of %d requests go to cluster %q, which the client does not have (answered %d)", client, b.Weight, max(got.TotalWeight, 1), b.Cluster, got.ClusterNotFoundStatus)
		}
		wantPath := w.path
		if wantPath == "" {
			wantPath = c.req.Path
		}
		if b.Request.Path != wantPath {
			t.Errorf("%s: %s receives path %q, want %q", client, b.Cluster, b.Request.Path, wantPath)
		}
		checkHeaders(t, client+": "+b.Cluster+" request", b.Request.Headers, w.reqHeaders, w.absentReqHeaders)
		checkHeaders(t, client+": "+b.Cluster+" response", b.Response(nil), w.respHeaders, w.absentResp)
	}
}

// checkHeaders compares headers as the harness does: names case-
// insensitively, repeated values joined with ",".
func checkHeaders(t *testing.T, what string, got routesim.Headers, want map[string]string, absent []string) {
	t.Helper()
	for name, v := range want {
		if g, ok := got.Get(name); !ok || g != v {
			t.Errorf("%s: %s is %q (present %v), want %q", what, name, g, ok, v)
		}
	}
	for _, name := range absent {
		if got.Has(name) {
			t.Errorf("%s: %s is present (%q), want it absent", what, name, got.Values(name))
		}
	}
}

// Header values of the header modifier tests (table 2.2).
var (
	headerModifierCases = []meshCase{
		{name: "set", to: "echo", port: 80, req: get("echo", "/set", "Some-Other-Header", "val"),
			want: want{backend: "echo-v1:8080", reqHeaders: map[string]string{"Some-Other-Header": "val", "X-Header-Set": "set-overwrites-values"}}},
		{name: "set overwrites", to: "echo", port: 80, req: get("echo", "/set", "Some-Other-Header", "val", "X-Header-Set", "some-other-value"),
			want: want{backend: "echo-v1:8080", reqHeaders: map[string]string{"Some-Other-Header": "val", "X-Header-Set": "set-overwrites-values"}}},
		{name: "add", to: "echo", port: 80, req: get("echo", "/add", "Some-Other-Header", "val"),
			want: want{backend: "echo-v1:8080", reqHeaders: map[string]string{"Some-Other-Header": "val", "X-Header-Add": "add-appends-values"}}},
		{name: "add appends", to: "echo", port: 80, req: get("echo", "/add", "Some-Other-Header", "val", "X-Header-Add", "some-other-value"),
			want: want{backend: "echo-v1:8080", reqHeaders: map[string]string{"Some-Other-Header": "val", "X-Header-Add": "some-other-value,add-appends-values"}}},
		{name: "remove", to: "echo", port: 80, req: get("echo", "/remove", "X-Header-Remove", "val"),
			want: want{backend: "echo-v1:8080", absentReqHeaders: []string{"X-Header-Remove"}}},
		{name: "multiple", to: "echo", port: 80, req: get("echo", "/multiple", "X-Header-Set-2", "set-val-2", "X-Header-Add-2", "add-val-2", "X-Header-Remove-2", "remove-val-2", "Another-Header", "another-header-val"),
			want: want{backend: "echo-v1:8080", reqHeaders: map[string]string{
				"X-Header-Set-1": "header-set-1", "X-Header-Set-2": "header-set-2", "X-Header-Add-1": "header-add-1",
				"X-Header-Add-2": "add-val-2,header-add-2", "X-Header-Add-3": "header-add-3", "Another-Header": "another-header-val",
			}, absentReqHeaders: []string{"X-Header-Remove-1", "X-Header-Remove-2"}}},
		{name: "case insensitivity", to: "echo", port: 80, req: get("echo", "/case-insensitivity", "x-header-set", "original-val-set", "x-header-add", "original-val-add", "x-header-remove", "original-val-remove", "Another-Header", "another-header-val"),
			want: want{backend: "echo-v1:8080", reqHeaders: map[string]string{"X-Header-Set": "header-set", "X-Header-Add": "original-val-add,header-add", "Another-Header": "another-header-val"},
				absentReqHeaders: []string{"x-header-remove", "X-Header-Remove"}}},
	}
	rewriteHeaders = map[string]string{"X-Header-Add": "header-val-1", "X-Header-Add-Append": "append-val-1,header-val-2", "X-Header-Set": "set-overwrites-values"}
)

func redirectCase(name, path string, status int, location string) meshCase {
	return meshCase{name: name, to: "echo", port: 80, req: get("echo", path), want: want{status: status, location: location}}
}

func meshTests() []meshTest {
	return []meshTest{
		{
			name: "MeshBasic", features: []string{"Mesh"},
			cases: []meshCase{{name: "to echo", to: "echo", port: 80, req: get("echo", "/"), want: want{backend: "echo:80"},
				notes: "upstream accepts any backend: without routes, the Service's own cluster (both pods)"}},
		},
		{
			name: "MeshPorts", features: []string{"Mesh", "HTTPRoute", "HTTPRouteParentRefPort", "HTTPRouteResponseHeaderModification"},
			routes: meshPortsYAML,
			cases: []meshCase{
				{name: "explicit port, that port", to: "echo-v1", port: 80, req: get("echo-v1", "/"), want: want{backend: "echo-v1:80", respHeaders: map[string]string{"X-Header-Set": "v1"}}},
				{name: "explicit port, another port", to: "echo-v1", port: 8080, req: get("echo-v1:8080", "/"), want: want{backend: "echo-v1:8080", absentResp: []string{"X-Header-Set"}}},
				{name: "no port set", to: "echo-v2", port: 80, req: get("echo-v2", "/"), want: want{backend: "echo-v2:80", respHeaders: map[string]string{"X-Header-Set": "v2"}}},
				{name: "no port set, port 8080", to: "echo-v2", port: 8080, req: get("echo-v2:8080", "/"), want: want{backend: "echo-v2:80", respHeaders: map[string]string{"X-Header-Set": "v2"}}},
			},
		},
		{
			name: "MeshFrontend", features: []string{"Mesh", "HTTPRoute", "HTTPRouteResponseHeaderModification"},
			routes: meshFrontendYAML,
			cases: []meshCase{
				{name: "send to service", to: "echo-v2", port: 80, req: get("echo-v2", "/"), want: want{backend: "echo-v2:80", respHeaders: map[string]string{"X-Header-Set": "set"}}},
				{name: "send to pod IP", to: "echo-v2", port: 8080, dial: echoV2Pod + ":8080", req: get(echoV2Pod+":8080", "/"),
					want: want{unroutedToPod: true, absentResp: []string{"X-Header-Set"}}},
			},
		},
		{
			name: "MeshFrontendHostname", features: []string{"Mesh", "MeshClusterIPMatching", "HTTPRoute", "HTTPRouteResponseHeaderModification"},
			routes: meshFrontendYAML,
			cases: []meshCase{
				{name: "service with wrong hostname", to: "echo-v2", port: 80, req: get("echo-v1", "/"), want: want{backend: "echo-v2:80", respHeaders: map[string]string{"X-Header-Set": "set"}}},
				{name: "other service with matching hostname", to: "echo-v1", port: 80, req: get("echo-v2", "/"), want: want{backend: "echo-v1:80", absentResp: []string{"X-Header-Set"}}},
			},
		},
		{
			name: "MeshConsumerRoute", features: []string{"Mesh", "MeshConsumerRoute", "HTTPRoute", "HTTPRouteResponseHeaderModification"},
			routes: meshConsumerRouteYAML,
			cases: []meshCase{
				{name: "from the consumer namespace", from: consumerNS, to: "echo-v1", port: 80, req: get("echo-v1.gateway-conformance-mesh", "/"),
					want: want{backend: "echo-v1:80", respHeaders: map[string]string{"X-Header-Set": "set"}}},
				{name: "from the producer namespace", to: "echo-v1", port: 80, req: get("echo-v1.gateway-conformance-mesh", "/"),
					want: want{backend: "echo-v1:80", absentResp: []string{"X-Header-Set"}}},
			},
		},
		{
			name: "MeshTrafficSplit", features: []string{"Mesh", "HTTPRoute"},
			routes: meshSplitYAML,
			cases: []meshCase{
				{name: "v1", to: "echo", port: 80, req: get("echo", "/v1"), want: want{backend: "echo-v1:80"}},
				{name: "v2", to: "echo", port: 80, req: get("echo", "/v2"), want: want{backend: "echo-v2:80"}},
			},
		},
		{
			name: "MeshHTTPRouteSimpleSameNamespace", features: []string{"Mesh", "HTTPRoute"},
			routes: simpleSameNamespaceYAML,
			cases:  []meshCase{{name: "to echo", to: "echo", port: 80, req: get("echo", "/"), want: want{backend: "echo-v1:8080"}}},
		},
		{
			name: "MeshHTTPRouteWeight", features: []string{"Mesh", "HTTPRoute"},
			routes: httpWeightYAML,
			cases: []meshCase{{name: "70/30", to: "echo", port: 80, req: get("echo", "/"),
				want: want{weights: map[string]float64{"echo-v1:8080": 0.7, "echo-v2:8080": 0.3}}}},
		},
		{
			name: "MeshGRPCRouteWeight", features: []string{"Mesh", "GRPCRoute"},
			routes: grpcWeightYAML,
			cases: []meshCase{{name: "70/30, echo-v3 of weight 0 missing", to: "echo", port: 7070, grpc: true,
				req:  grpcCall("echo:7070", "proto.EchoTestService", "Echo"),
				want: want{weights: map[string]float64{"echo-v1:7070": 0.7, "echo-v2:7070": 0.3}}}},
		},
		{
			name: "MeshHTTPRouteMatching", features: []string{"Mesh", "HTTPRoute"},
			routes: matchingYAML,
			cases: []meshCase{
				{name: "/", to: "echo", port: 80, req: get("echo", "/"), want: want{backend: "echo-v1:8080"}},
				{name: "/example", to: "echo", port: 80, req: get("echo", "/example"), want: want{backend: "echo-v1:8080"}},
				{name: "/ version one", to: "echo", port: 80, req: get("echo", "/", "Version", "one"), want: want{backend: "echo-v1:8080"}},
				{name: "/v2", to: "echo", port: 80, req: get("echo", "/v2"), want: want{backend: "echo-v2:8080"}},
				{name: "/v2/example", to: "echo", port: 80, req: get("echo", "/v2/example"), want: want{backend: "echo-v2:8080"}},
				{name: "/ version two", to: "echo", port: 80, req: get("echo", "/", "Version", "two"), want: want{backend: "echo-v2:8080"}},
				{name: "/v2/", to: "echo", port: 80, req: get("echo", "/v2/"), want: want{backend: "echo-v2:8080"}},
				{name: "/v2example", to: "echo", port: 80, req: get("echo", "/v2example"), want: want{backend: "echo-v1:8080"}},
				{name: "/foo/v2/example", to: "echo", port: 80, req: get("echo", "/foo/v2/example"), want: want{backend: "echo-v1:8080"}},
			},
		},
		{
			name: "MeshHTTPRouteQueryParamMatching", features: []string{"Mesh", "HTTPRoute", "MeshHTTPRouteQueryParamMatching"},
			routes: queryParamYAML,
			cases: []meshCase{
				{name: "whale", to: "echo", port: 80, req: get("echo", "/?animal=whale"), want: want{backend: "echo-v1:8080"}},
				{name: "dolphin", to: "echo", port: 80, req: get("echo", "/?animal=dolphin"), want: want{backend: "echo-v2:8080"}},
				{name: "whale and other", to: "echo", port: 80, req: get("echo", "/?animal=whale&otherparam=irrelevant"), want: want{backend: "echo-v1:8080"}},
				{name: "dolphin and color", to: "echo", port: 80, req: get("echo", "/?animal=dolphin&color=yellow"), want: want{backend: "echo-v2:8080"}},
				{name: "color only", to: "echo", port: 80, req: get("echo", "/?color=blue"), want: want{status: 404}},
				{name: "dog", to: "echo", port: 80, req: get("echo", "/?animal=dog"), want: want{status: 404}},
				{name: "whaledolphin", to: "echo", port: 80, req: get("echo", "/?animal=whaledolphin"), want: want{status: 404}},
				{name: "no query", to: "echo", port: 80, req: get("echo", "/"), want: want{status: 404}},
				{name: "path1 whale", to: "echo", port: 80, req: get("echo", "/path1?animal=whale"), want: want{backend: "echo-v1:8080"}},
				{name: "header beats query only", to: "echo", port: 80, req: get("echo", "/?animal=whale", "version", "one"), want: want{backend: "echo-v2:8080"}},
				{name: "path3 shark", to: "echo", port: 80, req: get("echo", "/path3?animal=shark"), want: want{backend: "echo-v1:8080"}},
				{name: "path4 kraken version three", to: "echo", port: 80, req: get("echo", "/path4?animal=kraken", "version", "three"), want: want{backend: "echo-v1:8080"}},
				{name: "shark without path3", to: "echo", port: 80, req: get("echo", "/?animal=shark"), want: want{status: 404}},
				{name: "path4 kraken without header", to: "echo", port: 80, req: get("echo", "/path4?animal=kraken"), want: want{status: 404}},
				{name: "longer prefix beats query", to: "echo", port: 80, req: get("echo", "/path5?animal=hydra"), want: want{backend: "echo-v1:8080"}},
			},
		},
		{
			name: "MeshHTTPRouteRequestHeaderModifier", features: []string{"Mesh", "HTTPRoute"},
			routes: requestHeaderModifierYAML,
			cases:  headerModifierCases,
		},
		{
			name: "MeshHTTPRouteBackendRequestHeaderModifier", features: []string{"Mesh", "HTTPRoute", "MeshHTTPRouteBackendRequestHeaderModification"},
			routes: backendRequestHeaderModifierYAML,
			cases:  headerModifierCases,
		},
		{
			name: "MeshHTTPRouteRewritePath", features: []string{"Mesh", "HTTPRoute", "MeshHTTPRouteRewritePath"},
			routes: rewritePathYAML,
			cases: []meshCase{
				{name: "prefix", to: "echo", port: 80, req: get("echo", "/prefix/one/two"), want: want{backend: "echo-v1:80", path: "/one/two"}},
				{name: "strip prefix", to: "echo", port: 80, req: get("echo", "/strip-prefix/three"), want: want{backend: "echo-v1:80", path: "/three"}},
				{name: "strip prefix, all of it", to: "echo", port: 80, req: get("echo", "/strip-prefix"), want: want{backend: "echo-v1:80", path: "/"}},
				{name: "full path", to: "echo", port: 80, req: get("echo", "/full/one/two"), want: want{backend: "echo-v1:80", path: "/one"}},
				{name: "full path and headers", to: "echo", port: 80,
					req:  get("echo", "/full/rewrite-path-and-modify-headers/test", "X-Header-Remove", "remove-val", "X-Header-Add-Append", "append-val-1", "X-Header-Set", "set-val"),
					want: want{backend: "echo-v1:80", path: "/test", reqHeaders: rewriteHeaders, absentReqHeaders: []string{"X-Header-Remove"}}},
				{name: "prefix and headers", to: "echo", port: 80,
					req:  get("echo", "/prefix/rewrite-path-and-modify-headers/one", "X-Header-Remove", "remove-val", "X-Header-Add-Append", "append-val-1", "X-Header-Set", "set-val"),
					want: want{backend: "echo-v1:80", path: "/prefix/one", reqHeaders: rewriteHeaders, absentReqHeaders: []string{"X-Header-Remove"}}},
			},
		},
		{
			name: "MeshHTTPRouteRedirectHostAndStatus", features: []string{"Mesh", "HTTPRoute"},
			routes: redirectHostAndStatusYAML,
			cases: []meshCase{
				redirectCase("hostname", "/hostname-redirect", 302, "http://example.org/hostname-redirect"),
				redirectCase("host and status", "/host-and-status", 301, "http://example.org/host-and-status"),
			},
		},
		{
			name: "MeshHTTPRouteRedirectPath", features: []string{"Mesh", "HTTPRoute", "MeshHTTPRouteRedirectPath"},
			routes: redirectPathYAML,
			cases: []meshCase{
				redirectCase("prefix", "/original-prefix/lemon", 302, "http://echo/replacement-prefix/lemon"),
				redirectCase("full path", "/full/path/original", 302, "http://echo/full-path-replacement"),
				redirectCase("prefix and host", "/path-and-host", 302, "http://example.org/replacement-prefix"),
				redirectCase("prefix and status", "/path-and-status", 301, "http://echo/replacement-prefix"),
				redirectCase("full path and host", "/full-path-and-host", 302, "http://example.org/replacement-full"),
				redirectCase("full path and status", "/full-path-and-status", 301, "http://echo/replacement-full"),
			},
		},
		{
			name: "MeshHTTPRouteRedirectPort", features: []string{"Mesh", "HTTPRoute", "MeshHTTPRouteRedirectPort"},
			routes: redirectPortYAML,
			cases: []meshCase{
				redirectCase("port", "/port", 302, "http://echo:8083/port"),
				redirectCase("port and host", "/port-and-host", 302, "http://example.org:8083/port-and-host"),
				redirectCase("port and status", "/port-and-status", 301, "http://echo:8083/port-and-status"),
				redirectCase("port, host and status", "/port-and-host-and-status", 302, "http://example.org:8083/port-and-host-and-status"),
			},
		},
		{
			name: "MeshHTTPRouteSchemeRedirect", features: []string{"Mesh", "HTTPRoute", "MeshHTTPRouteSchemeRedirect"},
			routes: redirectSchemeYAML,
			cases: []meshCase{
				redirectCase("scheme", "/scheme", 302, "https://echo/scheme"),
				redirectCase("scheme and host", "/scheme-and-host", 302, "https://example.org/scheme-and-host"),
				redirectCase("scheme and status", "/scheme-and-status", 301, "https://echo/scheme-and-status"),
				redirectCase("scheme, host and status", "/scheme-and-host-and-status", 302, "https://example.org/scheme-and-host-and-status"),
			},
		},
		{
			name: "MeshHTTPRoute303Redirect", features: []string{"Mesh", "HTTPRoute", "HTTPRoute303RedirectStatusCode"},
			routes: redirectStatusYAML("mesh-303-redirect", "/redirect", 303),
			cases:  []meshCase{redirectCase("303", "/redirect", 303, "http://echo/redirect")},
		},
		{
			name: "MeshHTTPRoute307Redirect", features: []string{"Mesh", "HTTPRoute", "HTTPRoute307RedirectStatusCode"},
			routes: redirectStatusYAML("mesh-307-redirect", "/temporary", 307),
			cases:  []meshCase{redirectCase("307", "/temporary", 307, "http://echo/temporary")},
		},
		{
			name: "MeshHTTPRoute308Redirect", features: []string{"Mesh", "HTTPRoute", "HTTPRoute308RedirectStatusCode"},
			routes: redirectStatusYAML("mesh-308-redirect", "/permanent", 308),
			cases:  []meshCase{redirectCase("308", "/permanent", 308, "http://echo/permanent")},
		},
		{
			name: "MeshHTTPRouteNamedRule", features: []string{"Mesh", "HTTPRoute", "MeshHTTPRouteNamedRouteRule"},
			routes: namedRuleYAML,
			cases: []meshCase{
				{name: "named", to: "echo", port: 80, req: get("echo", "/named"), want: want{backend: "echo-v1:8080", routeNameContains: "named-rule"}},
				{name: "unnamed", to: "echo", port: 80, req: get("echo", "/unnamed"), want: want{backend: "echo-v2:8080"},
					notes: "upstream's ExpectedRequest.Path for /unnamed says /named (not checked there); the path is kept"},
			},
		},
		{
			// On the mirror's main branch only, not in v1.6.x; as the notes give it.
			name: "MeshGRPCRouteRequestHeaderModifier", features: []string{"Mesh", "GRPCRoute"},
			routes: grpcRequestHeaderModifierYAML,
			cases: []meshCase{
				{name: "set", to: "echo", port: 7070, grpc: true,
					req:  grpcCall("echo:7070", grpcEchoService, "Echo", "x-test-case", "set", "x-header-set", "this-value-should-be-overwritten"),
					want: want{backend: "echo-v1:7070", reqHeaders: map[string]string{"x-header-set": "set-overwrites-values", "x-test-case": "set"}}},
				{name: "add", to: "echo", port: 7070, grpc: true,
					req:  grpcCall("echo:7070", grpcEchoService, "Echo", "x-test-case", "add", "x-header-add", "this-value-should-be-appended"),
					want: want{backend: "echo-v1:7070", reqHeaders: map[string]string{"x-header-add": "this-value-should-be-appended,add-appends-values", "x-test-case": "add"}}},
				{name: "remove", to: "echo", port: 7070, grpc: true,
					req:  grpcCall("echo:7070", grpcEchoService, "Echo", "x-test-case", "remove", "x-header-remove", "this-should-be-removed"),
					want: want{backend: "echo-v1:7070", reqHeaders: map[string]string{"x-test-case": "remove"}, absentReqHeaders: []string{"x-header-remove"}}},
				{name: "multi", to: "echo", port: 7070, grpc: true,
					req: grpcCall("echo:7070", grpcEchoService, "Echo", "x-test-case", "multi", "x-header-set-2", "set-header-2", "x-header-add-2", "add-header-2",
						"x-header-remove-1", "should-be-removed-1", "x-header-remove-2", "should-be-removed-2"),
					want: want{backend: "echo-v2:7070", reqHeaders: map[string]string{
						"x-header-set-1": "header-set-1", "x-header-set-2": "header-set-2", "x-header-add-1": "header-add-1",
						"x-header-add-2": "add-header-2,header-add-2", "x-test-case": "multi",
					}, absentReqHeaders: []string{"x-header-remove-1", "x-header-remove-2"}}},
			},
		},
	}
}

const grpcEchoService = "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho"

// The tests' routes, as conformance/tests/mesh/*.yaml has them.

const meshPortsYAML = `
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mesh-split-v1, namespace: gateway-conformance-mesh}
spec:
  parentRefs: [{group: "", kind: Service, name: echo-v1, port: 80}]
  rules:
  - filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: X-Header-Set, value: v1}]}}]
    backendRefs: [{name: echo-v1, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mesh-split-v2, namespace: gateway-conformance-mesh}
spec:
  parentRefs: [{group: "", kind: Service, name: echo-v2}]
  rules:
  - filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: X-Header-Set, value: v2}]}}]
    backendRefs: [{name: echo-v2, port: 80}]
`

const meshFrontendYAML = `
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mesh-split-v1, namespace: gateway-conformance-mesh}
spec:
  parentRefs: [{group: "", kind: Service, name: echo-v2}]
  rules:
  - filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: X-Header-Set, value: set}]}}]
    backendRefs: [{name: echo-v2, port: 80}]
`

const meshConsumerRouteYAML = `
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mesh-echo-add-header, namespace: gateway-conformance-mesh-consumer}
spec:
  parentRefs: [{group: "", kind: Service, name: echo-v1, namespace: gateway-conformance-mesh}]
  rules:
  - filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: X-Header-Set, value: set}]}}]
    backendRefs: [{name: echo-v1, namespace: gateway-conformance-mesh, port: 80}]
`

const meshSplitYAML = `
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mesh-split, namespace: gateway-conformance-mesh}
spec:
  parentRefs: [{group: "", kind: Service, name: echo}]
  rules:
  - matches: [{path: {type: Exact, value: /v1}}]
    backendRefs: [{name: echo-v1, port: 80}]
  - matches: [{path: {type: Exact, value: /v2}}]
    backendRefs: [{name: echo-v2, port: 80}]
`

const simpleSameNamespaceYAML = `
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: gateway-conformance-mesh-test, namespace: gateway-conformance-mesh}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
  rules:
  - backendRefs: [{name: echo-v1, port: 8080}]
`

const httpWeightYAML = `
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mesh-weighted-backends, namespace: gateway-conformance-mesh}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
  rules:
  - backendRefs: [{name: echo-v1, port: 8080, weight: 70}, {name: echo-v2, port: 8080, weight: 30}]
`

const grpcWeightYAML = `
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: mesh-grpc-weighted-backends, namespace: gateway-conformance-mesh}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, port: 7070}]
  rules:
  - backendRefs:
    - {name: echo-v1, port: 7070, weight: 70}
    - {name: echo-v2, port: 7070, weight: 30}
    - {name: echo-v3, port: 7070, weight: 0}
`

const matchingYAML = `
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mesh-matching, namespace: gateway-conformance-mesh}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}, {headers: [{name: version, value: one}]}]
    backendRefs: [{name: echo-v1, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /v2}}, {headers: [{name: version, value: two}]}]
    backendRefs: [{name: echo-v2, port: 8080}]
`

const queryParamYAML = `
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mesh-query-param-matching, namespace: gateway-conformance-mesh}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
  rules:
  - matches: [{queryParams: [{name: animal, value: whale}]}]
    backendRefs: [{name: echo-v1, port: 8080}]
  - matches: [{queryParams: [{name: animal, value: dolphin}]}]
    backendRefs: [{name: echo-v2, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /path1}, queryParams: [{name: animal, value: whale}]}]
    backendRefs: [{name: echo-v1, port: 8080}]
  - matches: [{headers: [{name: version, value: one}], queryParams: [{name: animal, value: whale}]}]
    backendRefs: [{name: echo-v2, port: 8080}]
  - matches:
    - {path: {type: PathPrefix, value: /path3}, queryParams: [{name: animal, value: shark}]}
    - {path: {type: PathPrefix, value: /path4}, headers: [{name: version, value: three}], queryParams: [{name: animal, value: kraken}]}
    backendRefs: [{name: echo-v1, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /path5}}]
    backendRefs: [{name: echo-v1, port: 8080}]
  - matches: [{queryParams: [{name: animal, value: hydra}]}]
    backendRefs: [{name: echo-v2, port: 8080}]
`

// headerModifierYAML is the route of both header modifier tests
// (httproute-request-header-modifier.yaml and its -backend variant): each
// RequestHeaderModifier is a rule's filter, or with onBackend its
// backendRef's.
func headerModifierYAML(onBackend bool) string {
	filters := []struct{ path, filter string }{
		{"/set", "{set: [{name: X-Header-Set, value: set-overwrites-values}]}"},
		{"/add", "{add: [{name: X-Header-Add, value: add-appends-values}]}"},
		{"/remove", "{remove: [X-Header-Remove]}"},
		{"/multiple", "{set: [{name: X-Header-Set-1, value: header-set-1}, {name: X-Header-Set-2, value: header-set-2}], " +
			"add: [{name: X-Header-Add-1, value: header-add-1}, {name: X-Header-Add-2, value: header-add-2}, {name: X-Header-Add-3, value: header-add-3}], " +
			"remove: [X-Header-Remove-1, X-Header-Remove-2]}"},
		{"/case-insensitivity", "{set: [{name: X-Header-Set, value: header-set}], add: [{name: X-Header-Add, value: header-add}], remove: [X-Header-Remove]}"},
	}
	var b strings.Builder
	b.WriteString(`
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mesh-request-header-modifier, namespace: gateway-conformance-mesh}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
  rules:
`)
	for _, f := range filters {
		filter := "[{type: RequestHeaderModifier, requestHeaderModifier: " + f.filter + "}]"
		fmt.Fprintf(&b, "  - matches: [{path: {type: PathPrefix, value: %s}}]\n", f.path)
		if onBackend {
			fmt.Fprintf(&b, "    backendRefs: [{name: echo-v1, port: 8080, filters: %s}]\n", filter)
		} else {
			fmt.Fprintf(&b, "    filters: %s\n    backendRefs: [{name: echo-v1, port: 8080}]\n", filter)
		}
	}
	return b.String()
}

var (
	requestHeaderModifierYAML        = headerModifierYAML(false)
	backendRequestHeaderModifierYAML = headerModifierYAML(true)
)

const rewritePathYAML = `
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mesh-rewrite-path, namespace: gateway-conformance-mesh}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /prefix/one}}]
    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /one}}}]
    backendRefs: [{name: echo-v1, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /strip-prefix}}]
    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}]
    backendRefs: [{name: echo-v1, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /full/one}}]
    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /one}}}]
    backendRefs: [{name: echo-v1, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /full/rewrite-path-and-modify-headers}}]
    filters:
    - {type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /test}}}
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: X-Header-Set, value: set-overwrites-values}]
        add: [{name: X-Header-Add, value: header-val-1}, {name: X-Header-Add-Append, value: header-val-2}]
        remove: [X-Header-Remove]
    backendRefs: [{name: echo-v1, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /prefix/rewrite-path-and-modify-headers}}]
    filters:
    - {type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /prefix}}}
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: X-Header-Set, value: set-overwrites-values}]
        add: [{name: X-Header-Add, value: header-val-1}, {name: X-Header-Add-Append, value: header-val-2}]
        remove: [X-Header-Remove]
    backendRefs: [{name: echo-v1, port: 80}]
`

// redirectRoute is a route of redirect rules, each "prefix: requestRedirect".
func redirectRoute(name string, rules ...[2]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: %s, namespace: gateway-conformance-mesh}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
  rules:
`, name)
	for _, r := range rules {
		fmt.Fprintf(&b, "  - matches: [{path: {type: PathPrefix, value: %s}}]\n    filters: [{type: RequestRedirect, requestRedirect: %s}]\n", r[0], r[1])
	}
	return b.String()
}

var (
	redirectHostAndStatusYAML = redirectRoute("mesh-redirect-host-and-status",
		[2]string{"/hostname-redirect", "{hostname: example.org}"},
		[2]string{"/host-and-status", "{statusCode: 301, hostname: example.org}"})
	redirectPathYAML = redirectRoute("mesh-redirect-path",
		[2]string{"/original-prefix", "{path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}}"},
		[2]string{"/full", "{path: {type: ReplaceFullPath, replaceFullPath: /full-path-replacement}}"},
		[2]string{"/path-and-host", "{hostname: example.org, path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}}"},
		[2]string{"/path-and-status", "{path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}, statusCode: 301}"},
		[2]string{"/full-path-and-host", "{hostname: example.org, path: {type: ReplaceFullPath, replaceFullPath: /replacement-full}}"},
		[2]string{"/full-path-and-status", "{path: {type: ReplaceFullPath, replaceFullPath: /replacement-full}, statusCode: 301}"})
	redirectPortYAML = redirectRoute("mesh-redirect-port",
		[2]string{"/port", "{port: 8083}"},
		[2]string{"/port-and-host", "{hostname: example.org, port: 8083}"},
		[2]string{"/port-and-status", "{port: 8083, statusCode: 301}"},
		[2]string{"/port-and-host-and-status", "{port: 8083, hostname: example.org, statusCode: 302}"})
	redirectSchemeYAML = redirectRoute("mesh-redirect-scheme",
		[2]string{"/scheme", `{scheme: "https"}`},
		[2]string{"/scheme-and-host", `{hostname: example.org, scheme: "https"}`},
		[2]string{"/scheme-and-status", `{scheme: "https", statusCode: 301}`},
		[2]string{"/scheme-and-host-and-status", `{scheme: "https", statusCode: 302, hostname: example.org}`})
)

func redirectStatusYAML(name, prefix string, status int) string {
	return redirectRoute(name, [2]string{prefix, fmt.Sprintf("{statusCode: %d}", status)})
}

const namedRuleYAML = `
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mesh-http-named-rules, namespace: gateway-conformance-mesh}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
  rules:
  - name: named-rule
    matches: [{path: {type: PathPrefix, value: /named}}]
    backendRefs: [{name: echo-v1, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /unnamed}}]
    backendRefs: [{name: echo-v2, port: 8080}]
`

// grpcRequestHeaderModifierYAML is main's grpcroute-request-header-modifier.yaml
// as the notes describe it: a rule per x-test-case value.
const grpcRequestHeaderModifierYAML = `
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: grpc-request-header-modifier, namespace: gateway-conformance-mesh}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, port: 7070}]
  rules:
  - matches: [{headers: [{name: x-test-case, value: set}]}]
    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-header-set, value: set-overwrites-values}]}}]
    backendRefs: [{name: echo-v1, port: 7070}]
  - matches: [{headers: [{name: x-test-case, value: add}]}]
    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {add: [{name: x-header-add, value: add-appends-values}]}}]
    backendRefs: [{name: echo-v1, port: 7070}]
  - matches: [{headers: [{name: x-test-case, value: remove}]}]
    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {remove: [x-header-remove]}}]
    backendRefs: [{name: echo-v1, port: 7070}]
  - matches: [{headers: [{name: x-test-case, value: multi}]}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: x-header-set-1, value: header-set-1}, {name: x-header-set-2, value: header-set-2}]
        add: [{name: x-header-add-1, value: header-add-1}, {name: x-header-add-2, value: header-add-2}]
        remove: [x-header-remove-1, x-header-remove-2]
    backendRefs: [{name: echo-v2, port: 7070}]
`

// sameURL is u with the default port of its scheme dropped (RFC 3986
// 6.2.3: https://h:443/ and https://h/ are one URL). Envoy writes a
// redirect's port_redirect even when it is the scheme's default.
func sameURL(u string) string {
	for scheme, port := range map[string]string{"http://": ":80", "https://": ":443"} {
		if rest, ok := strings.CutPrefix(u, scheme); ok {
			host, path, _ := strings.Cut(rest, "/")
			return scheme + strings.TrimSuffix(host, port) + "/" + path
		}
	}
	return u
}
