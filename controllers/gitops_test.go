package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/jsonmergepatch"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
)

// argoHealth runs the Argo CD health script of obj's group and kind from
// examples/gitops/argocd/argocd-cm.yaml under gopher-lua, the interpreter
// Argo CD embeds, with obj as the global `obj`, and returns its status and
// message.
func argoHealth(t *testing.T, obj *unstructured.Unstructured) (string, string) {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "examples", "gitops", "argocd", "argocd-cm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		t.Fatal(err)
	}
	gvk := obj.GroupVersionKind()
	script, ok := cm.Data["resource.customizations.health."+gvk.Group+"_"+gvk.Kind]
	if !ok {
		t.Fatalf("argocd-cm has no health check for %s", gvk.GroupKind())
	}
	L := lua.NewState()
	defer L.Close()
	L.SetGlobal("obj", toLua(L, obj.Object))
	if err := L.DoString(script); err != nil {
		t.Fatalf("the %s health script fails: %v", obj.GetKind(), err)
	}
	hs, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("the %s health script returned %v", obj.GetKind(), L.Get(-1))
	}
	return hs.RawGetString("status").String(), hs.RawGetString("message").String()
}

// toLua converts JSON-shaped Go values to Lua values as Argo CD does.
func toLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case map[string]any:
		t := L.NewTable()
		for k, e := range v {
			t.RawSetString(k, toLua(L, e))
		}
		return t
	case []any:
		t := L.NewTable()
		for _, e := range v {
			t.Append(toLua(L, e))
		}
		return t
	case string:
		return lua.LString(v)
	case bool:
		return lua.LBool(v)
	case int64:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case nil:
		return lua.LNil
	default:
		panic(fmt.Sprintf("toLua: %T", v))
	}
}

func readUnstructured(t *testing.T, obj client.Object, kind string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(meshv1alpha1.GroupVersion.WithKind(kind))
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), u); err != nil {
		t.Fatal(err)
	}
	return u
}

// manifest is a CR as a user keeps it in git.
func manifest(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(y), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

// TestGitOpsHealth: what Flux (kstatus) and Argo CD (the Lua health checks
// of examples/gitops/argocd) read from each CR through its life: Progressing
// / InProgress while the operator works, Healthy / Current once Ready,
// Degraded / Failed when Stalled.
func TestGitOpsHealth(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, nil)
	type want struct {
		argo    string
		kstatus status.Status
	}
	check := func(obj client.Object, kind string, w want) {
		t.Helper()
		testenv.Eventually(t, 60*time.Second, func() error {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(meshv1alpha1.GroupVersion.WithKind(kind))
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), u); err != nil {
				return err
			}
			res, err := status.Compute(u)
			if err != nil {
				return err
			}
			got, msg := argoHealth(t, u)
			if got != w.argo || res.Status != w.kstatus {
				return fmt.Errorf("%s %s: Argo CD %s (%s), kstatus %s; want %s, %s", kind, obj.GetName(), got, msg, res.Status, w.argo, w.kstatus)
			}
			return nil
		})
	}

	// Before the operator reports, and while it has not seen a new generation.
	fresh := manifest(t, "apiVersion: mesh.openservicemesh.io/v1alpha1\nkind: MeshInstance\nmetadata: {name: fresh, generation: 2}\n")
	if got, _ := argoHealth(t, fresh); got != "Progressing" {
		t.Errorf("a MeshInstance with no status is %s, want Progressing", got)
	}

	healthy := &meshv1alpha1.MeshInstance{}
	healthy.Name = "gitops"
	if err := k8s.Create(ctx, healthy); err != nil {
		t.Fatal(err)
	}
	check(healthy, "MeshInstance", want{"Healthy", status.CurrentStatus})
	lagging := readUnstructured(t, healthy, "MeshInstance")
	lagging.SetGeneration(lagging.GetGeneration() + 1)
	if got, msg := argoHealth(t, lagging); got != "Progressing" || !strings.Contains(msg, "generation") {
		t.Errorf("a MeshInstance whose new generation is not observed is %s (%s), want Progressing", got, msg)
	}

	stalled := &meshv1alpha1.MeshInstance{}
	stalled.Name = "gitops-stalled"
	stalled.Spec.Certificates.IssuerRef = &meshv1alpha1.IssuerReference{Name: "team-ca", Kind: "Issuer", Group: "cert-manager.io"}
	if err := k8s.Create(ctx, stalled); err != nil {
		t.Fatal(err)
	}
	check(stalled, "MeshInstance", want{"Degraded", status.FailedStatus})

	waiting := &meshv1alpha1.MeshMember{}
	waiting.Name, waiting.Namespace, waiting.Spec.Mesh = "m", ns, "not-yet"
	if err := k8s.Create(ctx, waiting); err != nil {
		t.Fatal(err)
	}
	check(waiting, "MeshMember", want{"Progressing", status.InProgressStatus})

	vm := &meshv1alpha1.MeshVM{}
	vm.Name, vm.Namespace = "vm", ns
	vm.Spec = meshv1alpha1.MeshVMSpec{Mesh: "not-yet", ServiceAccountName: "vm", Addresses: []string{"192.0.2.40"},
		Ports: []meshv1alpha1.VMPort{{Name: "http", Port: 80, Protocol: meshv1alpha1.ProtocolHTTP}}}
	if err := k8s.Create(ctx, vm); err != nil {
		t.Fatal(err)
	}
	check(vm, "MeshVM", want{"Progressing", status.InProgressStatus})
}

// TestGitOpsHealthOfPolicies: what Argo CD (the Lua health checks of
// examples/gitops/argocd) and Flux (kstatus) read from an IngressBackend
// and an Egress as the operator writes their status: Degraded / Failed
// while no mesh reads them (Stalled), Healthy / Current once one does, and
// Progressing before any status and while a new generation is not
// observed. An IngressBackend's status as OSM wrote it, currentStatus and
// reason without conditions, reads as OSM meant it.
func TestGitOpsHealthOfPolicies(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, nil)
	ib, eg := testPolicies(ns)
	policies := []struct {
		obj  client.Object
		kind string
	}{{ib, "IngressBackend"}, {eg, "Egress"}}
	read := func(obj client.Object, kind string) (*unstructured.Unstructured, error) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(policyv1alpha1.GroupVersion.WithKind(kind))
		return u, k8s.Get(ctx, client.ObjectKeyFromObject(obj), u)
	}
	check := func(argo string, kstatus status.Status, msg string) {
		t.Helper()
		for _, p := range policies {
			testenv.Eventually(t, 60*time.Second, func() error {
				u, err := read(p.obj, p.kind)
				if err != nil {
					return err
				}
				res, err := status.Compute(u)
				if err != nil {
					return err
				}
				got, gotMsg := argoHealth(t, u)
				if got != argo || res.Status != kstatus || !strings.Contains(gotMsg, msg) {
					return fmt.Errorf("%s %s: Argo CD %s (%s), kstatus %s; want %s (containing %q), %s", p.kind, p.obj.GetName(), got, gotMsg, res.Status, argo, msg, kstatus)
				}
				return nil
			})
		}
	}

	// Before the operator reports.
	for _, p := range policies {
		fresh := manifest(t, fmt.Sprintf("apiVersion: policy.openservicemesh.io/v1alpha1\nkind: %s\nmetadata: {name: fresh, namespace: %s, generation: 1}\n", p.kind, ns))
		if got, _ := argoHealth(t, fresh); got != "Progressing" {
			t.Errorf("an %s with no status is %s, want Progressing", p.kind, got)
		}
	}

	for _, p := range policies {
		if err := k8s.Create(ctx, p.obj); err != nil {
			t.Fatal(err)
		}
	}
	check("Degraded", status.FailedStatus, policyv1alpha1.ReasonNamespaceNotInMesh)

	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "gitops-policies"}}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	labelNamespace(t, ns, func(l map[string]string) { l[meshv1alpha1.MonitorLabel] = mi.Name })
	check("Healthy", status.CurrentStatus, "In effect in mesh gitops-policies")

	// A new generation the operator has not observed yet.
	for _, p := range policies {
		lagging, err := read(p.obj, p.kind)
		if err != nil {
			t.Fatal(err)
		}
		lagging.SetGeneration(lagging.GetGeneration() + 1)
		if got, msg := argoHealth(t, lagging); got != "Progressing" || !strings.Contains(msg, "generation") {
			t.Errorf("an %s whose new generation is not observed is %s (%s), want Progressing", p.kind, got, msg)
		}
	}

	// An IngressBackend's status as OSM writes it: no conditions.
	for _, tc := range []struct{ currentStatus, want string }{
		{policyv1alpha1.IngressBackendCommitted, "Healthy"},
		{policyv1alpha1.IngressBackendError, "Degraded"},
	} {
		osm := manifest(t, fmt.Sprintf("apiVersion: policy.openservicemesh.io/v1alpha1\nkind: IngressBackend\n"+
			"metadata: {name: osm, namespace: %s, generation: 3}\nstatus: {currentStatus: %s, reason: as OSM says}\n", ns, tc.currentStatus))
		if got, msg := argoHealth(t, osm); got != tc.want || !strings.Contains(msg, "as OSM says") {
			t.Errorf("an IngressBackend OSM reports %s is %s (%s), want %s with its reason", tc.currentStatus, got, msg, tc.want)
		}
	}
}

// TestReapplyMakesNoChange: once the operator has reconciled a mesh, applying
// the same manifests again, server-side or as kubectl's client-side apply
// computes it, changes nothing: the operator never fights the user's fields.
func TestReapplyMakesNoChange(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, nil)
	docs := []string{
		"apiVersion: mesh.openservicemesh.io/v1alpha1\nkind: MeshInstance\nmetadata:\n  name: reapply\n  labels: {app.kubernetes.io/instance: shop}\nspec:\n  trustDomain: shop.local\n  trafficPolicy: {mode: SMI}\n",
		fmt.Sprintf("apiVersion: mesh.openservicemesh.io/v1alpha1\nkind: MeshMember\nmetadata:\n  name: shop\n  namespace: %s\n  annotations: {argocd.argoproj.io/tracking-id: \"shop:mesh.openservicemesh.io/MeshMember:%s/shop\"}\nspec:\n  mesh: reapply\n", ns, ns),
	}
	apply := func(u *unstructured.Unstructured) {
		t.Helper()
		if err := k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(u.DeepCopy()), client.FieldOwner("argocd-controller")); err != nil {
			t.Fatal(err)
		}
	}
	var objs []*unstructured.Unstructured
	for _, d := range docs {
		u := manifest(t, d)
		apply(u)
		objs = append(objs, u)
	}
	// Wait until the operator is done: Ready, and nothing changes for a while.
	settled := map[string]string{}
	for _, u := range objs {
		key := client.ObjectKeyFromObject(u)
		testenv.Eventually(t, 60*time.Second, func() error {
			live := &unstructured.Unstructured{}
			live.SetGroupVersionKind(u.GroupVersionKind())
			if err := k8s.Get(ctx, key, live); err != nil {
				return err
			}
			if res, err := status.Compute(live); err != nil || res.Status != status.CurrentStatus {
				return fmt.Errorf("%s %s not Current yet (%v)", u.GetKind(), key, err)
			}
			rv := live.GetResourceVersion()
			time.Sleep(time.Second)
			if err := k8s.Get(ctx, key, live); err != nil {
				return err
			}
			if live.GetResourceVersion() != rv {
				return fmt.Errorf("%s %s still changing", u.GetKind(), key)
			}
			settled[u.GetKind()] = rv
			return nil
		})
	}

	for _, u := range objs {
		apply(u) // server-side, the same manifest again
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(u.GroupVersionKind())
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(u), live); err != nil {
			t.Fatal(err)
		}
		if live.GetResourceVersion() != settled[u.GetKind()] {
			t.Errorf("re-applying %s %s changed it (resourceVersion %s → %s)", u.GetKind(), u.GetName(), settled[u.GetKind()], live.GetResourceVersion())
		}
		// kubectl apply (client-side): a three-way merge of the last applied
		// manifest, the manifest and the live object.
		original, _ := json.Marshal(u.Object)
		current, _ := json.Marshal(live.Object)
		patch, err := jsonmergepatch.CreateThreeWayJSONMergePatch(original, original, current)
		if err != nil {
			t.Fatal(err)
		}
		if string(patch) != "{}" {
			t.Errorf("kubectl apply of %s %s would patch %s", u.GetKind(), u.GetName(), patch)
		}
	}
}
