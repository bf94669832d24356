package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
)

// End to end, as main wires it: a group whose translation fails (its
// identity Secret now holds a key that is not its certificate's) is
// reported by the replica's runner through its Lease into the status of the
// namespace's MeshMember and of the MeshInstance; its proxy is still
// served; and both recover when the Secret is put right. cert-manager is
// stopped first, so that it does not repair the Secret itself.
func TestATranslationFailureReachesStatus(t *testing.T) {
	o := startOperatorWith(t, false)
	ctx, k := o.ctx, o.k
	ns := "failing"
	joinMesh(t, ctx, k, ns)
	served := buyerProxy(t, ctx, k, o.xdsAddr, ns)
	testenv.Eventually(t, 60*time.Second, served)
	// The Secret can exist before cert-manager marks its Certificate Ready:
	// stopped in between, the member would wait for it for ever.
	testenv.Eventually(t, 60*time.Second, identitiesIssued(ctx, k, ns, 1))
	o.cm.Stop()

	key := client.ObjectKey{Namespace: ns, Name: meshv1alpha1.IdentitySecretName("buyer")}
	setKey := func(pemKey []byte) {
		t.Helper()
		s := &corev1.Secret{}
		if err := k.Get(ctx, key, s); err != nil {
			t.Fatal(err)
		}
		s.Data["tls.key"] = pemKey
		if err := k.Update(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	s := &corev1.Secret{}
	if err := k.Get(ctx, key, s); err != nil {
		t.Fatal(err)
	}
	good := s.Data["tls.key"]
	foreign, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(foreign)
	if err != nil {
		t.Fatal(err)
	}
	setKey(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))

	proxyConfig := func(obj client.Object, conds func() []metav1.Condition, status metav1.ConditionStatus, contains string) func() error {
		return func() error {
			if err := k.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
				return err
			}
			c := meta.FindStatusCondition(conds(), meshv1alpha1.ConditionProxyConfigReady)
			if c == nil || c.Status != status || !strings.Contains(c.Message, contains) {
				return fmt.Errorf("%s: ProxyConfigReady is %+v, want %s mentioning %q", obj.GetName(), c, status, contains)
			}
			return nil
		}
	}
	mm := &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "demo"}}
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}
	member := func() []metav1.Condition { return mm.Status.Conditions }
	mesh := func() []metav1.Condition { return mi.Status.Conditions }
	failure := "envoy/" + ns + "/buyer: identity Secret " + key.String() + ": tls.crt and tls.key: tls: private key does not match public key"
	testenv.Eventually(t, 60*time.Second, proxyConfig(mm, member, metav1.ConditionFalse, failure))
	testenv.Eventually(t, 30*time.Second, proxyConfig(mi, mesh, metav1.ConditionFalse, "1 proxy groups"))
	if c := meta.FindStatusCondition(mm.Status.Conditions, meshv1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionFalse || c.Reason != meshv1alpha1.ReasonTranslationFailed {
		t.Errorf("the MeshMember's Ready is %+v, want False TranslationFailed", c)
	}
	if err := served(); err != nil {
		t.Errorf("the failing group's proxy is not served its last good config: %v", err)
	}

	setKey(good)
	testenv.Eventually(t, 60*time.Second, proxyConfig(mm, member, metav1.ConditionTrue, ""))
	testenv.Eventually(t, 30*time.Second, proxyConfig(mi, mesh, metav1.ConditionTrue, ""))
}
