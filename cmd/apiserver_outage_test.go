package main

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
)

// Cut off from the API server, the operator keeps serving xDS from what its
// cache holds: a proxy that reconnects gets its config. Once the API server
// is reachable again, reconciliation resumes: a pod created meanwhile gets
// its identity and the member's status catches up.
func TestAPIServerOutage(t *testing.T) {
	o := startOperatorWith(t, true)
	ctx, k := o.ctx, o.k
	ns := "partition"
	joinMesh(t, ctx, k, ns)
	served := buyerProxy(t, ctx, k, o.xdsAddr, ns)
	testenv.Eventually(t, 30*time.Second, served)

	o.link.Cut()
	time.Sleep(2 * time.Second)
	if err := served(); err != nil {
		t.Errorf("cut off from the API server, the operator did not serve a reconnecting proxy: %v", err)
	}
	// Made while the operator cannot see it.
	if err := k.Create(ctx, testPod(ns, "late-1", "late")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	o.link.Restore()

	testenv.Eventually(t, 90*time.Second, func() error {
		mm := &meshv1alpha1.MeshMember{}
		if err := k.Get(ctx, client.ObjectKey{Namespace: ns, Name: "demo"}, mm); err != nil {
			return err
		}
		if mm.Status.IdentitiesReady != 2 {
			return fmt.Errorf("the member counts %d identities ready, want 2", mm.Status.IdentitiesReady)
		}
		return k.Get(ctx, client.ObjectKey{Namespace: ns, Name: meshv1alpha1.IdentitySecretName("late")}, &corev1.Secret{})
	})
	if err := served(); err != nil {
		t.Errorf("after the outage: %v", err)
	}
}
