package main

import (
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

// With cert-manager stopped, identities already issued keep working (a
// proxy holding one is served), a new identity shows IdentitiesReady=False
// with the reason and the identity it waits for, and it is issued once
// cert-manager is back.
func TestCertManagerOutage(t *testing.T) {
	o := startOperatorWith(t, false)
	ctx, k, xdsAddr, cm := o.ctx, o.k, o.xdsAddr, o.cm
	ns := "outage"
	joinMesh(t, ctx, k, ns)
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
	served := buyerProxy(t, ctx, k, xdsAddr, ns)
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
