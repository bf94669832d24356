package controllers_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/internal/testpki"
)

// bundleConfigMap reads mesh's trust bundle ConfigMap of namespace ns.
func bundleConfigMap(ctx context.Context, ns, mesh string) (*corev1.ConfigMap, error) {
	cm := &corev1.ConfigMap{}
	err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: meshv1alpha1.TrustBundleConfigMapName(mesh)}, cm)
	return cm, err
}

// holdsTheMeshsBundle checks that namespace ns holds mesh's bundle as the
// xDS servers serve it (its trust bundle Secret), want when given, under
// the mesh's labels and controlled by the mesh.
func holdsTheMeshsBundle(ctx context.Context, ns, mesh, want string) error {
	s, err := trustBundleSecret(ctx, mesh)
	if err != nil {
		return err
	}
	served := string(s.Data[meshv1alpha1.TrustBundleKey])
	if want != "" && served != want {
		return fmt.Errorf("the mesh serves %q, not yet the bundle the test wants", served)
	}
	cm, err := bundleConfigMap(ctx, ns, mesh)
	if err != nil {
		return err
	}
	if got := cm.Data[meshv1alpha1.TrustBundleKey]; got == "" || got != served {
		return fmt.Errorf("namespace %s holds %q, the mesh serves %q", ns, got, served)
	}
	if cm.Labels[meshv1alpha1.TrustBundleSecretLabel] != mesh || cm.Labels["app.kubernetes.io/managed-by"] != "osm-operator" {
		return fmt.Errorf("labels %v", cm.Labels)
	}
	mi := &meshv1alpha1.MeshInstance{}
	if err := k8s.Get(ctx, client.ObjectKey{Name: mesh}, mi); err != nil {
		return err
	}
	if !metav1.IsControlledBy(cm, mi) {
		return fmt.Errorf("owner references %+v, want the mesh's", cm.OwnerReferences)
	}
	return nil
}

func labelNamespace(t *testing.T, ns string, change func(labels map[string]string)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n := &corev1.Namespace{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Name: ns}, n); err != nil {
			return err
		}
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		change(n.Labels)
		return k8s.Update(context.Background(), n)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func gone(ctx context.Context, ns, mesh string) error {
	if _, err := bundleConfigMap(ctx, ns, mesh); !apierrors.IsNotFound(err) {
		return fmt.Errorf("namespace %s still has mesh %s's trust bundle ConfigMap (%v)", ns, mesh, err)
	}
	return nil
}

// TestEveryNamespaceOfTheMeshHoldsItsBundle: a MeshMember's namespace and
// one labelled by hand get the mesh's bundle as a ConfigMap, exactly what
// the xDS servers serve, the roots of spec.certificates.trustBundle
// included once given; a namespace of another mesh gets that mesh's, and a
// namespace of no mesh nothing.
func TestEveryNamespaceOfTheMeshHoldsItsBundle(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"pub", "pubother"} {
		if err := k8s.Create(ctx, &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	member := newNamespace(t, nil)
	if err := k8s.Create(ctx, &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "pub", Namespace: member}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "pub"}}); err != nil {
		t.Fatal(err)
	}
	byHand := newNamespace(t, map[string]string{meshv1alpha1.MonitorLabel: "pub"})
	ofOther := newNamespace(t, map[string]string{meshv1alpha1.MonitorLabel: "pubother"})
	ofNone := newNamespace(t, nil)
	testenv.Eventually(t, 60*time.Second, func() error {
		for _, ns := range []string{member, byHand} {
			if err := holdsTheMeshsBundle(ctx, ns, "pub", ""); err != nil {
				return err
			}
		}
		return holdsTheMeshsBundle(ctx, ofOther, "pubother", "")
	})
	mine, err := bundleConfigMap(ctx, byHand, "pub")
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := bundleConfigMap(ctx, ofOther, "pubother")
	if err != nil {
		t.Fatal(err)
	}
	if mine.Data[meshv1alpha1.TrustBundleKey] == theirs.Data[meshv1alpha1.TrustBundleKey] {
		t.Error("two meshes' bootstrapped roots are the same")
	}
	for _, ns := range []string{ofOther, ofNone} {
		if err := gone(ctx, ns, "pub"); err != nil {
			t.Error(err)
		}
	}
	var list corev1.ConfigMapList
	if err := k8s.List(ctx, &list, client.InNamespace(ofOther)); err != nil {
		t.Fatal(err)
	}
	for _, cm := range list.Items {
		if strings.Contains(cm.Data[meshv1alpha1.TrustBundleKey], mine.Data[meshv1alpha1.TrustBundleKey]) {
			t.Errorf("ConfigMap %s of another mesh's namespace holds this mesh's roots", cm.Name)
		}
	}

	// The spec adds a root: every namespace holds both, in the spec's order.
	extra, err := testpki.NewCA("pub partner root")
	if err != nil {
		t.Fatal(err)
	}
	want := mine.Data[meshv1alpha1.TrustBundleKey] + string(extra.PEM)
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		mi := &meshv1alpha1.MeshInstance{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: "pub"}, mi); err != nil {
			return err
		}
		mi.Spec.Certificates.TrustBundle = &meshv1alpha1.TrustBundleSource{PEM: want}
		return k8s.Update(ctx, mi)
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, ns := range []string{member, byHand} {
			if err := holdsTheMeshsBundle(ctx, ns, "pub", want); err != nil {
				return err
			}
		}
		return nil
	})
	if cm, _ := bundleConfigMap(ctx, ofOther, "pubother"); strings.Contains(cm.Data[meshv1alpha1.TrustBundleKey], string(extra.PEM)) {
		t.Error("another mesh's namespace got this mesh's spec roots")
	}
}

// TestATamperedBundleIsPutBack: whoever may write ConfigMaps in a
// namespace of the mesh cannot make its pods trust another root for long:
// a rogue CA added, the ConfigMap deleted, its labels taken off, or the
// ConfigMap made immutable with a rogue CA, and the mesh's bundle is back.
func TestATamperedBundleIsPutBack(t *testing.T) {
	ctx := context.Background()
	if err := k8s.Create(ctx, &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "tamper"}}); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, map[string]string{meshv1alpha1.MonitorLabel: "tamper"})
	testenv.Eventually(t, 60*time.Second, func() error { return holdsTheMeshsBundle(ctx, ns, "tamper", "") })
	rogue, err := testpki.NewCA("rogue root")
	if err != nil {
		t.Fatal(err)
	}
	putBack := func(what string) {
		t.Helper()
		testenv.Eventually(t, 15*time.Second, func() error {
			if err := holdsTheMeshsBundle(ctx, ns, "tamper", ""); err != nil {
				return fmt.Errorf("after %s: %w", what, err)
			}
			return nil
		})
	}
	edit := func(change func(cm *corev1.ConfigMap)) {
		t.Helper()
		cm, err := bundleConfigMap(ctx, ns, "tamper")
		if err != nil {
			t.Fatal(err)
		}
		change(cm)
		if err := k8s.Update(ctx, cm); err != nil {
			t.Fatal(err)
		}
	}

	edit(func(cm *corev1.ConfigMap) { cm.Data[meshv1alpha1.TrustBundleKey] += string(rogue.PEM) })
	putBack("a rogue CA added")

	cm, err := bundleConfigMap(ctx, ns, "tamper")
	if err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx, cm); err != nil {
		t.Fatal(err)
	}
	putBack("a delete")

	// Out of the operator's cache, and then written over.
	edit(func(cm *corev1.ConfigMap) { cm.Labels, cm.OwnerReferences = nil, nil })
	putBack("its labels and owner taken off")

	edit(func(cm *corev1.ConfigMap) {
		cm.Data[meshv1alpha1.TrustBundleKey] = string(rogue.PEM)
		cm.Immutable = ptr.To(true)
	})
	putBack("made immutable with a rogue CA")
	if cm, err := bundleConfigMap(ctx, ns, "tamper"); err != nil || (cm.Immutable != nil && *cm.Immutable) {
		t.Errorf("the ConfigMap put back is immutable: %v", err)
	}

	// A ConfigMap of that name, immutable and unlabelled, waits in a
	// namespace that then joins the mesh.
	waiting := newNamespace(t, nil)
	trap := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: waiting, Name: meshv1alpha1.TrustBundleConfigMapName("tamper")},
		Data:       map[string]string{meshv1alpha1.TrustBundleKey: string(rogue.PEM)},
		Immutable:  ptr.To(true),
	}
	if err := k8s.Create(ctx, trap); err != nil {
		t.Fatal(err)
	}
	labelNamespace(t, waiting, func(l map[string]string) { l[meshv1alpha1.MonitorLabel] = "tamper" })
	testenv.Eventually(t, 30*time.Second, func() error { return holdsTheMeshsBundle(ctx, waiting, "tamper", "") })
}

// TestANamespaceThatLeavesLosesTheBundle: a namespace whose label is taken
// off, one whose MeshMember goes, and one moved to another mesh lose the
// mesh's ConfigMap; the one moved gets its new mesh's.
func TestANamespaceThatLeavesLosesTheBundle(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"leave", "leaveto"} {
		if err := k8s.Create(ctx, &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	byHand := newNamespace(t, map[string]string{meshv1alpha1.MonitorLabel: "leave"})
	moved := newNamespace(t, map[string]string{meshv1alpha1.MonitorLabel: "leave"})
	member := newNamespace(t, nil)
	mm := &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "leave", Namespace: member}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "leave"}}
	if err := k8s.Create(ctx, mm); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		for _, ns := range []string{byHand, moved, member} {
			if err := holdsTheMeshsBundle(ctx, ns, "leave", ""); err != nil {
				return err
			}
		}
		return nil
	})
	labelNamespace(t, byHand, func(l map[string]string) { delete(l, meshv1alpha1.MonitorLabel) })
	labelNamespace(t, moved, func(l map[string]string) { l[meshv1alpha1.MonitorLabel] = "leaveto" })
	if err := k8s.Delete(ctx, mm); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, ns := range []string{byHand, moved, member} {
			if err := gone(ctx, ns, "leave"); err != nil {
				return err
			}
		}
		return holdsTheMeshsBundle(ctx, moved, "leaveto", "")
	})
}

// TestAnIssuerWithNoCAStillGivesPodsABundle: an issuer that leaves ca.crt
// empty (ACME, some Venafi setups) issues identity Secrets with no root in
// them; the pods of the mesh get the roots of spec.certificates.trustBundle
// from the mesh's ConfigMap all the same, and those verify both their
// peers' certificates and the xDS server's.
func TestAnIssuerWithNoCAStillGivesPodsABundle(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	installExampleIssuerCRD(t, exampleKind, apiextensionsv1.ClusterScoped)
	if err := k8s.Create(ctx, exampleIssuer("acme-pods", metav1.ConditionTrue, "registered")); err != nil {
		t.Fatal(err)
	}
	root, err := testpki.NewCA("acme pods root")
	if err != nil {
		t.Fatal(err)
	}
	signExternally(ctx, t, "acme-pods", root, false)
	mi := &meshv1alpha1.MeshInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "nocapods"},
		Spec: meshv1alpha1.MeshInstanceSpec{Certificates: meshv1alpha1.Certificates{
			IssuerRef:   &meshv1alpha1.IssuerReference{Name: "acme-pods", Kind: exampleKind, Group: exampleGroup},
			TrustBundle: &meshv1alpha1.TrustBundleSource{PEM: string(root.PEM)},
		}},
	}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, nil)
	if err := k8s.Create(ctx, &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "nocapods"}}); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, meshedPod("nocapods", ns, "web-1", "web")); err != nil {
		t.Fatal(err)
	}
	identity := &corev1.Secret{}
	testenv.Eventually(t, 90*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: meshv1alpha1.IdentitySecretName("web")}, identity); err != nil {
			return err
		}
		if len(identity.Data[corev1.TLSCertKey]) == 0 {
			return fmt.Errorf("the identity is not issued yet")
		}
		return holdsTheMeshsBundle(ctx, ns, "nocapods", string(root.PEM))
	})
	if ca := identity.Data[meshv1alpha1.TrustBundleKey]; len(ca) != 0 {
		t.Fatalf("the issuer was to leave ca.crt empty; it holds %q", ca)
	}
	cm, err := bundleConfigMap(ctx, ns, "nocapods")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(cm.Data[meshv1alpha1.TrustBundleKey])) {
		t.Fatal("the ConfigMap's ca.crt holds no certificate")
	}
	var serving corev1.SecretList
	if err := k8s.List(ctx, &serving, client.InNamespace(operatorNamespace), client.MatchingLabels{meshv1alpha1.XDSServingSecretLabel: "nocapods"}); err != nil || len(serving.Items) != 1 {
		t.Fatalf("the xDS serving Secret: %d, %v", len(serving.Items), err)
	}
	for what, s := range map[string]*corev1.Secret{"a peer's identity": identity, "the xDS server's": &serving.Items[0]} {
		block, _ := pem.Decode(s.Data[corev1.TLSCertKey])
		if block == nil {
			t.Fatalf("%s certificate is not PEM", what)
		}
		leaf, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("%s certificate: %v", what, err)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("the pods' bundle does not verify %s certificate: %v", what, err)
		}
	}
}
