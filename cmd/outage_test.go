package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/xds/bootstrap"
	"github.com/open-service-mesh/osm-operator/xds/xdstest"
)

// With cert-manager stopped, identities already issued keep working (a
// proxy holding one is served), a new identity shows IdentitiesReady=False
// with the reason and the identity it waits for, and it is issued once
// cert-manager is back.
func TestCertManagerOutage(t *testing.T) {
	o := startOperatorWith(t, false)
	ctx, k, xdsAddr, cm := o.ctx, o.k, o.xdsAddr, o.cm
	ns := "outage"
	for _, o := range []client.Object{
		&meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "demo"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "demo", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "demo"}},
		testPod(ns, "buyer-1", "buyer"),
	} {
		if err := k.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	identities := func(status metav1.ConditionStatus, reason, message string) error {
		mm := &meshv1alpha1.MeshMember{}
		if err := k.Get(ctx, client.ObjectKey{Namespace: ns, Name: "demo"}, mm); err != nil {
			return err
		}
		c := meta.FindStatusCondition(mm.Status.Conditions, meshv1alpha1.ConditionIdentitiesReady)
		if c == nil || c.Status != status || c.Reason != reason || !strings.Contains(c.Message, message) {
			return fmt.Errorf("IdentitiesReady is %+v, want %s %s %q", c, status, reason, message)
		}
		return nil
	}
	testenv.Eventually(t, 90*time.Second, func() error {
		return identities(metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "1 identities issued")
	})

	// A proxy of the buyer's identity is served (once the xDS serving
	// certificate is issued too), and still is while cert-manager is down.
	identity := &corev1.Secret{}
	if err := k.Get(ctx, client.ObjectKey{Namespace: ns, Name: meshv1alpha1.IdentitySecretName("buyer")}, identity); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(identity.Data["tls.crt"], identity.Data["tls.key"])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(identity.Data["ca.crt"])
	served := func() error {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		conn, err := xdstest.Dial(xdsAddr, bootstrap.XDSServerName("demo", "osm-system"), &cert, roots)
		if err != nil {
			return err
		}
		defer conn.Close()
		s, err := xdstest.OpenStream(sctx, conn, "sidecar~"+ns+"~buyer-1")
		if err != nil {
			return err
		}
		if err := s.Subscribe(resourcev3.SecretType, nil); err != nil {
			return err
		}
		_, err = s.Recv()
		return err
	}
	testenv.Eventually(t, 60*time.Second, served)

	cm.Stop()
	if err := k.Create(ctx, testPod(ns, "late-1", "late")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		return identities(metav1.ConditionFalse, meshv1alpha1.ReasonCertificatePending, "waiting for 1 of 2 identities: [late: not issued yet]")
	})
	if err := served(); err != nil {
		t.Errorf("with cert-manager down, a proxy of an issued identity was not served: %v", err)
	}

	cm.Start(t)
	testenv.Eventually(t, 90*time.Second, func() error {
		return identities(metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "2 identities issued")
	})
	if err := k.Get(ctx, client.ObjectKey{Namespace: ns, Name: meshv1alpha1.IdentitySecretName("late")}, &corev1.Secret{}); err != nil {
		t.Errorf("the late identity's Secret: %v", err)
	}
}
