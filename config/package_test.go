package config_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/operator-framework/api/pkg/manifests"
	"github.com/operator-framework/api/pkg/validation"
	"github.com/operator-framework/api/pkg/validation/errors"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/open-service-mesh/osm-operator/internal/testenv"
)

// renderChart renders charts/osm-operator as `helm template` does, with the
// given values, into namespace osm-system: its CRDs and its templates.
func renderChart(t *testing.T, values map[string]any) []*unstructured.Unstructured {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	chart, err := loader.Load(filepath.Join(root, "charts", "osm-operator"))
	if err != nil {
		t.Fatal(err)
	}
	vals, err := chartutil.ToRenderValues(chart, values, chartutil.ReleaseOptions{Name: "osm-operator", Namespace: "osm-system", IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	files, err := engine.Render(chart, vals)
	if err != nil {
		t.Fatalf("the chart does not render: %v", err)
	}
	var docs []string
	for _, crd := range chart.CRDObjects() {
		docs = append(docs, string(crd.File.Data))
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range files {
			if !yield(n) {
				return
			}
		}
	})
	for _, n := range names {
		docs = append(docs, files[n])
	}
	var out []*unstructured.Unstructured
	for _, d := range docs {
		dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(d), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); err != nil {
				break
			}
			if len(u.Object) > 0 {
				out = append(out, u)
			}
		}
	}
	return out
}

// normalize makes objects from different renderers comparable: JSON
// numbers, keyed by kind, namespace and name.
func normalize(t *testing.T, objs []*unstructured.Unstructured) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, o := range objs {
		raw, err := json.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		out[o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName()] = v
	}
	return out
}

// TestHelmChart: the chart renders into the same objects as
// dist/install.yaml (config/default), the namespace aside (Helm's to
// create), and the API server accepts every one; values change what they
// say.
func TestHelmChart(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	installed, err := testenv.Kustomize(filepath.Join(root, "config", "default"))
	if err != nil {
		t.Fatal(err)
	}
	installed = slices.DeleteFunc(installed, func(u *unstructured.Unstructured) bool { return u.GetKind() == "Namespace" })
	chart := renderChart(t, map[string]any{"image": map[string]any{"repository": "controller", "tag": "latest"}})
	if diff := cmp.Diff(normalize(t, installed), normalize(t, chart)); diff != "" {
		t.Errorf("the chart and config/default disagree (-install +chart):\n%s", diff)
	}
	ctx := context.Background()
	ensureNamespace(t, "osm-system")
	for _, o := range chart {
		if err := env.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.DryRunAll, client.FieldOwner("helm-test"), client.ForceOwnership); err != nil {
			t.Errorf("%s %s from the chart is refused: %v", o.GetKind(), o.GetName(), err)
		}
	}

	custom := normalize(t, renderChart(t, map[string]any{"replicas": 3, "webhook": map[string]any{"failurePolicy": "Ignore"}}))
	d := custom["Deployment osm-system/osm-operator-controller-manager"].(map[string]any)
	if got := d["spec"].(map[string]any)["replicas"]; got != float64(3) {
		t.Errorf("replicas=3 renders %v", got)
	}
	image := d["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["image"]
	if image != "openservicemesh/osm-operator:v0.1.0" {
		t.Errorf("the default image is %v, want the chart's appVersion", image)
	}
	hook := custom["MutatingWebhookConfiguration /osm-operator-mutating-webhook-configuration"].(map[string]any)["webhooks"].([]any)[0].(map[string]any)
	if hook["failurePolicy"] != "Ignore" {
		t.Errorf("webhook.failurePolicy=Ignore renders %v", hook["failurePolicy"])
	}
}

// TestOLMBundle validates bundle/ with operator-framework/api's default
// bundle validators: no errors.
func TestOLMBundle(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := manifests.GetBundleFromDir(filepath.Join(root, "bundle", "manifests"))
	if err != nil {
		t.Fatal(err)
	}
	results := validation.DefaultBundleValidators.Validate(bundle.ObjectsToValidate()...)
	for _, r := range results {
		for _, e := range r.Errors {
			t.Errorf("%s: %v", r.Name, e)
		}
		for _, w := range r.Warnings {
			if w.Level == errors.LevelWarn {
				t.Logf("warning: %s: %v", r.Name, w)
			}
		}
	}
	csv := bundle.CSV
	if len(csv.Spec.CustomResourceDefinitions.Owned) != 12 || len(bundle.V1CRDs) != 12 {
		t.Errorf("%d owned CRDs described, %d in the bundle; want 12", len(csv.Spec.CustomResourceDefinitions.Owned), len(bundle.V1CRDs))
	}
	if len(csv.Spec.WebhookDefinitions) != 6 {
		t.Errorf("%d webhooks, want the injector and 5 validators", len(csv.Spec.WebhookDefinitions))
	}
	var examples []map[string]any
	if err := json.Unmarshal([]byte(csv.Annotations["alm-examples"]), &examples); err != nil || len(examples) != 11 {
		t.Errorf("alm-examples: %d examples, %v", len(examples), err)
	}
	if n := len(csv.Spec.InstallStrategy.StrategySpec.ClusterPermissions); n != 2 {
		t.Errorf("%d cluster permissions, want the manager's and the metrics auth's", n)
	}
}
