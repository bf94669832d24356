package main

import (
	"fmt"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
)

// Two replicas with leader election: only the leader writes. When the
// leader stops, it releases its Lease and the other takes over at once, far
// within the lease time, and goes on where it left off: a new identity is
// issued, and no Certificate exists twice.
func TestLeaderHandover(t *testing.T) {
	c := startCluster(t)
	ctx, k := c.ctx, c.k
	holder := func() string {
		l := &coordinationv1.Lease{}
		if err := k.Get(ctx, client.ObjectKey{Namespace: "osm-system", Name: "osm-operator.mesh.openservicemesh.io"}, l); err != nil {
			return ""
		}
		return ptr.Deref(l.Spec.HolderIdentity, "")
	}
	_, stopA := runOperator(t, ctx, c.env.Config, true)
	var leader string
	testenv.Eventually(t, 30*time.Second, func() error {
		if leader = holder(); leader == "" {
			return fmt.Errorf("no replica holds the leader Lease")
		}
		return nil
	})
	runOperator(t, ctx, c.env.Config, true)

	ns := "ha"
	joinMesh(t, ctx, k, ns)
	identity := func(sa string) func() error {
		return func() error {
			return k.Get(ctx, client.ObjectKey{Namespace: ns, Name: meshv1alpha1.IdentitySecretName(sa)}, &corev1.Secret{})
		}
	}
	testenv.Eventually(t, 90*time.Second, identity("buyer"))
	if h := holder(); h != leader {
		t.Fatalf("the Lease moved from %s to %s while its holder ran", leader, h)
	}

	stopA()
	start := time.Now()
	testenv.Eventually(t, 30*time.Second, func() error {
		if h := holder(); h == "" || h == leader {
			return fmt.Errorf("the Lease is still held by %q", h)
		}
		return nil
	})
	took := time.Since(start)
	t.Logf("the other replica leads %s after the leader stopped", took.Round(time.Millisecond))
	if took > 15*time.Second { // controller-runtime's lease duration
		t.Errorf("the other replica took over after %s, more than the lease duration", took)
	}

	if err := k.Create(ctx, testPod(ns, "late-1", "late")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 90*time.Second, identity("late"))

	var certs cmapi.CertificateList
	if err := k.List(ctx, &certs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	bySecret := map[string]int{}
	for _, c := range certs.Items {
		bySecret[c.Spec.SecretName]++
	}
	for _, sa := range []string{"buyer", "late"} {
		if n := bySecret[meshv1alpha1.IdentitySecretName(sa)]; n != 1 {
			t.Errorf("%d Certificates for the identity %s, want 1 (all: %v)", n, sa, bySecret)
		}
	}
}
