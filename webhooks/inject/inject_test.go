package inject

import (
	"bytes"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	jsonpatchv5 "github.com/evanphx/json-patch/v5"
	grpcxds "google.golang.org/grpc/xds"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/bootstrap"
	"github.com/open-service-mesh/osm-operator/xds/envoyrules"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/out")

// testConfig is the bookstore mesh with one exclusion of its own, served
// from osm-system.
func testConfig() Config {
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "bookstore"}}
	mi.Spec.Sidecar = meshv1alpha1.Sidecar{Image: DefaultSidecarImage, LogLevel: "warning", ExcludeOutboundPorts: []int32{5432}}
	return ConfigFor(mi, "osm-system", Images{})
}

func memberNamespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{meshv1alpha1.MonitorLabel: "bookstore"}}}
}

// TestGolden injects each pod of testdata/in and compares the JSON patch, or
// the reason it is left alone, or the error, with testdata/out. Run
// `go test ./webhooks/inject -update` to rewrite them and review the diff.
func TestGolden(t *testing.T) {
	ins, err := filepath.Glob("testdata/in/*.yaml")
	if err != nil || len(ins) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			raw, pod := readPod(t, in)
			got := map[string]any{}
			d, err := Decide(pod, memberNamespace(pod.Namespace), nil)
			switch {
			case err != nil:
				got["error"] = err.Error()
			case !d.Inject:
				got["reason"] = d.Reason
			default:
				ops, err := Patch(pod, testConfig())
				if err != nil {
					got["error"] = err.Error()
				} else {
					checkPatch(t, raw, ops)
					got["patch"] = ops
				}
			}
			out, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, '\n')
			golden := filepath.Join("testdata/out", name+".json")
			if *update {
				if err := os.MkdirAll("testdata/out", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v; run with -update", err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("%s differs from what injection gives; run with -update and review the diff", golden)
			}
		})
	}
}

func readPod(t *testing.T, path string) ([]byte, *corev1.Pod) {
	t.Helper()
	y, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{}
	if err := json.Unmarshal(raw, pod); err != nil {
		t.Fatal(err)
	}
	// The API server sends the pod as it encodes it, empty fields included.
	if raw, err = json.Marshal(pod); err != nil {
		t.Fatal(err)
	}
	return raw, pod
}

// checkPatch applies the patch as the API server does, and checks that the
// result is a pod whose sidecar bootstrap Envoy would accept.
func checkPatch(t *testing.T, raw []byte, ops any) {
	t.Helper()
	p, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	patch, err := jsonpatchv5.DecodePatch(p)
	if err != nil {
		t.Fatal(err)
	}
	out, err := patch.Apply(raw)
	if err != nil {
		t.Fatalf("the patch does not apply: %v", err)
	}
	pod := &corev1.Pod{}
	if err := json.Unmarshal(out, pod); err != nil {
		t.Fatal(err)
	}
	if pod.Annotations[mesh.ProxyKindAnnotation] == string(mesh.ProxyGRPC) {
		checkProxyless(t, pod)
		return
	}
	if !Injected(pod) || pod.Spec.InitContainers[0].Name != InitContainer || pod.Spec.InitContainers[1].Name != ProxyContainer {
		t.Fatalf("init containers %v: want the redirection first, then the proxy", pod.Spec.InitContainers)
	}
	proxy := pod.Spec.InitContainers[1]
	if proxy.RestartPolicy == nil || *proxy.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Error("the proxy is not a native sidecar")
	}
	// Kubernetes expands $(POD_NAMESPACE) and $(POD_NAME) from the env.
	arg := func(flag string) string {
		i := slices.Index(proxy.Args, flag)
		if i < 0 || i+1 >= len(proxy.Args) {
			t.Fatalf("the proxy has no %s: %v", flag, proxy.Args)
		}
		return proxy.Args[i+1]
	}
	boot := strings.NewReplacer("$(POD_NAMESPACE)", pod.Namespace, "$(POD_NAME)", "p-1").Replace(arg("--config-yaml"))
	b := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal([]byte(boot), b); err != nil {
		t.Fatalf("the bootstrap does not parse: %v", err)
	}
	if err := b.ValidateAll(); err != nil {
		t.Errorf("the bootstrap is invalid: %v", err)
	}
	checkTypedConfigs(t, b)
	if want := "sidecar~" + pod.Namespace + "~p-1"; b.GetNode().GetId() != want {
		t.Errorf("node ID %q, want %q", b.GetNode().GetId(), want)
	}
	checkIPv6Overlay(t, pod, arg("--config-path"), b)
	checkSDSFiles(t, pod, proxy)
	checkIdentityFiles(t, pod, proxy, testConfig().Mesh)
	// Injecting the injected pod changes nothing.
	again, err := Decide(pod, memberNamespace(pod.Namespace), nil)
	if err != nil || again.Inject {
		t.Errorf("a second pass would inject again: %+v, %v", again, err)
	}
}

func TestDecideHonoursNamespaceAndMembers(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "shop", Labels: map[string]string{"app": "web"}}}
	ns := memberNamespace("shop")
	member := func(sel map[string]string, inj meshv1alpha1.InjectionMode) meshv1alpha1.MeshMember {
		m := meshv1alpha1.MeshMember{Spec: meshv1alpha1.MeshMemberSpec{Mesh: "bookstore", Injection: inj}}
		if sel != nil {
			m.Spec.Selector = &metav1.LabelSelector{MatchLabels: sel}
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		nsAnn   string
		podAnn  string
		members []meshv1alpha1.MeshMember
		want    bool
	}{
		{name: "labelled by hand", want: true},
		{name: "namespace opted out", nsAnn: "disabled", want: false},
		{name: "pod opts in over its namespace", nsAnn: "disabled", podAnn: "enabled", want: true},
		{name: "member selects the pod", members: []meshv1alpha1.MeshMember{member(map[string]string{"app": "web"}, "")}, want: true},
		{name: "member selects other pods", members: []meshv1alpha1.MeshMember{member(map[string]string{"app": "db"}, "")}, want: false},
		{name: "member without injection", members: []meshv1alpha1.MeshMember{member(nil, meshv1alpha1.InjectionDisabled)}, want: false},
		{name: "member of another mesh is ignored", members: []meshv1alpha1.MeshMember{{Spec: meshv1alpha1.MeshMemberSpec{Mesh: "other", Injection: meshv1alpha1.InjectionDisabled}}}, want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, n := pod.DeepCopy(), ns.DeepCopy()
			if tc.nsAnn != "" {
				n.Annotations = map[string]string{meshv1alpha1.SidecarInjectionAnnotation: tc.nsAnn}
			}
			if tc.podAnn != "" {
				p.Annotations = map[string]string{meshv1alpha1.SidecarInjectionAnnotation: tc.podAnn}
			}
			d, err := Decide(p, n, tc.members)
			if err != nil || d.Inject != tc.want {
				t.Errorf("Decide = %+v, %v; want inject %v", d, err, tc.want)
			}
		})
	}
	if d, _ := Decide(pod, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, nil); d.Inject {
		t.Error("a pod of a namespace in no mesh was injected")
	}
}

// checkProxyless checks that every container of an injected proxyless gRPC
// pod has a bootstrap gRPC's own xDS resolver accepts, naming the pod.
func checkProxyless(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	if !Injected(pod) || len(pod.Spec.InitContainers) != 0 {
		t.Errorf("proxyless pod: injected %v, init containers %v", Injected(pod), pod.Spec.InitContainers)
	}
	for _, c := range pod.Spec.Containers {
		var boot string
		for _, e := range c.Env {
			if e.Name == GRPCBootstrapEnv {
				boot = strings.NewReplacer("$(OSM_POD_NAMESPACE)", pod.Namespace, "$(OSM_POD_NAME)", "p-1").Replace(e.Value)
			}
		}
		if _, err := grpcxds.NewXDSResolverWithConfigForTesting([]byte(boot)); err != nil {
			t.Errorf("container %s: gRPC refuses the bootstrap: %v", c.Name, err)
		}
		if !strings.Contains(boot, `"id":"sidecar~`+pod.Namespace+`~p-1"`) {
			t.Errorf("container %s: the bootstrap does not name the pod: %s", c.Name, boot)
		}
		checkIdentityFiles(t, pod, c, testConfig().Mesh)
	}
}

// checkSDSFiles checks the files the proxy finds in SDSDir, as the kubelet
// projects them from the pod's annotations: the SDS files of its identity
// directory, which the bootstrap's xDS connection reads.
func checkSDSFiles(t *testing.T, pod *corev1.Pod, proxy corev1.Container) {
	t.Helper()
	mounts := map[string]string{}
	for _, m := range proxy.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	if mounts[SDSVolume] != SDSDir || mounts[IdentityVolume] != IdentityDir {
		t.Errorf("the proxy mounts %v", mounts)
	}
	want, err := bootstrap.SDSFiles(IdentityDir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		if v.Name != SDSVolume || v.DownwardAPI == nil {
			continue
		}
		for _, item := range v.DownwardAPI.Items {
			key, ok := strings.CutPrefix(item.FieldRef.FieldPath, "metadata.annotations['")
			key, ok2 := strings.CutSuffix(key, "']")
			if !ok || !ok2 {
				t.Fatalf("item %s projects %q", item.Path, item.FieldRef.FieldPath)
			}
			got[item.Path] = pod.Annotations[key]
		}
	}
	if len(got) != len(want) {
		t.Fatalf("SDS files %v, want %d", slices.Collect(maps.Keys(got)), len(want))
	}
	for name, content := range want {
		if got[name] != string(content) {
			t.Errorf("SDS file %s holds %q, want %q", name, got[name], content)
		}
	}
}

// checkIPv6Overlay: the init container writes, where the kernel has IPv6,
// the file the proxy reads with --config-path: a twin on [::] of each
// static listener. Envoy merges the inline bootstrap into it, appending
// listeners; what it then loads obeys Envoy's load rules. Without IPv6 the
// file is an empty bootstrap.
func checkIPv6Overlay(t *testing.T, pod *corev1.Pod, path string, b *bootstrapv3.Bootstrap) {
	t.Helper()
	if path != OverlayFile {
		t.Errorf("--config-path %s, want %s", path, OverlayFile)
	}
	script := pod.Spec.InitContainers[0].Command[2]
	start := strings.Index(script, "cat > "+OverlayFile+" <<'EOF'\n")
	if start < 0 || !strings.Contains(script, "echo '{}' > "+OverlayFile) || !strings.Contains(script, "[ -e /proc/net/if_inet6 ]") {
		t.Fatalf("the init script does not write the overlay by the kernel's IPv6:\n%s", script)
	}
	body := script[start+len("cat > "+OverlayFile+" <<'EOF'\n"):]
	end := strings.Index(body, "\nEOF\n")
	// Nothing a pod's probes hold ends the heredoc early: what follows its
	// end is the script's own.
	if rest := body[end:]; rest != "\nEOF\nelse\necho '{}' > "+OverlayFile+"\nfi\n" {
		t.Fatalf("the overlay's heredoc ends before the overlay does; the script goes on with:\n%s", rest)
	}
	body = body[:end]
	overlay := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal([]byte(body), overlay); err != nil {
		t.Fatalf("the overlay does not parse: %v", err)
	}
	twins := map[string]uint32{}
	for _, l := range overlay.GetStaticResources().GetListeners() {
		if a := l.GetAddress().GetSocketAddress(); a.GetAddress() == "::" {
			twins[l.GetName()] = a.GetPortValue()
		}
	}
	for _, l := range b.GetStaticResources().GetListeners() {
		if twins[l.GetName()+"-ipv6"] != l.GetAddress().GetSocketAddress().GetPortValue() {
			t.Errorf("static listener %s has no twin on [::]", l.GetName())
		}
	}
	merged := proto.Clone(overlay).(*bootstrapv3.Bootstrap)
	proto.Merge(merged, b)
	if err := envoyrules.CheckBootstrap(merged, nil, envoyrules.Options{}); err != nil {
		t.Errorf("the bootstrap with its IPv6 listeners: %v", err)
	}
	mounted := func(c corev1.Container) bool {
		return slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == BootstrapVolume && m.MountPath == BootstrapDir })
	}
	if !mounted(pod.Spec.InitContainers[0]) || !mounted(pod.Spec.InitContainers[1]) {
		t.Error("the overlay's volume is not mounted in the init container and the proxy")
	}
}
