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
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/controllers"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
)

// A MeshVM's bootstrap Secret is "<name>-bootstrap", and a service
// account's identity Secret "osm-identity-<service account>": a MeshVM
// named osm-identity-x would write its bootstrap Secret over the identity
// Secret of service account x-bootstrap, its own identity's key and
// certificate in place of that identity's, and take the Secret as its own
// (deleting the VM deleted it). A VM whose bootstrap Secret would have an
// identity Secret's name is Stalled and writes none; the identity Secret
// stays cert-manager's.
func TestAVMNameCannotTakeAnIdentitySecret(t *testing.T) {
	ctx := context.Background()
	mi := readyMesh(t, "secretnames")
	ns := newNamespace(t, map[string]string{meshv1alpha1.MonitorLabel: mi.Name})
	if err := k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "x-bootstrap"}}); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, meshedPod(mi.Name, ns, "x-1", "x-bootstrap")); err != nil {
		t.Fatal(err)
	}
	identityIssued(t, ns, "x-bootstrap")
	identity := meshv1alpha1.IdentitySecretName("x-bootstrap")

	vm := vmBacking(ns, "osm-identity-x", "warehouse")
	vm.Spec.Mesh = mi.Name
	for _, o := range []client.Object{httpService(ns, "warehouse"), vm} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(vm), vm); err != nil {
			return err
		}
		c := meta.FindStatusCondition(vm.Status.Conditions, meshv1alpha1.ConditionBootstrapReady)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != meshv1alpha1.ReasonInvalidSpec || !strings.Contains(c.Message, identity) {
			return fmt.Errorf("BootstrapReady = %+v (bootstrap Secret %q); want False, %s, naming %s", c, vm.Status.BootstrapSecretName, meshv1alpha1.ReasonInvalidSpec, identity)
		}
		if s := meta.FindStatusCondition(vm.Status.Conditions, meshv1alpha1.ConditionStalled); s == nil || s.Status != metav1.ConditionTrue {
			return fmt.Errorf("Stalled = %+v, want True", s)
		}
		return nil
	})
	s := &corev1.Secret{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: identity}, s); err != nil {
		t.Fatal(err)
	}
	if owner := metav1.GetControllerOf(s); owner != nil {
		t.Errorf("the identity Secret %s is controlled by %s %s", identity, owner.Kind, owner.Name)
	}
	if _, ok := s.Data[controllers.BootstrapKey]; ok {
		t.Errorf("the identity Secret %s holds a VM bootstrap", identity)
	}
	block, _ := pem.Decode(s.Data[corev1.TLSCertKey])
	if block == nil {
		t.Fatalf("the identity Secret %s holds no certificate", identity)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if want := "spiffe://cluster.local/ns/" + ns + "/sa/x-bootstrap"; len(cert.URIs) != 1 || cert.URIs[0].String() != want {
		t.Errorf("the identity Secret %s holds the certificate of %v, want %s", identity, cert.URIs, want)
	}
}
