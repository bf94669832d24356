package webhooks_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	splitv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha4"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/webhooks"
	"github.com/open-service-mesh/osm-operator/webhooks/inject"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// The suite runs a real API server with the webhook configurations of
// config/webhook, calling the operator's webhook server over TLS.
var (
	env      *testenv.Env
	k8s      client.Client
	warnings = &warningLog{}
	cache    client.Reader
)

// warningLog keeps the warnings the API server returns to k8s.
type warningLog struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningLog) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

// during returns the warnings logged while f ran.
func (w *warningLog) during(f func() error) ([]string, error) {
	w.mu.Lock()
	n := len(w.msgs)
	w.mu.Unlock()
	err := f()
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs[n:]...), err
}

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctrllog.SetLogger(logr.Discard())
	var err error
	if env, err = testenv.StartWithWebhooks(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandlerWithContext = warnings
	cfg.QPS, cfg.Burst = 5000, 5000 // measure the server, not client-side throttling
	if k8s, err = client.New(cfg, client.Options{Scheme: env.Scheme}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wo := env.WebhookInstallOptions
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:        env.Scheme,
		Metrics:       metricsserver.Options{BindAddress: "0"},
		WebhookServer: webhook.NewServer(webhook.Options{Host: wo.LocalServingHost, Port: wo.LocalServingPort, CertDir: wo.LocalServingCertDir}),
	})
	if err == nil {
		err = webhooks.SetupWithManager(mgr, webhooks.Options{Namespace: "osm-system", InitImage: "init:test", SidecarImage: "envoy:test"})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cache = mgr.GetCache()
	go func() {
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		fmt.Fprintln(os.Stderr, "the cache did not sync")
		return 1
	}
	return m.Run()
}

var seq atomic.Int32

// meshNamespace creates a MeshInstance (once) and a namespace labelled for it.
func meshNamespace(t testing.TB, mesh string, annotations map[string]string) string {
	t.Helper()
	ctx := context.Background()
	err := k8s.Create(ctx, &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: mesh}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return namespace(t, map[string]string{meshv1alpha1.MonitorLabel: mesh}, annotations)
}

func namespace(t testing.TB, labels, annotations map[string]string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ns-%d", seq.Add(1)), Labels: labels, Annotations: annotations}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	// The injector reads namespaces from its cache.
	testenv.Eventually(t, 10*time.Second, func() error {
		return cache.Get(context.Background(), client.ObjectKey{Name: ns.Name}, &corev1.Namespace{})
	})
	return ns.Name
}

func pod(ns, name string, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations},
		Spec: corev1.PodSpec{ServiceAccountName: "web", Containers: []corev1.Container{{
			Name: "web", Image: "web:v1", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intOrName("http")}}},
		}}},
	}
}

// A mesh that names its sidecar's image keeps it, whatever the operator's
// default; one that names none follows the operator's, and so moves to the
// operator's Envoy when the operator is upgraded.
func TestTheMeshsSidecarImageWinsOverTheOperators(t *testing.T) {
	ctx := context.Background()
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "pinned"}}
	mi.Spec.Sidecar.Image = "envoy:pinned"
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	ns := namespace(t, map[string]string{meshv1alpha1.MonitorLabel: "pinned"}, nil)
	testenv.Eventually(t, 10*time.Second, func() error {
		return cache.Get(ctx, client.ObjectKeyFromObject(mi), &meshv1alpha1.MeshInstance{})
	})
	p := pod(ns, "web-1", nil)
	testenv.Eventually(t, 20*time.Second, func() error { return k8s.Create(ctx, p) })
	if !injected(p) {
		t.Fatalf("the member pod was not injected: init containers %v", p.Spec.InitContainers)
	}
	if got := p.Spec.InitContainers[1].Image; got != "envoy:pinned" {
		t.Errorf("proxy image %q, want the mesh's envoy:pinned", got)
	}
}

func injected(p *corev1.Pod) bool {
	return len(p.Spec.InitContainers) >= 2 && p.Spec.InitContainers[0].Name == inject.InitContainer &&
		p.Spec.InitContainers[1].Name == inject.ProxyContainer && p.Annotations[meshv1alpha1.InjectedAnnotation] != ""
}

// TestPodInjection: through the real API server, a member pod gets the init
// container and the native sidecar; an opted-out pod and a pod outside any
// mesh are untouched; a dry run is injected and leaves nothing; invalid
// annotations are refused with a message naming them.
func TestPodInjection(t *testing.T) {
	ctx := context.Background()
	ns := meshNamespace(t, "shop", nil)

	p := pod(ns, "web-1", nil)
	testenv.Eventually(t, 20*time.Second, func() error { return k8s.Create(ctx, p) })
	if !injected(p) {
		t.Fatalf("the member pod was not injected: init containers %v, annotations %v", p.Spec.InitContainers, p.Annotations)
	}
	proxy := p.Spec.InitContainers[1]
	if proxy.RestartPolicy == nil || *proxy.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("the proxy container: %+v", proxy)
	}
	if proxy.Image != "envoy:test" {
		t.Errorf("proxy image %q, want the operator's --sidecar-image: the mesh names none", proxy.Image)
	}
	if p.Spec.InitContainers[0].Image != "init:test" {
		t.Errorf("init image %q, want the operator's --init-image", p.Spec.InitContainers[0].Image)
	}
	if got := p.Spec.Containers[0].ReadinessProbe.HTTPGet; got.Port.IntVal != mesh.ProbePort || got.Path != "/osm-probe/web/readiness" {
		t.Errorf("the readiness probe was not rewritten: %+v", got)
	}
	if !strings.Contains(strings.Join(proxy.Args, " "), `"sidecar~$(POD_NAMESPACE)~$(POD_NAME)"`) {
		t.Error("the bootstrap does not name the node from the pod's environment")
	}
	// The API server took the identity volume: the Secret's certificate and
	// key, and the mesh's trust bundle as ca.crt.
	var identity *corev1.Volume
	for i := range p.Spec.Volumes {
		if p.Spec.Volumes[i].Name == inject.IdentityVolume {
			identity = &p.Spec.Volumes[i]
		}
	}
	if identity == nil || identity.Projected == nil || len(identity.Projected.Sources) != 2 ||
		identity.Projected.Sources[0].Secret == nil || identity.Projected.Sources[0].Secret.Name != meshv1alpha1.IdentitySecretName("web") ||
		identity.Projected.Sources[1].ConfigMap == nil || identity.Projected.Sources[1].ConfigMap.Name != meshv1alpha1.TrustBundleConfigMapName("shop") {
		t.Errorf("the identity volume is not the Secret and the mesh's bundle projected together: %+v", identity)
	}

	optedOut := pod(ns, "legacy", map[string]string{meshv1alpha1.SidecarInjectionAnnotation: "disabled"})
	if err := k8s.Create(ctx, optedOut); err != nil {
		t.Fatal(err)
	}
	outside := pod(namespace(t, nil, nil), "web-1", nil)
	if err := k8s.Create(ctx, outside); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*corev1.Pod{optedOut, outside} {
		if len(p.Spec.InitContainers) != 0 || p.Annotations[meshv1alpha1.InjectedAnnotation] != "" {
			t.Errorf("pod %s/%s was injected", p.Namespace, p.Name)
		}
	}

	dry := pod(ns, "dry", nil)
	if err := k8s.Create(ctx, dry, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	if !injected(dry) {
		t.Error("a dry-run create was not injected")
	}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(dry), &corev1.Pod{}); !apierrors.IsNotFound(err) {
		t.Errorf("the dry run left a pod behind: %v", err)
	}

	for _, tc := range []struct{ annotation, value, bad string }{
		{inject.OutboundPortExclusionAnnotation, "80,https", `"https" is not a port`},
		{inject.OutboundIPRangeExclusionAnnotation, "10.0.0.0/33", `"10.0.0.0/33" is not a CIDR`},
		{meshv1alpha1.SidecarInjectionAnnotation, "sometimes", `"sometimes" is neither "enabled" nor "disabled"`},
	} {
		err := k8s.Create(ctx, pod(ns, "bad", map[string]string{tc.annotation: tc.value}))
		if want := fmt.Sprintf("pod %s/bad: annotation %s: %s", ns, tc.annotation, tc.bad); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("annotation %s=%q: error %v, want a denial containing %q", tc.annotation, tc.value, err, want)
		}
	}
}

// TestPodOfAMissingMesh: a namespace labelled for a mesh that does not exist
// starts its pods without a sidecar, and the user is told why.
func TestPodOfAMissingMesh(t *testing.T) {
	ns := namespace(t, map[string]string{meshv1alpha1.MonitorLabel: "ghost"}, nil)
	p := pod(ns, "web-1", nil)
	got, err := warnings.during(func() error { return k8s.Create(context.Background(), p) })
	if err != nil {
		t.Fatal(err)
	}
	if injected(p) || len(got) != 1 || !strings.Contains(got[0], `MeshInstance "ghost" does not exist`) {
		t.Errorf("injected %v, warnings %q", injected(p), got)
	}
}

// TestValidation: each validating webhook denies what would make the mesh
// wrong and warns of what may simply not be applied yet, naming the object
// and the field.
func TestValidation(t *testing.T) {
	ctx := context.Background()
	ns := meshNamespace(t, "books", nil)
	if err := k8s.Create(ctx, &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "other"}}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "bookstore", Namespace: ns}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
	group := &specsv1alpha4.HTTPRouteGroup{ObjectMeta: metav1.ObjectMeta{Name: "routes", Namespace: ns},
		Spec: specsv1alpha4.HTTPRouteGroupSpec{Matches: []specsv1alpha4.HTTPMatch{{Name: "buy", PathRegex: "/buy", Methods: []string{"GET"}}}}}
	member := &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "books", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "books"}}
	vm := func(name, addr string) *meshv1alpha1.MeshVM {
		return &meshv1alpha1.MeshVM{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: meshv1alpha1.MeshVMSpec{
			Mesh: "books", ServiceAccountName: name, Addresses: []string{addr},
			Ports: []meshv1alpha1.VMPort{{Name: "http", Port: 8080, Protocol: meshv1alpha1.ProtocolHTTP}}, Services: []string{"bookstore"}}}
	}
	target := func(name string, rules ...accessv1alpha3.TrafficTargetRule) *accessv1alpha3.TrafficTarget {
		return &accessv1alpha3.TrafficTarget{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: accessv1alpha3.TrafficTargetSpec{
			Destination: accessv1alpha3.IdentityBindingSubject{Kind: "ServiceAccount", Name: "bookstore"},
			Sources:     []accessv1alpha3.IdentityBindingSubject{{Kind: "ServiceAccount", Name: "bookbuyer"}},
			Rules:       rules,
		}}
	}
	split := func(name string, weights ...int) *splitv1alpha4.TrafficSplit {
		ts := &splitv1alpha4.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: splitv1alpha4.TrafficSplitSpec{Service: "bookstore"}}
		for i, w := range weights {
			ts.Spec.Backends = append(ts.Spec.Backends, splitv1alpha4.TrafficSplitBackend{Service: fmt.Sprintf("bookstore-v%d", i+1), Weight: w})
		}
		return ts
	}
	// Services a split cannot send the root's traffic to: another port, no virtual IP.
	other := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "bookstore-8080", Namespace: ns}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 8080}}}}
	shelf := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "shelf", Namespace: ns}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
	headless := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "bookstore-pods", Namespace: ns}, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Port: 80}}}}
	// A root with two ports, one of which shelf serves.
	counter := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "counter", Namespace: ns}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "admin", Port: 8080}}}}
	// A namespace that is no member but holds a MeshVM of the mesh.
	vmNamespace := namespace(t, nil, nil)
	gate := vm("gate", "192.0.2.2")
	gate.Namespace, gate.Spec.Services = vmNamespace, nil
	for _, o := range []client.Object{svc, other, shelf, headless, counter, gate, group, member, vm("warehouse", "192.0.2.1")} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		for _, o := range []client.Object{svc, other, shelf, headless} {
			if err := cache.Get(ctx, client.ObjectKeyFromObject(o), &corev1.Service{}); err != nil {
				return err
			}
		}
		return cache.Get(ctx, client.ObjectKeyFromObject(gate), &meshv1alpha1.MeshVM{})
	})
	backends := func(ts *splitv1alpha4.TrafficSplit, names ...string) *splitv1alpha4.TrafficSplit {
		ts.Spec.Backends = nil
		for _, n := range names {
			ts.Spec.Backends = append(ts.Spec.Backends, splitv1alpha4.TrafficSplitBackend{Service: n, Weight: 50})
		}
		return ts
	}

	for _, tc := range []struct {
		name string
		obj  client.Object
		// denied or warned must appear in the denial or in a warning.
		denied, warned string
	}{
		{name: "second mesh in a namespace", obj: &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "other"}},
			denied: fmt.Sprintf(`MeshMember %s/other: spec.mesh "other": namespace %s is already a member of mesh "books" through MeshMember books`, ns, ns)},
		{name: "member of a missing mesh", obj: &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: namespace(t, nil, nil)}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "nowhere"}},
			warned: `spec.mesh: MeshInstance "nowhere" does not exist`},
		{name: "VM address taken", obj: vm("copy", "192.0.2.1"),
			denied: fmt.Sprintf(`MeshVM %s/copy: spec.addresses[0]: 192.0.2.1 is already the address of MeshVM %s/warehouse in mesh "books"`, ns, ns)},
		{name: "route group missing", obj: target("t1", accessv1alpha3.TrafficTargetRule{Kind: "HTTPRouteGroup", Name: "nope"}),
			warned: fmt.Sprintf(`TrafficTarget %s/t1: spec.rules[0]: HTTPRouteGroup %s/nope does not exist`, ns, ns)},
		{name: "match missing", obj: target("t2", accessv1alpha3.TrafficTargetRule{Kind: "HTTPRouteGroup", Name: "routes", Matches: []string{"buy", "steal"}}),
			warned: fmt.Sprintf(`TrafficTarget %s/t2: spec.rules[0].matches[1]: HTTPRouteGroup %s/routes has no match "steal"`, ns, ns)},
		{name: "source in a namespace holding a VM of the mesh", obj: func() client.Object {
			tt := target("t4", accessv1alpha3.TrafficTargetRule{Kind: "HTTPRouteGroup", Name: "routes"})
			tt.Spec.Sources[0].Name, tt.Spec.Sources[0].Namespace = "gate", vmNamespace
			return tt
		}()},
		{name: "destination in another namespace", obj: func() client.Object {
			tt := target("t3", accessv1alpha3.TrafficTargetRule{Kind: "HTTPRouteGroup", Name: "routes"})
			tt.Spec.Destination.Namespace = "elsewhere"
			return tt
		}(), denied: fmt.Sprintf(`TrafficTarget %s/t3: spec.destination.namespace: "elsewhere": the destination must be in the TrafficTarget's namespace %s`, ns, ns)},
		{name: "split weights all zero", obj: split("s1", 0, 0),
			denied: fmt.Sprintf("TrafficSplit %s/s1: spec.backends: every weight is 0", ns)},
		{name: "split backends missing", obj: func() client.Object {
			ts := split("s2", 80, 20)
			ts.Spec.Service = "bookstore-v9"
			return ts
		}(),
			warned: fmt.Sprintf("TrafficSplit %s/s2: spec.backends[0].service: Service %s/bookstore-v1 does not exist", ns, ns)},
		{name: "split backend without the root's port", obj: func() client.Object {
			ts := backends(split("s4"), "shelf", "bookstore-8080")
			ts.Spec.Service = "shelf"
			return ts
		}(),
			warned: fmt.Sprintf("TrafficSplit %s/s4: spec.backends[1].service: Service %s/bookstore-8080 does not serve port 80 of the root Service %s/shelf; the split is ignored", ns, ns, ns)},
		{name: "split backend with some of the root's ports", obj: func() client.Object {
			ts := backends(split("s6"), "counter", "shelf")
			ts.Spec.Service = "counter"
			return ts
		}(),
			warned: fmt.Sprintf("TrafficSplit %s/s6: spec.backends[1].service: Service %s/shelf does not serve port 8080 of the root Service %s/counter; the root keeps its traffic on port 8080", ns, ns, ns)},
		{name: "split to a headless backend", obj: func() client.Object {
			ts := backends(split("s5"), "bookstore-pods")
			ts.Spec.Service = "bookstore-8080"
			return ts
		}(),
			warned: fmt.Sprintf("TrafficSplit %s/s5: spec.backends[0].service: Service %s/bookstore-pods is headless: traffic for the root's virtual IP cannot be sent to it; the split is ignored", ns, ns)},
		{name: "split naming services with their namespace", obj: func() client.Object {
			ts := split("s3")
			ts.Spec.Service = "bookstore." + ns
			ts.Spec.Backends = []splitv1alpha4.TrafficSplitBackend{{Service: "bookstore." + ns, Weight: 100}}
			return ts
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := warnings.during(func() error { return k8s.Create(ctx, tc.obj) })
			if tc.denied != "" {
				if err == nil || !strings.Contains(err.Error(), tc.denied) {
					t.Errorf("error %v, want a denial containing %q", err, tc.denied)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tc.warned == "" && len(got) > 0 {
				t.Errorf("warnings %q, want none", got)
			}
			if !strings.Contains(strings.Join(got, "\n"), tc.warned) {
				t.Errorf("warnings %q, want one containing %q", got, tc.warned)
			}
		})
	}
}

func intOrName(name string) intstr.IntOrString { return intstr.FromString(name) }
