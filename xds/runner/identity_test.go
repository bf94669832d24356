package runner_test

import (
	"cmp"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/controllers"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// The identity Secret of a service account too long for a readable Secret
// name has a hashed name; its renewal still reaches the proxies of its
// group. Before, the runner read the service account back out of the
// Secret's name, and a hashed name was no identity's.
//
// The annotation naming the service account is anyone's to write who may
// write the Secret: one naming another service account, or none, neither
// hides the renewal nor gives the Secret to another group (a group's
// Secret is the one its service account's name gives).
func TestARenewedCertificateOfALongServiceAccountIsPublished(t *testing.T) {
	sa := strings.Repeat("long-name.", 24) + "abcde"
	t.Run("annotated", func(t *testing.T) { renewLong(t, sa, sa, nil) })
	t.Run("forged annotation", func(t *testing.T) { renewLong(t, sa, "web", nil) })
	t.Run("no annotation", func(t *testing.T) { renewLong(t, sa, "", nil) })
	// The trust-bundle label counts only on the operator's namespace's
	// Secrets: on an identity Secret it hid the renewal.
	t.Run("labelled as a trust bundle", func(t *testing.T) {
		renewLong(t, "web", "web", map[string]string{meshv1alpha1.TrustBundleSecretLabel: "elsewhere"})
	})
}

// renewLong renews the certificate of service account sa, whose identity
// Secret is annotated as of annotated (not at all when empty) and has the
// extra labels.
func renewLong(t *testing.T, sa, annotated string, extra map[string]string) {
	ctx := testContext(t)
	ns := memberNamespace(t)
	id := mesh.Identity{Namespace: ns, ServiceAccount: sa}
	kp, err := ca.Workload(id.SPIFFE("cluster.local"))
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "long-1", Namespace: ns},
		Spec:       corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{Name: "app", Image: "app"}}},
	}
	injected(t, pod)
	annotations := map[string]string{meshv1alpha1.ServiceAccountAnnotation: annotated}
	if annotated == "" {
		annotations = nil
	}
	mustCreate(t,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: ns}},
		// Labelled and annotated as cert-manager does, from the Certificate's template.
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name: meshv1alpha1.IdentitySecretName(sa), Namespace: ns, Labels: withLabels(controllers.MeshObjectLabels(meshName), extra),
				Annotations: annotations,
			},
			Data: map[string][]byte{"tls.crt": kp.CertPEM, "tls.key": kp.KeyPEM, "ca.crt": ca.PEM},
		},
		pod,
	)
	key := mesh.Group{Kind: mesh.ProxyEnvoy, Identity: mesh.Identity{Namespace: ns, ServiceAccount: sa}}.String()
	published := func() string { return snapshots.Versions()[key][types.Secret] }
	testenv.Eventually(t, 20*time.Second, func() error {
		if published() == "" {
			return fmt.Errorf("the group of %s has no secrets yet", sa)
		}
		return nil
	})
	first := published()

	renewed, err := ca.Workload(id.SPIFFE("cluster.local"))
	if err != nil {
		t.Fatal(err)
	}
	sec := &corev1.Secret{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: meshv1alpha1.IdentitySecretName(sa)}, sec); err != nil {
		t.Fatal(err)
	}
	sec.Data["tls.crt"], sec.Data["tls.key"] = renewed.CertPEM, renewed.KeyPEM
	if err := k8s.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if published() == first {
			return fmt.Errorf("the renewed certificate of %s is not published: secrets still at %s", sa, first)
		}
		return nil
	})
}

func withLabels(labels, extra map[string]string) map[string]string {
	maps.Copy(labels, extra)
	return labels
}

// A Secret that is named as a hashed identity Secret but is no group's
// (no service account has that name's hash, whatever it is annotated
// with) touches no group: before, the runner could not tell whose it was
// and synced every group of every mesh, so anyone who may write Secrets
// in any namespace could have the control plane retranslate the cluster
// at will. A group's identity Secret is still read only by the name its
// service account gives, so no such Secret gives a proxy any key.
func TestASecretOfNoIdentityTouchesNoGroup(t *testing.T) {
	for _, annotation := range []string{"", "buyer"} {
		t.Run("annotated "+cmp.Or(annotation, "with nothing"), func(t *testing.T) {
			testASecretOfNoIdentityTouchesNoGroup(t, annotation)
		})
	}
}

func testASecretOfNoIdentityTouchesNoGroup(t *testing.T, annotation string) {
	ctx := testContext(t)
	ns := memberNamespace(t)
	for _, sa := range []string{"buyer", "store"} {
		workload(t, ns, sa+"-1", sa, nil)
	}
	identitySecrets := func(key client.ObjectKey) bool {
		return key.Namespace == ns && meshv1alpha1.IsIdentitySecretName(key.Name)
	}
	reads, snaps := countingRunner(t, ctx, identitySecrets)
	buyer := mesh.Group{Kind: mesh.ProxyEnvoy, Identity: mesh.Identity{Namespace: ns, ServiceAccount: "buyer"}}.String()
	published := func() string { return snaps.Versions()[buyer][types.Secret] }
	testenv.Eventually(t, 20*time.Second, func() error {
		if published() == "" {
			return fmt.Errorf("the buyer's group has no secrets yet")
		}
		return nil
	})
	time.Sleep(time.Second) // the syncs of the runner's start are done
	first, before := published(), reads.total()

	forged := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: meshv1alpha1.IdentitySecretHashedPrefix + "nobody-0123456789abcdef0123456789abcdef", Namespace: ns,
			Labels: controllers.MeshObjectLabels(meshName),
		},
		Data: map[string][]byte{"tls.crt": []byte("forged"), "tls.key": []byte("forged")},
	}
	if annotation != "" {
		forged.Annotations = map[string]string{meshv1alpha1.ServiceAccountAnnotation: annotation}
	}
	mustCreate(t, forged)
	// Then the buyer's certificate is renewed: its group, and only it, is
	// published again, once both changes are synced (the runner hears a
	// type's changes in order).
	renewed, err := ca.Workload(mesh.Identity{Namespace: ns, ServiceAccount: "buyer"}.SPIFFE("cluster.local"))
	if err != nil {
		t.Fatal(err)
	}
	sec := &corev1.Secret{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: meshv1alpha1.IdentitySecretName("buyer")}, sec); err != nil {
		t.Fatal(err)
	}
	sec.Data["tls.crt"], sec.Data["tls.key"] = renewed.CertPEM, renewed.KeyPEM
	if err := k8s.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if published() == first {
			return fmt.Errorf("the buyer's renewed certificate is not published")
		}
		return nil
	})
	time.Sleep(time.Second)
	if n := reads.total() - before; n != 1 {
		t.Errorf("the runner read identity Secrets of the namespace %d times, want once: the buyer's, for its renewal", n)
	}
}
