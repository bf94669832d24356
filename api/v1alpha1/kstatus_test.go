package v1alpha1_test

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// TestKstatusReadsConditions checks that kstatus, which Flux and cli-utils use
// for health, reads our CRs as we mean them: conditions written through the
// real status subresource and read back as unstructured objects.
func TestKstatusReadsConditions(t *testing.T) {
	ns := newNamespace(t)
	cases := []struct {
		name string
		// staleGeneration makes status.observedGeneration lag the spec.
		staleGeneration bool
		conditions      []metav1.Condition
		want            status.Status
	}{
		{"ready at the current generation", false, []metav1.Condition{
			cond(meshv1alpha1.ConditionReady, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded),
		}, status.CurrentStatus},
		{"ready at a stale generation", true, []metav1.Condition{
			cond(meshv1alpha1.ConditionReady, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded),
		}, status.InProgressStatus},
		{"reconciling", false, []metav1.Condition{
			cond(meshv1alpha1.ConditionReady, metav1.ConditionUnknown, meshv1alpha1.ReasonProgressing),
			cond(meshv1alpha1.ConditionReconciling, metav1.ConditionTrue, meshv1alpha1.ReasonProgressing),
		}, status.InProgressStatus},
		{"stalled", false, []metav1.Condition{
			cond(meshv1alpha1.ConditionReady, metav1.ConditionFalse, meshv1alpha1.ReasonMeshNotFound),
			cond(meshv1alpha1.ConditionStalled, metav1.ConditionTrue, meshv1alpha1.ReasonMeshNotFound),
		}, status.FailedStatus},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			m := meshMember(ns, func(m *meshv1alpha1.MeshMember) { m.Name = "kstatus-" + string(rune('a'+i)) })
			create(t, m)
			observed := m.Generation
			if tc.staleGeneration {
				m.Spec.Injection = meshv1alpha1.InjectionDisabled
				if err := env.Client.Update(ctx, m); err != nil {
					t.Fatal(err)
				}
				if m.Generation == observed {
					t.Fatalf("a spec change left generation at %d", m.Generation)
				}
			}
			m.Status.ObservedGeneration = observed
			m.Status.Conditions = tc.conditions
			if err := env.Client.Status().Update(ctx, m); err != nil {
				t.Fatalf("writing status: %v", err)
			}

			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(meshv1alpha1.GroupVersion.WithKind("MeshMember"))
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(m), u); err != nil {
				t.Fatal(err)
			}
			res, err := status.Compute(u)
			if err != nil {
				t.Fatalf("kstatus: %v", err)
			}
			if res.Status != tc.want {
				t.Errorf("kstatus = %s (%s), want %s", res.Status, res.Message, tc.want)
			}
		})
	}
}

func cond(typ string, s metav1.ConditionStatus, reason string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: s, Reason: reason, Message: reason, LastTransitionTime: metav1.Now()}
}
