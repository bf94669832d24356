package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
)

// TestNamespaceLabelledByHand: a namespace that joins the seed's way, by the
// monitor label alone, gets its pods' identities issued by cert-manager and
// counted by the mesh; removing the label takes them away.
func TestNamespaceLabelledByHand(t *testing.T) {
	ctx := context.Background()
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "handmade"}}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, map[string]string{meshv1alpha1.MonitorLabel: "handmade"})
	if err := k8s.Create(ctx, meshedPod("handmade", ns, "web-1", "web")); err != nil {
		t.Fatal(err)
	}
	name := meshv1alpha1.IdentitySecretName("web")
	testenv.Eventually(t, 60*time.Second, func() error {
		cert := &cmapi.Certificate{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cert); err != nil {
			return err
		}
		if refs := cert.OwnerReferences; len(refs) != 1 || refs[0].Kind != "Namespace" || refs[0].Name != ns {
			return fmt.Errorf("owners %+v, want the Namespace", refs)
		}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &corev1.Secret{}); err != nil {
			return fmt.Errorf("the identity Secret: %w", err)
		}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
			return err
		}
		if mi.Status.Identities != 1 || mi.Status.MemberNamespaces != 1 {
			return fmt.Errorf("the mesh counts %d identities in %d namespaces, want 1 in 1", mi.Status.Identities, mi.Status.MemberNamespaces)
		}
		return nil
	})

	n := &corev1.Namespace{}
	if err := k8s.Get(ctx, client.ObjectKey{Name: ns}, n); err != nil {
		t.Fatal(err)
	}
	delete(n.Labels, meshv1alpha1.MonitorLabel)
	if err := k8s.Update(ctx, n); err != nil {
		t.Fatal(err)
	}
	identityGone(t, ns, name)
}

// identityGone waits until the identity Certificate name and its Secret are
// deleted from ns.
func identityGone(t *testing.T, ns, name string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, o := range []client.Object{&cmapi.Certificate{}, &corev1.Secret{}} {
			if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, o); !apierrors.IsNotFound(err) {
				return fmt.Errorf("%T %s is still there (%v)", o, name, err)
			}
		}
		return nil
	})
}
