package v1alpha1_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
)

// readSample reads testdata/name, an OSM user's manifest with every field set.
func readSample(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// plain is v as JSON would carry it: numbers as float64, no Go types.
func plain(t *testing.T, v any) any {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOSMManifestsApplyUnchanged sends an OSM user's IngressBackend, Egress,
// UpstreamTrafficSetting and Retry, every field set, to the API server, and
// checks that the server keeps every field as written, that the Go types
// decode it strictly (no field unknown to them) and encode it back
// unchanged, and that the status the operator writes is kept and read by
// kstatus as Flux reads it.
func TestOSMManifestsApplyUnchanged(t *testing.T) {
	for _, tc := range []struct {
		file  string
		typed client.Object
		// setStatus writes every status field of typed, at generation g.
		setStatus func(o client.Object, g int64)
	}{
		{"ingressbackend.yaml", &policyv1alpha1.IngressBackend{}, func(o client.Object, g int64) {
			o.(*policyv1alpha1.IngressBackend).Status = policyv1alpha1.IngressBackendStatus{
				CurrentStatus:      policyv1alpha1.IngressBackendCommitted,
				Reason:             "successfully committed by the system",
				ObservedGeneration: g,
				Conditions:         []metav1.Condition{ready(g)},
			}
		}},
		{"egress.yaml", &policyv1alpha1.Egress{}, func(o client.Object, g int64) {
			o.(*policyv1alpha1.Egress).Status = policyv1alpha1.EgressStatus{
				ObservedGeneration: g,
				Conditions:         []metav1.Condition{ready(g)},
			}
		}},
		{"upstreamtrafficsetting.yaml", &policyv1alpha1.UpstreamTrafficSetting{}, func(o client.Object, g int64) {
			o.(*policyv1alpha1.UpstreamTrafficSetting).Status = policyv1alpha1.UpstreamTrafficSettingStatus{
				CurrentStatus:      "committed",
				Reason:             "successfully committed by the system",
				ObservedGeneration: g,
				Conditions:         []metav1.Condition{ready(g)},
			}
		}},
		{"retry.yaml", &policyv1alpha1.Retry{}, func(o client.Object, g int64) {
			o.(*policyv1alpha1.Retry).Status = policyv1alpha1.RetryStatus{
				ObservedGeneration: g,
				Conditions:         []metav1.Condition{ready(g)},
			}
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			ctx := context.Background()
			raw := readSample(t, tc.file)
			sent := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(raw, &sent.Object); err != nil {
				t.Fatal(err)
			}
			sent.SetNamespace(newNamespace(t))
			wantSpec := plain(t, sent.Object["spec"])
			create(t, sent.DeepCopy())

			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(sent.GroupVersionKind())
			if err := c.Get(ctx, client.ObjectKeyFromObject(sent), got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantSpec, plain(t, got.Object["spec"])); diff != "" {
				t.Errorf("the API server changed the spec (-sent +stored):\n%s", diff)
			}

			if err := yaml.UnmarshalStrict(raw, tc.typed); err != nil {
				t.Fatalf("the Go types do not hold the manifest: %v", err)
			}
			if err := c.Get(ctx, client.ObjectKeyFromObject(sent), tc.typed); err != nil {
				t.Fatal(err)
			}
			encoded, err := runtime.DefaultUnstructuredConverter.ToUnstructured(tc.typed)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantSpec, plain(t, encoded["spec"])); diff != "" {
				t.Errorf("the Go types lost or added fields (-manifest +Go):\n%s", diff)
			}

			tc.setStatus(tc.typed, tc.typed.GetGeneration())
			wantStatus := plain(t, mustUnstructured(t, tc.typed)["status"])
			if err := c.Status().Update(ctx, tc.typed); err != nil {
				t.Fatalf("writing status: %v", err)
			}
			if err := c.Get(ctx, client.ObjectKeyFromObject(sent), got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantStatus, plain(t, got.Object["status"])); diff != "" {
				t.Errorf("the API server changed the status (-written +stored):\n%s", diff)
			}
			res, err := status.Compute(got)
			if err != nil {
				t.Fatalf("kstatus: %v", err)
			}
			if res.Status != status.CurrentStatus {
				t.Errorf("kstatus = %s (%s), want Current", res.Status, res.Message)
			}
		})
	}
}

func ready(g int64) metav1.Condition {
	return metav1.Condition{
		Type: "Ready", Status: metav1.ConditionTrue, Reason: "Succeeded", Message: "in the proxies' config",
		ObservedGeneration: g, LastTransitionTime: metav1.Now().Rfc3339Copy(),
	}
}

func mustUnstructured(t *testing.T, o client.Object) map[string]any {
	t.Helper()
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
