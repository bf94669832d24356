package webhooks_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	splitv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha4"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// TestHostileObjects applies hostile or malformed objects through the real
// API server and the operator's webhooks. Each is either refused, by the
// API server's validation, the CRD schema or a webhook, with a message that
// names the object and the field; or accepted, with a warning where the
// webhook sees the problem, and left out of the mesh with a problem (what
// the MeshInstance's PoliciesValid condition lists). Nothing is silently
// half-applied: after the whole table, the mesh builds and every proxy
// group translates to config that validates.
func TestHostileObjects(t *testing.T) {
	ctx := context.Background()
	ns := meshNamespace(t, "hostile", nil)
	bank := meshNamespace(t, "vault", nil) // a namespace of another mesh
	// A namespace labelled for the mesh, which a MeshMember moves to another.
	moving := meshNamespace(t, "hostile", nil)
	for _, o := range []client.Object{
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web-v2", Namespace: ns}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web-v3", Namespace: ns}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "admin", Namespace: ns}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 9999}}}},
		&splitv1alpha4.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "canary", Namespace: ns}, Spec: splitv1alpha4.TrafficSplitSpec{
			Service: "web", Backends: []splitv1alpha4.TrafficSplitBackend{{Service: "web", Weight: 90}, {Service: "web-v2", Weight: 10}}}},
		&specsv1alpha4.HTTPRouteGroup{ObjectMeta: metav1.ObjectMeta{Name: "all", Namespace: ns}, Spec: specsv1alpha4.HTTPRouteGroupSpec{
			Matches: []specsv1alpha4.HTTPMatch{{Name: "all", PathRegex: ".*"}}}},
		pod(ns, "web-1", nil), pod(ns, "client-1", nil),
	} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		var l splitv1alpha4.TrafficSplitList
		if err := cache.List(ctx, &l, client.InNamespace(ns)); err != nil || len(l.Items) == 0 {
			return fmt.Errorf("the webhooks' cache has no split yet (%v)", err)
		}
		if err := cache.Get(ctx, client.ObjectKey{Name: moving}, &corev1.Namespace{}); err != nil {
			return err
		}
		return cache.Get(ctx, client.ObjectKey{Name: bank}, &corev1.Namespace{})
	})

	target := func(name string, src accessv1alpha3.IdentityBindingSubject) *accessv1alpha3.TrafficTarget {
		return &accessv1alpha3.TrafficTarget{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: accessv1alpha3.TrafficTargetSpec{
			Destination: accessv1alpha3.IdentityBindingSubject{Kind: "ServiceAccount", Name: "web"},
			Sources:     []accessv1alpha3.IdentityBindingSubject{src},
			Rules:       []accessv1alpha3.TrafficTargetRule{{Kind: "HTTPRouteGroup", Name: "all"}},
		}}
	}
	routes := func(name string, matches ...specsv1alpha4.HTTPMatch) *specsv1alpha4.HTTPRouteGroup {
		return &specsv1alpha4.HTTPRouteGroup{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: specsv1alpha4.HTTPRouteGroupSpec{Matches: matches}}
	}
	split := func(name, root string, backends ...splitv1alpha4.TrafficSplitBackend) *splitv1alpha4.TrafficSplit {
		return &splitv1alpha4.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: splitv1alpha4.TrafficSplitSpec{Service: root, Backends: backends}}
	}
	vm := func(name, namespace, meshName string, port int32) *meshv1alpha1.MeshVM {
		return &meshv1alpha1.MeshVM{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Spec: meshv1alpha1.MeshVMSpec{
			Mesh: meshName, ServiceAccountName: name, Addresses: []string{"192.0.2.77"},
			Ports: []meshv1alpha1.VMPort{{Name: "http", Port: port, Protocol: meshv1alpha1.ProtocolHTTP}}}}
	}
	manyMatches := routes("many")
	for i := range 1000 {
		manyMatches.Spec.Matches = append(manyMatches.Spec.Matches, specsv1alpha4.HTTPMatch{Name: fmt.Sprintf("m%d", i), PathRegex: fmt.Sprintf("/api/v%d/.*", i), Methods: []string{"GET"}})
	}

	for _, tc := range []struct {
		name string
		obj  client.Object
		// refused must be in the API server's error. Otherwise the object
		// is accepted: warned must be in a warning (none when empty) and
		// problem in the mesh's problems (none when empty).
		refused, warned, problem string
	}{
		// Ports.
		{name: "port out of range", obj: &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "huge", Namespace: ns}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 70000}}}},
			refused: "spec.ports[0].port: Invalid value: 70000"},
		{name: "duplicate ports", obj: &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "twice", Namespace: ns}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "a", Port: 80}, {Name: "b", Port: 80}}}},
			refused: "spec.ports[1]: Duplicate value"},
		{name: "VM port out of range", obj: vm("far", ns, "hostile", 70000),
			refused: "spec.ports[0].port: Invalid value: 70000"},
		{name: "TCPRoute port out of range", obj: &specsv1alpha4.TCPRoute{ObjectMeta: metav1.ObjectMeta{Name: "tcp", Namespace: ns}, Spec: specsv1alpha4.TCPRouteSpec{
			Matches: specsv1alpha4.TCPMatch{Name: "db", Ports: []int{70000}}}},
			refused: "spec.matches.ports[0]: Invalid value: 70000"},
		{name: "endpoint that is not an IP", obj: &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: "web-x", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: "web"}}, AddressType: discoveryv1.AddressTypeIPv4,
			Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}}, Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"web.example"}}}},
			refused: `endpoints[0].addresses[0]: Invalid value: "web.example"`},

		// Regexes and matches.
		{name: "invalid path regex", obj: routes("bad-path", specsv1alpha4.HTTPMatch{Name: "bad", PathRegex: "(unclosed"}),
			refused: `HTTPRouteGroup ` + ns + `/bad-path: spec.matches[0] ("bad"): pathRegex: error parsing regexp`},
		{name: "invalid header regex", obj: routes("bad-header", specsv1alpha4.HTTPMatch{Name: "bad", Headers: map[string]string{"x-user": "a{2,1}"}}),
			refused: `spec.matches[0] ("bad"): header "x-user": error parsing regexp`},
		{name: "regex past the proxies' RE2 program size", obj: routes("too-big", specsv1alpha4.HTTPMatch{Name: "big", PathRegex: `/[a-z]{600}/[0-9]{600}`}),
			refused: "the mesh's proxies accept at most 1000"},
		{name: "backtracking regex RE2 refuses", obj: routes("bad-backref", specsv1alpha4.HTTPMatch{Name: "bad", PathRegex: `(a)\1`}),
			refused: "invalid escape sequence"},
		{name: "header name that is not a token", obj: routes("bad-name", specsv1alpha4.HTTPMatch{Name: "bad", Headers: map[string]string{"x user": "1"}}),
			refused: `"x user" is not an HTTP header name`},
		{name: "unknown method", obj: routes("bad-method", specsv1alpha4.HTTPMatch{Name: "bad", Methods: []string{"FETCH"}}),
			refused: `spec.matches[0].methods[0]: Unsupported value: "FETCH"`},
		{name: "match name used twice", obj: routes("twice", specsv1alpha4.HTTPMatch{Name: "a", PathRegex: "/a"}, specsv1alpha4.HTTPMatch{Name: "a", PathRegex: "/b"}),
			refused: `spec.matches[1].name: "a" is also spec.matches[0]`},
		{name: "a thousand matches", obj: manyMatches},

		// Weights.
		{name: "weights overflowing", obj: split("overflow", "web-v3", splitv1alpha4.TrafficSplitBackend{Service: "web-v3", Weight: 2147483647},
			splitv1alpha4.TrafficSplitBackend{Service: "web-v2", Weight: 2147483647}, splitv1alpha4.TrafficSplitBackend{Service: "web", Weight: 2147483647}),
			refused: "spec.backends: the weights add up to 6442450941, more than 4294967295"},
		{name: "weight above the schema's maximum", obj: split("heavy", "web-v3", splitv1alpha4.TrafficSplitBackend{Service: "web", Weight: 1 << 40}),
			refused: "spec.backends[0].weight"},
		{name: "negative weight", obj: split("negative", "web-v3", splitv1alpha4.TrafficSplitBackend{Service: "web", Weight: -1}),
			refused: "spec.backends[0].weight"},

		// Unicode.
		{name: "unicode Service name", obj: &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "bücher", Namespace: ns}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}},
			refused: `metadata.name: Invalid value: "bücher"`},
		{name: "unicode route group name", obj: routes("größe", specsv1alpha4.HTTPMatch{Name: "all", PathRegex: ".*"}),
			refused: `metadata.name: Invalid value: "größe"`},
		{name: "unicode service account of a source", obj: target("unicode-source", accessv1alpha3.IdentityBindingSubject{Kind: "ServiceAccount", Name: "kunde-ü"}),
			problem: ""}, // an identity no workload can have: allowed, and harmless
		{name: "unicode in a path regex", obj: routes("bücher-pfad", specsv1alpha4.HTTPMatch{Name: "bücher", PathRegex: "/bücher/.*"}),
			refused: `metadata.name: Invalid value: "bücher-pfad"`},
		{name: "unicode in a match", obj: routes("books", specsv1alpha4.HTTPMatch{Name: "bücher", PathRegex: "/bücher/.*", Headers: map[string]string{"x-sprache": "deutsch|日本語"}})},

		// Probes the proxy would forward to a port of its own, in plain
		// text to anyone who reaches the pod: the injector refuses the pod.
		{name: "HTTP probe of the proxy's admin interface", obj: func() client.Object {
			p := pod(ns, "config-dump", nil)
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/config_dump", Port: intstr.FromInt32(15000)}}}
			return p
		}(), refused: `pod ` + ns + `/config-dump: container "web": liveness probe: httpGet port 15000 is the proxy's (ports 15000-15999 are the sidecar's own`},
		{name: "gRPC probe of a proxy port", obj: func() client.Object {
			p := pod(ns, "grpc-proxy-port", nil)
			p.Spec.Containers[0].StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 15010}}}
			return p
		}(), refused: `pod ` + ns + `/grpc-proxy-port: container "web": startup probe: grpc port 15010 is the proxy's`},

		// Conflicting policies.
		{name: "second split of a Service", obj: split("canary-2", "web", splitv1alpha4.TrafficSplitBackend{Service: "web-v3", Weight: 1}),
			refused: "spec.service: Service " + ns + "/web is already split by TrafficSplit canary"},
		{name: "MeshMember of the namespace's own mesh", obj: &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "hostile"}},
			problem: ""}, // the first MeshMember: the namespace was labelled for this mesh already
		{name: "second MeshMember of another mesh", obj: &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "vault", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "vault"}},
			refused: `spec.mesh "vault": namespace ` + ns + ` is already a member of mesh "hostile" through MeshMember m; a namespace belongs to one mesh`},
		{name: "MeshMember of another mesh in a labelled namespace", obj: &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "vault", Namespace: moving}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "vault"}},
			warned: fmt.Sprintf(`namespace %s is labelled openservicemesh.io/monitor=hostile; the operator relabels it for mesh "vault"`, moving)},
		{name: "split backend named twice", obj: split("dup", "web-v3", splitv1alpha4.TrafficSplitBackend{Service: "web", Weight: 1}, splitv1alpha4.TrafficSplitBackend{Service: "web." + ns, Weight: 1}),
			refused: "spec.backends[1].service"},

		{name: "split backend on another port", obj: split("ports", "web-v2", splitv1alpha4.TrafficSplitBackend{Service: "web-v2", Weight: 1}, splitv1alpha4.TrafficSplitBackend{Service: "admin", Weight: 1}),
			warned:  fmt.Sprintf("spec.backends[1].service: Service %s/admin does not serve port 80 of the root Service %s/web-v2; the split is ignored", ns, ns),
			problem: fmt.Sprintf("TrafficSplit %s/ports: spec.backends[1].service: Service %s/admin does not serve port 80 of the root Service %s/web-v2; the split is ignored", ns, ns, ns)},

		// References across namespaces and meshes.
		{name: "split backend in another namespace", obj: split("elsewhere", "web-v3", splitv1alpha4.TrafficSplitBackend{Service: "web." + bank, Weight: 1}),
			refused: fmt.Sprintf(`spec.backends[0].service: service "web.%s" is not in the split's namespace %s`, bank, ns)},
		{name: "source in another mesh", obj: target("from-the-bank", accessv1alpha3.IdentityBindingSubject{Kind: "ServiceAccount", Name: "teller", Namespace: bank}),
			warned:  fmt.Sprintf(`spec.sources[0].namespace: namespace %s is a member of mesh "vault", not of mesh "hostile"`, bank),
			problem: fmt.Sprintf(`spec.sources[0].namespace: namespace %s is a member of mesh "vault", not of mesh "hostile"; the source is left out`, bank)},
		{name: "VM joining a mesh from another mesh's namespace", obj: vm("teller", bank, "hostile", 8080),
			refused: fmt.Sprintf(`spec.mesh "hostile": namespace %s is a member of mesh "vault"`, bank)},
		{name: "destination in another namespace", obj: func() client.Object {
			tt := target("cross-destination", accessv1alpha3.IdentityBindingSubject{Kind: "ServiceAccount", Name: "web"})
			tt.Spec.Destination.Namespace = bank
			return tt
		}(), refused: "spec.destination.namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := warnings.during(func() error { return k8s.Create(ctx, tc.obj) })
			if tc.refused != "" {
				if err == nil {
					t.Fatalf("accepted; want a refusal containing %q", tc.refused)
				}
				if !strings.Contains(err.Error(), tc.refused) {
					t.Errorf("refused with %q; want %q", err, tc.refused)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if w := strings.Join(got, "\n"); tc.warned == "" && w != "" || !strings.Contains(w, tc.warned) {
				t.Errorf("warnings %q; want %q", got, tc.warned)
			}
			problems := meshProblems(t, ctx, "hostile")
			if tc.problem == "" {
				return
			}
			if !strings.Contains(strings.Join(problems, "\n"), tc.problem) {
				t.Errorf("problems %q; want %q", problems, tc.problem)
			}
		})
	}

	// What was accepted builds, and every group translates to config that
	// validates (Translate validates every resource it returns).
	in, meshes, err := mesh.List(ctx, k8s)
	if err != nil {
		t.Fatal(err)
	}
	for _, mi := range meshes {
		if mi.Name != "hostile" {
			continue
		}
		in.Mesh = mi
		m, _ := mesh.Build(in)
		if len(m.Groups) == 0 {
			t.Fatal("the mesh has no proxy groups to translate")
		}
		for _, g := range m.Groups {
			if _, err := translate.Translate(m.View(g), nil); err != nil {
				t.Errorf("group %s: %v", g, err)
			}
		}
	}
	// Only the problems the table expects: the cross-mesh source and the
	// split to another port. Everything else was refused or is used as written.
	if got := meshProblems(t, ctx, "hostile"); len(got) != 2 {
		t.Errorf("problems %q; want only the cross-mesh source and the split to another port", got)
	}
}

// meshProblems builds the mesh from the API server, as the MeshInstance
// controller does for its PoliciesValid condition, and returns its problems.
func meshProblems(t *testing.T, ctx context.Context, name string) []string {
	t.Helper()
	in, meshes, err := mesh.List(ctx, k8s)
	if err != nil {
		t.Fatal(err)
	}
	for _, mi := range meshes {
		if mi.Name == name {
			in.Mesh = mi
			_, problems := mesh.Build(in)
			var out []string
			for _, p := range problems {
				out = append(out, p.Error())
			}
			return out
		}
	}
	t.Fatalf("no MeshInstance %s", name)
	return nil
}
