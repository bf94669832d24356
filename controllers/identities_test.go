package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/webhooks/inject"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// meshedPod is pod, given its sidecar by the injector as the webhook would
// for mesh.
func meshedPod(mesh, ns, name, sa string) *corev1.Pod {
	p := pod(ns, name, sa)
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: mesh}}
	if err := inject.Pod(p, inject.ConfigFor(mi, operatorNamespace, inject.Images{})); err != nil {
		panic(err)
	}
	return p
}

// longAccount is a valid service account name of 245 characters: with the
// identity prefix it is too long for an object name.
var longAccount = strings.Repeat("long-name.", 24) + "abcde"

// refuseIdentity makes the API server refuse, as a policy engine of the
// cluster could, the identity Certificate of service account sa in ns. It
// returns what lifts the refusal.
func refuseIdentity(t *testing.T, ns, sa string) func() {
	t.Helper()
	ctx := context.Background()
	name := "refuse-" + ns
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: new(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{"cert-manager.io"}, APIVersions: []string{"v1"}, Resources: []string{"certificates"}},
				},
			}}},
			Validations: []admissionregistrationv1.Validation{{
				Expression: fmt.Sprintf("!has(object.spec.uris) || !object.spec.uris.exists(u, u.endsWith('/sa/%s'))", sa),
				Message:    "refused by the cluster's policy",
			}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{corev1.LabelMetadataName: ns},
			}},
		},
	}
	for _, o := range []client.Object{policy, binding} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	// The policy is in force once a Certificate for sa is refused.
	probe := &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: ns},
		Spec: cmapi.CertificateSpec{
			SecretName: "probe", URIs: []string{"spiffe://probe/sa/" + sa},
			IssuerRef: cmmeta.IssuerReference{Name: "none", Kind: cmapi.ClusterIssuerKind, Group: "cert-manager.io"},
		},
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := k8s.Create(ctx, probe.DeepCopy(), client.DryRunAll); err == nil {
			return fmt.Errorf("the policy refusing %s is not in force yet", sa)
		}
		return nil
	})
	return func() {
		for _, o := range []client.Object{binding, policy} {
			if err := k8s.Delete(ctx, o); err != nil {
				t.Error(err)
			}
		}
	}
}

// identityIssued waits until the identity Certificate of ns/sa is issued,
// with the SPIFFE ID of sa.
func identityIssued(t *testing.T, ns, sa string) {
	t.Helper()
	name := meshv1alpha1.IdentitySecretName(sa)
	testenv.Eventually(t, 60*time.Second, func() error {
		cert := &cmapi.Certificate{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, cert); err != nil {
			return fmt.Errorf("the identity Certificate of %s: %w", sa, err)
		}
		if want := fmt.Sprintf("spiffe://cluster.local/ns/%s/sa/%s", ns, sa); len(cert.Spec.URIs) != 1 || cert.Spec.URIs[0] != want {
			return fmt.Errorf("the Certificate of %s has URIs %v, want %s", sa, cert.Spec.URIs, want)
		}
		s := &corev1.Secret{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: cert.Spec.SecretName}, s); err != nil || len(s.Data[corev1.TLSCertKey]) == 0 {
			return fmt.Errorf("the identity Secret of %s is not issued (%v)", sa, err)
		}
		return nil
	})
}

// eventAbout waits for an Event of reason about obj (of kind) whose note
// names what.
func eventAbout(t *testing.T, kind, name, reason, what string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		var evs eventsv1.EventList
		if err := k8s.List(context.Background(), &evs); err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Regarding.Kind == kind && e.Regarding.Name == name && e.Reason == reason && strings.Contains(e.Note, what) {
				return nil
			}
		}
		return fmt.Errorf("no %s Event about %s %s naming %s", reason, kind, name, what)
	})
}

// One identity that cannot be issued stops no other: each service account
// of a member namespace gets its Certificate on its own, a service account
// of 245 characters among them, and the one the API server refuses is
// named on the MeshMember, whose Ready is False until it is issued. Before,
// the first failure (the 245-character name, too long for a Certificate)
// ended the reconcile and the service accounts after it got none.
func TestEachIdentityIsIssuedOnItsOwn(t *testing.T) {
	ctx := context.Background()
	readyMesh(t, "apart")
	ns := newNamespace(t, nil)
	lift := refuseIdentity(t, ns, "blocked")
	for _, p := range []*corev1.Pod{
		meshedPod("apart", ns, "blocked-1", "blocked"),
		meshedPod("apart", ns, "long-1", longAccount),
		meshedPod("apart", ns, "web-1", "web"),
	} {
		if err := k8s.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	mm := &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "apart"}}
	if err := k8s.Create(ctx, mm); err != nil {
		t.Fatal(err)
	}
	identityIssued(t, ns, "web")
	identityIssued(t, ns, longAccount)
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mm), mm); err != nil {
			return err
		}
		ids := meta.FindStatusCondition(mm.Status.Conditions, meshv1alpha1.ConditionIdentitiesReady)
		if ids == nil || ids.Status != metav1.ConditionFalse || ids.Reason != meshv1alpha1.ReasonIdentityFailed || !strings.Contains(ids.Message, "blocked") {
			return fmt.Errorf("IdentitiesReady %+v, want False, %s, naming blocked", ids, meshv1alpha1.ReasonIdentityFailed)
		}
		if strings.Contains(ids.Message, "web") {
			return fmt.Errorf("IdentitiesReady names web, which is issued: %s", ids.Message)
		}
		if err := ready(mm.Status.Conditions); err == nil {
			return fmt.Errorf("the MeshMember is Ready while the identity of blocked fails")
		}
		if mm.Status.Identities != 3 || mm.Status.IdentitiesReady != 2 || mm.Status.IdentitiesFailed != 1 ||
			len(mm.Status.IdentitiesFailedNames) != 1 || mm.Status.IdentitiesFailedNames[0] != "blocked" {
			return fmt.Errorf("identities %d, ready %d, failed %d %v; want 3, 2, 1 [blocked]",
				mm.Status.Identities, mm.Status.IdentitiesReady, mm.Status.IdentitiesFailed, mm.Status.IdentitiesFailedNames)
		}
		return nil
	})
	eventAbout(t, "MeshMember", mm.Name, meshv1alpha1.ReasonIdentityFailed, "blocked")

	lift()
	identityIssued(t, ns, "blocked")
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mm), mm); err != nil {
			return err
		}
		if mm.Status.IdentitiesFailed != 0 || len(mm.Status.IdentitiesFailedNames) != 0 {
			return fmt.Errorf("identities failed %d %v after the refusal was lifted", mm.Status.IdentitiesFailed, mm.Status.IdentitiesFailedNames)
		}
		return ready(mm.Status.Conditions)
	})
}

// A namespace labelled by hand has no MeshMember to show a failing
// identity: the Namespace gets the Event, and the other identities are
// issued. The refused identity is of the longest service account, whose
// Event would pass the API server's 1 kB limit on an Event's note.
func TestAHandLabelledNamespaceShowsAFailingIdentity(t *testing.T) {
	ctx := context.Background()
	readyMesh(t, "apart-by-hand")
	ns := newNamespace(t, nil)
	longest := strings.Repeat("x", 252) + "z"
	lift := refuseIdentity(t, ns, longest)
	defer lift()
	for _, p := range []*corev1.Pod{
		meshedPod("apart-by-hand", ns, "longest-1", longest),
		meshedPod("apart-by-hand", ns, "long-1", longAccount),
		meshedPod("apart-by-hand", ns, "web-1", "web"),
	} {
		if err := k8s.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	n := &corev1.Namespace{}
	if err := k8s.Get(ctx, client.ObjectKey{Name: ns}, n); err != nil {
		t.Fatal(err)
	}
	n.Labels[meshv1alpha1.MonitorLabel] = "apart-by-hand"
	if err := k8s.Update(ctx, n); err != nil {
		t.Fatal(err)
	}
	identityIssued(t, ns, "web")
	identityIssued(t, ns, longAccount)
	eventAbout(t, "Namespace", ns, meshv1alpha1.ReasonIdentityFailed, longest)
}

// Only the service accounts of pods with a proxy, a sidecar or the
// bootstrap of proxyless gRPC, get an identity: a pod the injector left
// alone (it opted out, or ran before the namespace joined) needs none, and
// had one made for it before.
func TestOnlyMeshedPodsGetIdentities(t *testing.T) {
	ctx := context.Background()
	readyMesh(t, "meshed-only")
	ns := newNamespace(t, nil)
	grpc := pod(ns, "grpc-1", "grpc")
	grpc.Annotations = map[string]string{mesh.ProxyKindAnnotation: string(mesh.ProxyGRPC)}
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "meshed-only"}}
	if err := inject.Pod(grpc, inject.ConfigFor(mi, operatorNamespace, inject.Images{})); err != nil {
		t.Fatal(err)
	}
	optedOut := pod(ns, "out-1", "opted-out")
	optedOut.Annotations = map[string]string{meshv1alpha1.SidecarInjectionAnnotation: meshv1alpha1.SidecarInjectionDisabled}
	for _, p := range []*corev1.Pod{meshedPod("meshed-only", ns, "web-1", "web"), grpc, pod(ns, "plain-1", "plain"), optedOut} {
		if err := k8s.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	mm := &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "meshed-only"}}
	if err := k8s.Create(ctx, mm); err != nil {
		t.Fatal(err)
	}
	identityIssued(t, ns, "web")
	identityIssued(t, ns, "grpc")
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mm), mm); err != nil {
			return err
		}
		if mm.Status.Identities != 2 || mm.Status.IdentitiesReady != 2 || mm.Status.PodsInjected != 2 {
			return fmt.Errorf("identities %d, ready %d, pods injected %d; want 2, 2, 2", mm.Status.Identities, mm.Status.IdentitiesReady, mm.Status.PodsInjected)
		}
		return ready(mm.Status.Conditions)
	})
	var certs cmapi.CertificateList
	if err := k8s.List(ctx, &certs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, c := range certs.Items {
		if c.Name != meshv1alpha1.IdentitySecretName("web") && c.Name != meshv1alpha1.IdentitySecretName("grpc") {
			t.Errorf("Certificate %s was made for a pod without a proxy", c.Name)
		}
	}
}
