package runner_test

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
)

// The leader writes the status of every IngressBackend and Egress as it
// judges them; a status write is in no proxy's config and syncs nothing,
// while a change of the spec syncs the mesh. Before, every status write
// retranslated every group of every mesh.
func TestAPolicyStatusWriteSyncsNothing(t *testing.T) {
	ctx := testContext(t)
	ns := memberNamespace(t)
	reads, _ := countingRunner(t, ctx, func(client.ObjectKey) bool { return false })
	ib := &policyv1alpha1.IngressBackend{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: policyv1alpha1.IngressBackendSpec{
			Backends: []policyv1alpha1.IngressBackendTarget{{Name: "web", Port: policyv1alpha1.BackendPort{Number: 8080, Protocol: policyv1alpha1.BackendProtocolHTTP}}},
			Sources:  []policyv1alpha1.IngressSource{{Kind: policyv1alpha1.IngressSourceIPRange, Name: "10.0.0.0/8"}},
		},
	}
	mustCreate(t, ib)
	time.Sleep(time.Second) // the syncs of the runner's start and of the create are done
	before := reads.syncCount()
	for i := range 5 {
		ib.Status.CurrentStatus, ib.Status.Reason = policyv1alpha1.IngressBackendError, fmt.Sprintf("judged %d", i)
		if err := k8s.Status().Update(ctx, ib); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	if n := reads.syncCount() - before; n != 0 {
		t.Errorf("5 status writes began %d syncs, want none", n)
	}
	ib.Spec.Sources[0].Name = "10.1.0.0/16"
	if err := k8s.Update(ctx, ib); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if reads.syncCount() == before {
			return fmt.Errorf("a change of the spec began no sync")
		}
		return nil
	})
}
