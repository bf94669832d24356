package mesh_test

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
)

const base = `
apiVersion: mesh.openservicemesh.io/v1alpha1
kind: MeshInstance
metadata: {name: osm}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {openservicemesh.io/monitor: osm}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {clusterIP: 10.96.0.1, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: web-v2, namespace: shop}
spec: {clusterIP: 10.96.0.2, ports: [{name: http, port: 80}]}
`

// clientMayCallWeb is a TrafficTarget letting client call web on the
// HTTPRouteGroup "routes".
var clientMayCallWeb = webCalledBy("{kind: ServiceAccount, name: client}")

// webCalledBy is a TrafficTarget letting source call web on the routes of
// HTTPRouteGroup shop/routes.
func webCalledBy(source string) string {
	return `---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: tt, namespace: shop}
spec:
  destination: {kind: ServiceAccount, name: web}
  sources: [` + source + `]
  rules: [{kind: HTTPRouteGroup, name: routes}]
`
}

// allRoutes is HTTPRouteGroup shop/routes, matching every path.
const allRoutes = `
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: routes, namespace: shop}
spec: {matches: [{name: all, pathRegex: ".*"}]}
`

// TestBadInputIsReportedAndLeftOut: each malformed object yields a problem
// that names it and says what was left out, and never a panic.
func TestBadInputIsReportedAndLeftOut(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"invalid path regex", `
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: routes, namespace: shop}
spec: {matches: [{name: bad, pathRegex: "(unclosed"}]}
` + clientMayCallWeb, `HTTPRouteGroup shop/routes: spec.matches[0] ("bad"): pathRegex: error parsing regexp`},
		{"path regex past the proxies' RE2 program size", `
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: routes, namespace: shop}
spec: {matches: [{name: big, pathRegex: "/[a-z]{600}/[0-9]{600}"}]}
` + clientMayCallWeb, `HTTPRouteGroup shop/routes: spec.matches[0] ("big"): pathRegex: "/[a-z]{600}/[0-9]{600}" compiles to an RE2 program of`},
		{"header name with a space", `
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: routes, namespace: shop}
spec: {matches: [{name: bad, headers: [{"user agent": ".*"}]}]}
` + clientMayCallWeb, `spec.matches[0] ("bad"): "user agent" is not an HTTP header name; the match allows nothing`},
		{"missing route group", `
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: tt, namespace: shop}
spec:
  destination: {kind: ServiceAccount, name: web}
  sources: [{kind: ServiceAccount, name: client}]
  rules: [{kind: HTTPRouteGroup, name: nowhere}]
`, `TrafficTarget shop/tt: spec.rules[0]: HTTPRouteGroup shop/nowhere does not exist; the rule allows nothing until it does`},
		{"destination in another namespace", `
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: tt, namespace: shop}
spec:
  destination: {kind: ServiceAccount, name: web, namespace: elsewhere}
  sources: [{kind: ServiceAccount, name: client}]
`, `TrafficTarget shop/tt: spec.destination.namespace: "elsewhere": the destination must be in the TrafficTarget's namespace shop; the target allows nothing`},
		{"split weights add up to zero", `
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {name: split, namespace: shop}
spec: {service: web, backends: [{service: web-v2, weight: 0}]}
`, `TrafficSplit shop/split: spec.backends: every weight is 0, so no traffic could be routed; the split is ignored`},
		{"negative split weight", `
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {name: split, namespace: shop}
spec: {service: web, backends: [{service: web-v2, weight: -5}]}
`, `spec.backends[0].weight: -5 is out of range 0..4294967295; the split is ignored`},
		{"split of an unknown service", `
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {name: split, namespace: shop}
spec: {service: ghost.shop, backends: [{service: web-v2, weight: 1}]}
`, `TrafficSplit shop/split: spec.service: Service shop/ghost does not exist; the split is ignored`},
		{"endpoint that is not an IP", `
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop}
spec: {serviceAccountName: web, initContainers: [{name: osm-envoy, image: envoy, restartPolicy: Always}], containers: [{name: app, image: app}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: ["not-an-ip"], targetRef: {kind: Pod, name: web-1, namespace: shop}}]
`, `EndpointSlice shop/web-1: address "not-an-ip" is not an IP address`},
		{"split weights overflowing", `
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {name: split, namespace: shop}
spec: {service: web, backends: [{service: web, weight: 2147483647}, {service: web-v2, weight: 2147483647}, {service: web-v2.shop, weight: 2147483647}]}
`, `spec.backends: the weights add up to 6442450941, more than 4294967295; the split is ignored`},
		{"split backend in another namespace", `
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {name: split, namespace: shop}
spec: {service: web, backends: [{service: web-v2.elsewhere, weight: 1}]}
`, `TrafficSplit shop/split: spec.backends[0].service: service "web-v2.elsewhere" is not in the split's namespace shop; the split is ignored`},
		{"split root in another namespace", `
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {name: split, namespace: shop}
spec: {service: web.elsewhere.svc.cluster.local, backends: [{service: web-v2, weight: 1}]}
`, `TrafficSplit shop/split: spec.service: service "web.elsewhere.svc.cluster.local" is not in the split's namespace shop; the split is ignored`},
		{"second split of a service", `
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {name: a, namespace: shop}
spec: {service: web, backends: [{service: web-v2, weight: 1}]}
---
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {name: b, namespace: shop}
spec: {service: web, backends: [{service: web, weight: 1}]}
`, `TrafficSplit shop/b: spec.service: Service shop/web is already split by TrafficSplit a; a Service has one split; the split is ignored`},
		{"source in another mesh", `
apiVersion: v1
kind: Namespace
metadata: {name: bank, labels: {openservicemesh.io/monitor: vault}}
---` + allRoutes + webCalledBy("{kind: ServiceAccount, name: teller, namespace: bank}"), `TrafficTarget shop/tt: spec.sources[0].namespace: namespace bank is a member of mesh "vault", not of mesh "osm"; the source is left out`},
		{"source outside any mesh", allRoutes + webCalledBy("{kind: ServiceAccount, name: x, namespace: nowhere}"), `TrafficTarget shop/tt: spec.sources[0].namespace: namespace nowhere is not in a mesh, not of mesh "osm"; the source is left out`},
		{"VM in another mesh's namespace", `
apiVersion: mesh.openservicemesh.io/v1alpha1
kind: MeshMember
metadata: {name: m, namespace: bank}
spec: {mesh: vault}
---
apiVersion: mesh.openservicemesh.io/v1alpha1
kind: MeshVM
metadata: {name: teller, namespace: bank}
spec: {mesh: osm, serviceAccountName: teller, addresses: [192.0.2.1], ports: [{name: http, port: 8080, protocol: http}]}
`, `MeshVM bank/teller: namespace bank is a member of mesh "vault"; the VM is left out`},
		{"unknown method", `
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: routes, namespace: shop}
spec: {matches: [{name: bad, methods: [FETCH]}]}
` + clientMayCallWeb, `HTTPRouteGroup shop/routes: spec.matches[0] ("bad"): unknown method "FETCH"; the match allows nothing`},
		{"repeated service port", `
apiVersion: v1
kind: Service
metadata: {name: twice, namespace: shop}
spec: {clusterIP: 10.96.0.3, ports: [{name: a, port: 80}, {name: b, port: 80}]}
`, `Service shop/twice: port 80 is out of range or repeated`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, err := meshtest.Decode([]byte(base + "---" + tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			m, problems := mesh.Build(in)
			var got []string
			for _, p := range problems {
				got = append(got, p.Error())
			}
			if !strings.Contains(strings.Join(got, "\n"), tc.want) {
				t.Errorf("problems %q do not say %q", got, tc.want)
			}
			// Only the first of two splits of one service is valid.
			wantSplits := 0
			if tc.name == "second split of a service" {
				wantSplits = 1
			}
			if len(m.Policies) != 0 || len(m.Splits) != wantSplits {
				t.Errorf("a malformed object still made policy: %d policies, %d splits", len(m.Policies), len(m.Splits))
			}
			for _, g := range m.Groups {
				if g.Identity.Namespace != "shop" {
					t.Errorf("group %s of a namespace outside the mesh", g)
				}
			}
		})
	}
}

// TestAnEmptyHeaderValueMeansPresent: SMI lets a match name a header with no
// value; the model asks for the header with any value rather than producing
// an empty regex, which Envoy refuses.
func TestAnEmptyHeaderValueMeansPresent(t *testing.T) {
	in, err := meshtest.Decode([]byte(base + `---
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: routes, namespace: shop}
spec: {matches: [{name: tagged, headers: [{x-tag: ""}]}]}
` + clientMayCallWeb))
	if err != nil {
		t.Fatal(err)
	}
	m, problems := mesh.Build(in)
	if len(problems) != 0 || len(m.Policies) != 1 {
		t.Fatalf("problems %v, policies %d", problems, len(m.Policies))
	}
	if got := m.Policies[0].HTTP[0].Headers["x-tag"]; got != ".*" {
		t.Errorf("header regex %q, want .*", got)
	}
}

func TestUDPPortsAreNotProxied(t *testing.T) {
	in, err := meshtest.Decode([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	in.Services[0].Spec.Ports = append(in.Services[0].Spec.Ports, corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP})
	m, _ := mesh.Build(in)
	if len(m.Services[0].Ports) != 1 || m.Services[0].Ports[0].Port != 80 {
		t.Errorf("ports %+v, want only the TCP port 80", m.Services[0].Ports)
	}
}

func TestPortProtocol(t *testing.T) {
	cases := []struct {
		port corev1.ServicePort
		want mesh.Protocol
	}{
		{corev1.ServicePort{Name: "http"}, mesh.ProtocolHTTP},
		{corev1.ServicePort{Name: "http-web"}, mesh.ProtocolHTTP},
		{corev1.ServicePort{Name: "http2-api"}, mesh.ProtocolHTTP2},
		{corev1.ServicePort{Name: "grpc-api"}, mesh.ProtocolGRPC},
		{corev1.ServicePort{Name: "tcp-db"}, mesh.ProtocolTCP},
		{corev1.ServicePort{Name: "httpbin"}, mesh.ProtocolTCP},
		{corev1.ServicePort{Name: "web"}, mesh.ProtocolTCP},
		{corev1.ServicePort{Name: "tcp-x", AppProtocol: ptr.To("grpc")}, mesh.ProtocolGRPC},
		{corev1.ServicePort{Name: "x", AppProtocol: ptr.To("kubernetes.io/h2c")}, mesh.ProtocolHTTP2},
		{corev1.ServicePort{Name: "x", AppProtocol: ptr.To("HTTP")}, mesh.ProtocolHTTP},
	}
	for _, tc := range cases {
		in, err := meshtest.Decode([]byte(base))
		if err != nil {
			t.Fatal(err)
		}
		svc := in.Services[0].DeepCopy()
		tc.port.Port = 80
		svc.Spec.Ports = []corev1.ServicePort{tc.port}
		in.Services = []*corev1.Service{svc}
		m, _ := mesh.Build(in)
		if got := m.Services[0].Ports[0].Protocol; got != tc.want {
			t.Errorf("port %+v: protocol %s, want %s", tc.port, got, tc.want)
		}
	}
}

// TestAMeshMemberMovesALabelledNamespace: a namespace labelled for one mesh
// with a MeshMember of another belongs to the other (the operator relabels
// it), never to both: its workloads are one proxy group in one mesh.
func TestAMeshMemberMovesALabelledNamespace(t *testing.T) {
	in, err := meshtest.Decode([]byte(base + `---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop}
spec: {serviceAccountName: web, initContainers: [{name: osm-envoy, image: envoy, restartPolicy: Always}], containers: [{name: app, image: app}]}
---
apiVersion: mesh.openservicemesh.io/v1alpha1
kind: MeshMember
metadata: {name: m, namespace: shop}
spec: {mesh: vault}
`))
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := mesh.Build(in); len(m.Groups) != 0 {
		t.Errorf("mesh osm still has the groups %v of a namespace moving to vault", m.Groups)
	}
	in.Mesh = in.Mesh.DeepCopy()
	in.Mesh.Name = "vault"
	if m, _ := mesh.Build(in); len(m.Groups) != 1 {
		t.Errorf("mesh vault has groups %v, want shop's web", m.Groups)
	}
}

// TestAVMEndpointNeverTakesAPodsAddress: whoever wrote the EndpointSlice, a
// MeshVM's endpoint at the IP of a pod (any pod of the cluster, meshed or
// not) or at an address no VM may have (here the cloud metadata address) is
// left out of the model and reported; the VM's other address stays, and so
// does an address an ended pod once had.
func TestAVMEndpointNeverTakesAPodsAddress(t *testing.T) {
	in, err := meshtest.Decode([]byte(base + `---
apiVersion: v1
kind: Pod
metadata: {name: coredns-1, namespace: kube-system}
spec: {containers: [{name: dns, image: dns}]}
status: {phase: Running, podIP: 10.1.0.5, podIPs: [{ip: 10.1.0.5}]}
---
apiVersion: v1
kind: Pod
metadata: {name: job-1, namespace: kube-system}
spec: {containers: [{name: job, image: job}]}
status: {phase: Succeeded, podIP: 10.1.0.6, podIPs: [{ip: 10.1.0.6}]}
---
apiVersion: mesh.openservicemesh.io/v1alpha1
kind: MeshVM
metadata: {name: warehouse, namespace: shop}
spec: {mesh: osm, serviceAccountName: warehouse, addresses: [10.1.0.5, 10.1.0.6, 192.0.2.9], ports: [{name: http, port: 8080, protocol: HTTP}], services: [web]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-warehouse, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- {addresses: [10.1.0.5], targetRef: {kind: MeshVM, name: warehouse, namespace: shop}}
- {addresses: [169.254.169.254], targetRef: {kind: MeshVM, name: warehouse, namespace: shop}}
- {addresses: [10.1.0.6], targetRef: {kind: MeshVM, name: warehouse, namespace: shop}}
- {addresses: [192.0.2.9], targetRef: {kind: MeshVM, name: warehouse, namespace: shop}}
`))
	if err != nil {
		t.Fatal(err)
	}
	m, problems := mesh.Build(in)
	var got []string
	for _, e := range m.Service(mesh.ServiceKey{Namespace: "shop", Name: "web"}).Endpoints {
		got = append(got, e.Address)
	}
	if want := []string{"10.1.0.6", "192.0.2.9"}; !slices.Equal(got, want) {
		t.Errorf("the VM's endpoints are %v, want %v", got, want)
	}
	var said []string
	for _, p := range problems {
		said = append(said, p.Error())
	}
	for _, want := range []string{
		"MeshVM shop/warehouse: endpoint of EndpointSlice shop/web-warehouse: 10.1.0.5 is the IP of pod kube-system/coredns-1",
		"MeshVM shop/warehouse: endpoint of EndpointSlice shop/web-warehouse: 169.254.169.254 is a cloud metadata service's address",
	} {
		if !strings.Contains(strings.Join(said, "\n"), want) {
			t.Errorf("problems %q do not say %q", said, want)
		}
	}
	if len(said) != 2 {
		t.Errorf("problems %q, want the two endpoints left out", said)
	}
}

// endpointsAndProblems builds the mesh of base and yaml and returns the
// addresses of shop/web's endpoints, its accepted identities and the
// problems reported.
func endpointsAndProblems(t *testing.T, yaml string) (addrs, ids, problems []string) {
	t.Helper()
	in, err := meshtest.Decode([]byte(base + "---" + yaml))
	if err != nil {
		t.Fatal(err)
	}
	m, ps := mesh.Build(in)
	web := m.Service(mesh.ServiceKey{Namespace: "shop", Name: "web"})
	for _, e := range web.Endpoints {
		addrs = append(addrs, e.Address)
	}
	for _, id := range web.Identities {
		ids = append(ids, id.Namespace+"/"+id.ServiceAccount)
	}
	for _, p := range ps {
		problems = append(problems, p.Error())
	}
	return addrs, ids, problems
}

// TestAnEndpointSliceCannotNameAnotherNamespacesWorkload: an EndpointSlice
// of shop's Service web whose endpoints target a pod and a MeshVM of bank (a
// namespace of the same mesh), at their own addresses, lends web neither
// the address nor bank's identities: the endpoints are left out and
// reported (CVE-2021-25740 in mesh form: whoever writes shop's slices would
// have web's callers sent to bank's pod, trusting bank's identity). A target
// without a namespace is in the slice's.
func TestAnEndpointSliceCannotNameAnotherNamespacesWorkload(t *testing.T) {
	addrs, ids, problems := endpointsAndProblems(t, `
apiVersion: v1
kind: Namespace
metadata: {name: bank, labels: {openservicemesh.io/monitor: osm}}
---
apiVersion: v1
kind: Pod
metadata: {name: vault-1, namespace: bank}
spec: {serviceAccountName: vault, initContainers: [{name: osm-envoy, image: envoy, restartPolicy: Always}], containers: [{name: app, image: app}]}
status: {phase: Running, podIP: 10.2.0.9, podIPs: [{ip: 10.2.0.9}]}
---
apiVersion: mesh.openservicemesh.io/v1alpha1
kind: MeshVM
metadata: {name: teller, namespace: bank}
spec: {mesh: osm, serviceAccountName: teller, addresses: [192.0.2.9], ports: [{name: http, port: 8080, protocol: HTTP}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop}
spec: {serviceAccountName: web, initContainers: [{name: osm-envoy, image: envoy, restartPolicy: Always}], containers: [{name: app, image: app}]}
status: {phase: Running, podIP: 10.1.0.5, podIPs: [{ip: 10.1.0.5}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- {addresses: [10.2.0.9], targetRef: {kind: Pod, name: vault-1, namespace: bank}}
- {addresses: [192.0.2.9], targetRef: {kind: MeshVM, name: teller, namespace: bank}}
- {addresses: [10.1.0.5], targetRef: {kind: Pod, name: web-1}}
`)
	if want := []string{"10.1.0.5"}; !slices.Equal(addrs, want) {
		t.Errorf("web's endpoints are %v, want %v", addrs, want)
	}
	if want := []string{"shop/web"}; !slices.Equal(ids, want) {
		t.Errorf("web's identities are %v, want %v", ids, want)
	}
	for _, want := range []string{
		"EndpointSlice shop/web-1: endpoint [10.2.0.9] targets Pod bank/vault-1, in another namespace than the slice's; it is left out",
		"EndpointSlice shop/web-1: endpoint [192.0.2.9] targets MeshVM bank/teller, in another namespace than the slice's; it is left out",
	} {
		if !slices.Contains(problems, want) {
			t.Errorf("problems %q do not say %q", problems, want)
		}
	}
	if len(problems) != 2 {
		t.Errorf("problems %q, want the two endpoints left out", problems)
	}
}

// TestAPodEndpointMustBeThePodsAddress: an endpoint targeting a pod is
// published at an address of the pod's status (podIPs or podIP, any
// spelling of it), and left out and reported at any other, such as the IP of
// a pod of another namespace; an address of no host (loopback, the metadata
// service) is left out even when the pod's status claims it. A pod whose
// status has no IP yet refuses no address of a host.
func TestAPodEndpointMustBeThePodsAddress(t *testing.T) {
	addrs, ids, problems := endpointsAndProblems(t, `
apiVersion: v1
kind: Pod
metadata: {name: vault-1, namespace: bank}
spec: {serviceAccountName: vault, initContainers: [{name: osm-envoy, image: envoy, restartPolicy: Always}], containers: [{name: app, image: app}]}
status: {phase: Running, podIP: 10.2.0.9, podIPs: [{ip: 10.2.0.9}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop}
spec: {serviceAccountName: web, initContainers: [{name: osm-envoy, image: envoy, restartPolicy: Always}], containers: [{name: app, image: app}]}
status: {phase: Running, podIP: 10.1.0.5, podIPs: [{ip: 10.1.0.5}, {ip: "fd00:10::5"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, namespace: shop}
spec: {serviceAccountName: web, initContainers: [{name: osm-envoy, image: envoy, restartPolicy: Always}], containers: [{name: app, image: app}]}
status: {phase: Running, podIP: 169.254.169.254, podIPs: [{ip: 169.254.169.254}, {ip: 127.0.0.1}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-3, namespace: shop}
spec: {serviceAccountName: web, initContainers: [{name: osm-envoy, image: envoy, restartPolicy: Always}], containers: [{name: app, image: app}]}
status: {phase: Pending}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- {addresses: [10.1.0.5, 10.2.0.9], targetRef: {kind: Pod, name: web-1, namespace: shop}}
- {addresses: [169.254.169.254, 127.0.0.1], targetRef: {kind: Pod, name: web-2, namespace: shop}}
- {addresses: [10.1.0.7, 169.254.169.254], targetRef: {kind: Pod, name: web-3, namespace: shop}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-2, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv6
ports: [{name: http, port: 8080}]
endpoints:
- {addresses: ["fd00:10:0::5", "fd00:10::6"], targetRef: {kind: Pod, name: web-1, namespace: shop}}
`)
	if want := []string{"10.1.0.5", "10.1.0.7", "fd00:10:0::5"}; !slices.Equal(addrs, want) {
		t.Errorf("web's endpoints are %v, want %v", addrs, want)
	}
	if want := []string{"shop/web"}; !slices.Equal(ids, want) {
		t.Errorf("web's identities are %v, want %v", ids, want)
	}
	for _, want := range []string{
		"EndpointSlice shop/web-1: endpoint of pod shop/web-1: 10.2.0.9 is not an IP of the pod (status.podIPs [10.1.0.5 fd00:10::5]); it is left out",
		"EndpointSlice shop/web-2: endpoint of pod shop/web-1: fd00:10::6 is not an IP of the pod (status.podIPs [10.1.0.5 fd00:10::5]); it is left out",
		"EndpointSlice shop/web-1: endpoint of pod shop/web-2: 169.254.169.254 is a cloud metadata service's address",
		"EndpointSlice shop/web-1: endpoint of pod shop/web-2: 127.0.0.1 is a loopback address",
		"EndpointSlice shop/web-1: endpoint of pod shop/web-3: 169.254.169.254 is a cloud metadata service's address",
	} {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, want) }) {
			t.Errorf("problems %q do not say %q", problems, want)
		}
	}
	if len(problems) != 5 {
		t.Errorf("problems %q, want the five addresses left out", problems)
	}
}

// TestAVMEndpointMustBeADeclaredAddress: an endpoint targeting a MeshVM is
// published only at an address of the VM's spec.addresses (in any spelling
// of it); any other, written into the slice by whoever may, is left out and
// reported.
func TestAVMEndpointMustBeADeclaredAddress(t *testing.T) {
	addrs, _, problems := endpointsAndProblems(t, `
apiVersion: mesh.openservicemesh.io/v1alpha1
kind: MeshVM
metadata: {name: warehouse, namespace: shop}
spec: {mesh: osm, serviceAccountName: warehouse, addresses: [192.0.2.9, "2001:db8::9"], ports: [{name: http, port: 8080, protocol: HTTP}], services: [web]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-warehouse, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- {addresses: [192.0.2.9, 192.0.2.10], targetRef: {kind: MeshVM, name: warehouse, namespace: shop}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-warehouse-ipv6, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv6
ports: [{name: http, port: 8080}]
endpoints:
- {addresses: ["2001:db8:0::9", "2001:db8::10"], targetRef: {kind: MeshVM, name: warehouse, namespace: shop}}
`)
	if want := []string{"192.0.2.9", "2001:db8:0::9"}; !slices.Equal(addrs, want) {
		t.Errorf("the VM's endpoints are %v, want %v", addrs, want)
	}
	for _, want := range []string{
		"MeshVM shop/warehouse: endpoint of EndpointSlice shop/web-warehouse: 192.0.2.10 is not one of the VM's spec.addresses; it is left out",
		"MeshVM shop/warehouse: endpoint of EndpointSlice shop/web-warehouse-ipv6: 2001:db8::10 is not one of the VM's spec.addresses; it is left out",
	} {
		if !slices.Contains(problems, want) {
			t.Errorf("problems %q do not say %q", problems, want)
		}
	}
	if len(problems) != 2 {
		t.Errorf("problems %q, want the two addresses left out", problems)
	}
}

// TestANamespaceInNoMeshIsItsFirstVMs: the MeshVMs of a namespace in no
// mesh run as its service accounts, whose identities can be in one mesh
// only: the first VM's mesh (by creation) takes the namespace, and a VM of
// another mesh there is left out and reported, whichever mesh is built. A
// namespace in a mesh is that mesh's, whatever its VMs.
func TestANamespaceInNoMeshIsItsFirstVMs(t *testing.T) {
	in, err := meshtest.Decode([]byte(base + `---
apiVersion: v1
kind: Namespace
metadata: {name: edge}
---
apiVersion: mesh.openservicemesh.io/v1alpha1
kind: MeshVM
metadata: {name: second, namespace: edge, creationTimestamp: "2026-01-02T00:00:00Z"}
spec: {mesh: vault, serviceAccountName: app, addresses: [192.0.2.2]}
---
apiVersion: mesh.openservicemesh.io/v1alpha1
kind: MeshVM
metadata: {name: first, namespace: edge, creationTimestamp: "2026-01-01T00:00:00Z"}
spec: {mesh: osm, serviceAccountName: app, addresses: [192.0.2.1]}
---
apiVersion: mesh.openservicemesh.io/v1alpha1
kind: MeshVM
metadata: {name: visitor, namespace: shop, creationTimestamp: "2025-01-01T00:00:00Z"}
spec: {mesh: vault, serviceAccountName: web, addresses: [192.0.2.3]}
`))
	if err != nil {
		t.Fatal(err)
	}
	vmGroups := func(m *mesh.Mesh) []string {
		var out []string
		for _, g := range m.Groups {
			if g.Identity.Namespace == "edge" || g.Identity == (mesh.Identity{Namespace: "shop", ServiceAccount: "web"}) {
				out = append(out, g.String())
			}
		}
		return out
	}
	m, problems := mesh.Build(in)
	if got := vmGroups(m); len(got) != 1 || got[0] != "envoy/edge/app" {
		t.Errorf("mesh osm has groups %v of edge and shop/web, want only envoy/edge/app (its first VM's)", got)
	}
	in.Mesh = in.Mesh.DeepCopy()
	in.Mesh.Name = "vault"
	m, problems = mesh.Build(in)
	if got := vmGroups(m); len(got) != 0 {
		t.Errorf("mesh vault has groups %v; want none: edge is osm's first VM's, shop is osm's", got)
	}
	var reported []string
	for _, p := range problems {
		reported = append(reported, p.Error())
	}
	for _, want := range []string{
		`MeshVM edge/second: namespace edge is in no mesh and holds MeshVM first of mesh "osm", created before`,
		`MeshVM shop/visitor: namespace shop is a member of mesh "osm"`,
	} {
		if !slices.ContainsFunc(reported, func(r string) bool { return strings.HasPrefix(r, want) }) {
			t.Errorf("problems %q; want one starting %q", reported, want)
		}
	}
}
