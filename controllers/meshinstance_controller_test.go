package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/internal/testenv/certmanager"
	"github.com/open-service-mesh/osm-operator/internal/testpki"
)

func condition(t *testing.T, obj client.Object, conds func() []metav1.Condition, typ string) *metav1.Condition {
	t.Helper()
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
	return meta.FindStatusCondition(conds(), typ)
}

// TestMissingIssuerIsReportedAndRecovers: a MeshInstance naming a
// ClusterIssuer that does not exist says so, and becomes Ready once an
// operator of the cluster creates it (here a CA issuer over a root the
// test made).
func TestMissingIssuerIsReportedAndRecovers(t *testing.T) {
	ctx := context.Background()
	mi := &meshv1alpha1.MeshInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "vaulted"},
		Spec: meshv1alpha1.MeshInstanceSpec{Certificates: meshv1alpha1.Certificates{
			IssuerRef: &meshv1alpha1.IssuerReference{Name: "corp-ca", Kind: "ClusterIssuer"},
		}},
	}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	conds := func() []metav1.Condition { return mi.Status.Conditions }
	testenv.Eventually(t, 30*time.Second, func() error {
		c := condition(t, mi, conds, meshv1alpha1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != meshv1alpha1.ReasonIssuerNotReady || !strings.Contains(c.Message, "ClusterIssuer corp-ca not found") {
			return fmt.Errorf("Ready = %+v", c)
		}
		return nil
	})
	if s := kstatusOf(t, mi, "MeshInstance"); s != status.InProgressStatus {
		t.Errorf("kstatus %s while waiting for the issuer, want InProgress", s)
	}

	// The issuer appears; a member's identity gets issued by it, and the
	// mesh takes its trust bundle from what the issuer hands out.
	root, err := testpki.NewCA("corp root")
	if err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "corp-ca", Namespace: certmanager.ClusterResourceNamespace},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": root.PEM, "tls.key": root.KeyPEM()},
	}
	issuer := &cmapi.ClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: "corp-ca"}, Spec: cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{CA: &cmapi.CAIssuer{SecretName: "corp-ca"}}}}
	ns := newNamespace(t, nil)
	for _, o := range []client.Object{secret, issuer, meshedPod("vaulted", ns, "app-1", "app"),
		&meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "vaulted"}}} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
			return err
		}
		if len(mi.Status.TrustBundle) != 1 || mi.Status.TrustBundle[0].Subject != "CN=corp root" {
			return fmt.Errorf("trust bundle %+v", mi.Status.TrustBundle)
		}
		return ready(mi.Status.Conditions)
	})
}

// TestANamespacedIssuerIsStalled: an Issuer cannot sign in workload
// namespaces; the operator says so once, as a terminal condition.
func TestANamespacedIssuerIsStalled(t *testing.T) {
	ctx := context.Background()
	mi := &meshv1alpha1.MeshInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "namespaced"},
		Spec: meshv1alpha1.MeshInstanceSpec{Certificates: meshv1alpha1.Certificates{
			IssuerRef: &meshv1alpha1.IssuerReference{Name: "local", Kind: "Issuer"},
		}},
	}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	conds := func() []metav1.Condition { return mi.Status.Conditions }
	testenv.Eventually(t, 30*time.Second, func() error {
		c := condition(t, mi, conds, meshv1alpha1.ConditionStalled)
		if c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "use a ClusterIssuer") {
			return fmt.Errorf("Stalled = %+v", c)
		}
		return nil
	})
	if s := kstatusOf(t, mi, "MeshInstance"); s != status.FailedStatus {
		t.Errorf("kstatus %s, want Failed", s)
	}
}

// TestMemberOfAMissingMeshWaits: a MeshMember naming no MeshInstance is not
// Ready, says why, and is not stalled (the mesh may be applied next).
func TestMemberOfAMissingMeshWaits(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, nil)
	mm := &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "nowhere"}}
	if err := k8s.Create(ctx, mm); err != nil {
		t.Fatal(err)
	}
	conds := func() []metav1.Condition { return mm.Status.Conditions }
	testenv.Eventually(t, 30*time.Second, func() error {
		c := condition(t, mm, conds, meshv1alpha1.ConditionReady)
		if c == nil || c.Reason != meshv1alpha1.ReasonMeshNotFound || !strings.Contains(c.Message, "MeshInstance nowhere not found") {
			return fmt.Errorf("Ready = %+v", c)
		}
		return nil
	})
	if s := kstatusOf(t, mm, "MeshMember"); s != status.InProgressStatus {
		t.Errorf("kstatus %s, want InProgress", s)
	}
}

// TestDeletingAMeshWaitsForItsMembers: a mesh with members says why its
// deletion waits; once they are gone it goes, and so does its root CA Secret.
func TestDeletingAMeshWaitsForItsMembers(t *testing.T) {
	ctx := context.Background()
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "shortlived"}}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, nil)
	mm := &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "shortlived"}}
	if err := k8s.Create(ctx, mm); err != nil {
		t.Fatal(err)
	}
	rootCA := client.ObjectKey{Namespace: certmanager.ClusterResourceNamespace, Name: "osm-shortlived-root-ca"}
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
			return err
		}
		if err := k8s.Get(ctx, rootCA, &corev1.Secret{}); err != nil {
			return err
		}
		return ready(mi.Status.Conditions)
	})
	if err := k8s.Delete(ctx, mi); err != nil {
		t.Fatal(err)
	}
	conds := func() []metav1.Condition { return mi.Status.Conditions }
	testenv.Eventually(t, 30*time.Second, func() error {
		c := condition(t, mi, conds, meshv1alpha1.ConditionReady)
		if c == nil || c.Reason != meshv1alpha1.ReasonDeleting || !strings.Contains(c.Message, "1 MeshMembers ("+ns+"/m)") {
			return fmt.Errorf("Ready = %+v", c)
		}
		return nil
	})
	if err := k8s.Delete(ctx, mm); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), &meshv1alpha1.MeshInstance{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("the MeshInstance is still there: %v", err)
		}
		if err := k8s.Get(ctx, rootCA, &corev1.Secret{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("the root CA Secret is still there: %v", err)
		}
		return nil
	})
}

// TestObjectsLeftOutAreReported: a TrafficTarget naming a route group that
// does not exist is reported in the mesh's PoliciesValid condition, until the
// route group is applied.
func TestObjectsLeftOutAreReported(t *testing.T) {
	ctx := context.Background()
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "policies"}}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, map[string]string{meshv1alpha1.MonitorLabel: "policies"})
	tt := &accessv1alpha3.TrafficTarget{
		ObjectMeta: metav1.ObjectMeta{Name: "buyer-to-store", Namespace: ns},
		Spec: accessv1alpha3.TrafficTargetSpec{
			Destination: accessv1alpha3.IdentityBindingSubject{Kind: "ServiceAccount", Name: "store"},
			Sources:     []accessv1alpha3.IdentityBindingSubject{{Kind: "ServiceAccount", Name: "buyer"}},
			Rules:       []accessv1alpha3.TrafficTargetRule{{Kind: "HTTPRouteGroup", Name: "store-routes"}},
		},
	}
	if err := k8s.Create(ctx, tt); err != nil {
		t.Fatal(err)
	}
	conds := func() []metav1.Condition { return mi.Status.Conditions }
	testenv.Eventually(t, 30*time.Second, func() error {
		c := condition(t, mi, conds, meshv1alpha1.ConditionPoliciesValid)
		want := fmt.Sprintf(`TrafficTarget %s/buyer-to-store: spec.rules[0]: HTTPRouteGroup %s/store-routes does not exist`, ns, ns)
		if c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, want) {
			return fmt.Errorf("PoliciesValid = %+v", c)
		}
		return nil
	})
	routes := &specsv1alpha4.HTTPRouteGroup{
		ObjectMeta: metav1.ObjectMeta{Name: "store-routes", Namespace: ns},
		Spec:       specsv1alpha4.HTTPRouteGroupSpec{Matches: []specsv1alpha4.HTTPMatch{{Name: "all", PathRegex: ".*"}}},
	}
	if err := k8s.Create(ctx, routes); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		c := condition(t, mi, conds, meshv1alpha1.ConditionPoliciesValid)
		if c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("PoliciesValid = %+v", c)
		}
		return nil
	})
}

// TestDeletingAMeshWaitsForLabelledNamespaces: a namespace labelled by hand
// keeps its identities while it keeps the label, and the mesh's deletion
// waits for it, saying so; once the label goes, the identities go and so
// does the mesh.
func TestDeletingAMeshWaitsForLabelledNamespaces(t *testing.T) {
	ctx := context.Background()
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "handleft"}}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, map[string]string{meshv1alpha1.MonitorLabel: "handleft"})
	if err := k8s.Create(ctx, meshedPod("handleft", ns, "web-1", "web")); err != nil {
		t.Fatal(err)
	}
	name := meshv1alpha1.IdentitySecretName("web")
	testenv.Eventually(t, 60*time.Second, func() error {
		cert := &cmapi.Certificate{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cert); err != nil {
			return err
		}
		return k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &corev1.Secret{})
	})
	if err := k8s.Delete(ctx, mi); err != nil {
		t.Fatal(err)
	}
	conds := func() []metav1.Condition { return mi.Status.Conditions }
	testenv.Eventually(t, 30*time.Second, func() error {
		c := condition(t, mi, conds, meshv1alpha1.ConditionReady)
		if c == nil || c.Reason != meshv1alpha1.ReasonDeleting || !strings.Contains(c.Message, "1 labelled namespaces") || !strings.Contains(c.Message, ns) {
			return fmt.Errorf("Ready = %+v", c)
		}
		return nil
	})
	// The label stands: the workloads keep their identities, however long
	// the mesh waits.
	time.Sleep(3 * time.Second)
	for _, o := range []client.Object{&cmapi.Certificate{}, &corev1.Secret{}} {
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, o); err != nil {
			t.Fatalf("%T %s of a namespace still labelled for the mesh: %v", o, name, err)
		}
	}
	n := &corev1.Namespace{}
	if err := k8s.Get(ctx, client.ObjectKey{Name: ns}, n); err != nil {
		t.Fatal(err)
	}
	delete(n.Labels, meshv1alpha1.MonitorLabel)
	if err := k8s.Update(ctx, n); err != nil {
		t.Fatal(err)
	}
	identityGone(t, ns, name)
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), &meshv1alpha1.MeshInstance{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("the MeshInstance is still there: %v", err)
		}
		return nil
	})
}
