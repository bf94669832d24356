package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
)

// Two MeshVMs of two meshes in one namespace in no mesh, running as one
// service account, would share its identity Certificate and its proxy
// group: the second would co-own the first's Certificate (issued by the
// other mesh) and be served the other mesh's config. The namespace is its
// first VM's mesh's (mesh.VMMesh): the later VM is Stalled with
// MeshConflict and writes no identity; the first keeps its mesh's
// Certificate. Once the first goes, the later one joins its own mesh.
func TestTheVMsOfANamespaceAreInOneMesh(t *testing.T) {
	ctx := context.Background()
	first, second := readyMesh(t, "conflict-a"), readyMesh(t, "conflict-b")
	ns := newNamespace(t, nil)
	a := vmBacking(ns, "vm-a", "warehouse")
	a.Spec.Mesh, a.Spec.Addresses = first.Name, []string{"192.0.2.51"}
	if err := k8s.Create(ctx, httpService(ns, "warehouse")); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	identityIssued(t, ns, "warehouse")
	// Creation timestamps have a resolution of a second.
	time.Sleep(1100 * time.Millisecond)
	b := vmBacking(ns, "vm-b", "warehouse")
	b.Spec.Mesh, b.Spec.Addresses = second.Name, []string{"192.0.2.52"}
	if err := k8s.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	conflict := func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(b), b); err != nil {
			return err
		}
		c := meta.FindStatusCondition(b.Status.Conditions, meshv1alpha1.ConditionStalled)
		if c == nil || c.Status != metav1.ConditionTrue || c.Reason != meshv1alpha1.ReasonMeshConflict || !strings.Contains(c.Message, `MeshVM vm-a of mesh "conflict-a"`) {
			return fmt.Errorf("Stalled = %+v, want True, %s, naming vm-a of conflict-a", c, meshv1alpha1.ReasonMeshConflict)
		}
		return nil
	}
	testenv.Eventually(t, 60*time.Second, conflict)
	cert := &cmapi.Certificate{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: meshv1alpha1.IdentitySecretName("warehouse")}, cert); err != nil {
		t.Fatal(err)
	}
	for _, o := range cert.OwnerReferences {
		if o.Name == b.Name {
			t.Errorf("the identity Certificate is co-owned by %s, a VM of another mesh", b.Name)
		}
	}
	if err := k8s.Delete(ctx, a); err != nil {
		t.Fatal(err)
	}
	// The namespace is now vm-b's mesh's: vm-b is no longer stalled, and
	// its identity Certificate is its mesh's issuer's. (Its issuance is
	// cert-manager's; envtest runs no garbage collector to remove the
	// CertificateRequest of vm-a's Certificate, which holds it back here.)
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(b), b); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(b.Status.Conditions, meshv1alpha1.ConditionStalled); c != nil {
			return fmt.Errorf("Stalled = %+v once vm-a is gone", c)
		}
		cert := &cmapi.Certificate{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: meshv1alpha1.IdentitySecretName("warehouse")}, cert); err != nil {
			return err
		}
		if want := "osm-" + second.Name + "-ca"; cert.Spec.IssuerRef.Name != want {
			return fmt.Errorf("the identity Certificate's issuer is %s, want %s", cert.Spec.IssuerRef.Name, want)
		}
		return nil
	})
}
