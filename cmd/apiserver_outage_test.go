package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/xds/xdstest"
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

	testenv.Eventually(t, 90*time.Second, identitiesIssued(ctx, k, ns, 2))
	if err := k.Get(ctx, client.ObjectKey{Namespace: ns, Name: meshv1alpha1.IdentitySecretName("late")}, &corev1.Secret{}); err != nil {
		t.Errorf("the late identity's Secret: %v", err)
	}
	if err := served(); err != nil {
		t.Errorf("after the outage: %v", err)
	}
}

// The API server restarts: stopped as a kubelet stops it, down for longer
// than the leader's renew deadline, then up again over the same etcd. The
// operator runs as installed, with leader election. A proxy connected
// across the restart keeps its stream and is pushed nothing, for the
// operator's caches list again what they held and that changes no config,
// and no Certificate is issued again. While the server is down, a proxy that
// connects is served, after the replica has lost its Lease too. Once the
// server is back, the replica leads again and reconciles: a pod made after
// it gets its identity and status catches up.
func TestAPIServerRestart(t *testing.T) {
	o := startCluster(t)
	o.xdsAddr, _ = runOperator(t, o.ctx, o.env.Config, true)
	ctx, k := o.ctx, o.k
	ns := "restart"
	joinMesh(t, ctx, k, ns)
	served := buyerProxy(t, ctx, k, o.xdsAddr, ns)
	testenv.Eventually(t, 60*time.Second, served)
	testenv.Eventually(t, 60*time.Second, identitiesIssued(ctx, k, ns, 1))

	conn, err := buyerDialer(t, ctx, k, o.xdsAddr, ns)()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	held := make(chan xdstest.Held, 1000)
	ended := make(chan error, 1)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		e := &xdstest.Envoy{NodeID: buyerNode(ns), OnHeld: func(h xdstest.Held) { held <- h }}
		ended <- e.Run(sctx, conn)
	}()
	before := settle(t, held)
	issued := allIssued(t, ctx, k)

	logged := len(operatorLog.String())
	stopped := time.Now()
	if err := o.env.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	t.Logf("the API server stopped in %s", time.Since(stopped).Round(time.Millisecond))
	if err := k.Get(ctx, client.ObjectKey{Name: ns}, &corev1.Namespace{}); err == nil {
		t.Fatal("the API server still answers")
	}
	if err := served(); err != nil {
		t.Errorf("with the API server down, a connecting proxy was not served: %v", err)
	}
	// controller-runtime's renew deadline is 10 s.
	time.Sleep(12 * time.Second)
	if !strings.Contains(operatorLog.String()[logged:], "Lost the leader Lease") {
		t.Error("the replica has not logged losing its Lease")
	}
	if err := served(); err != nil {
		t.Errorf("with the API server down and the Lease lost, a connecting proxy was not served: %v", err)
	}
	if err := o.env.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	t.Logf("the API server was down for %s", back.Sub(stopped).Round(time.Millisecond))

	if err := k.Create(ctx, testPod(ns, "late-1", "late")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 90*time.Second, identitiesIssued(ctx, k, ns, 2))
	t.Logf("a pod made once it was back had its identity issued and counted %s later", time.Since(back).Round(time.Millisecond))
	if err := served(); err != nil {
		t.Errorf("after the restart: %v", err)
	}
	notReissued(t, ctx, k, issued, "the restart")
	select {
	case err := <-ended:
		t.Fatalf("the stream of the proxy connected across the restart ended: %v", err)
	default:
	}
	for {
		select {
		case h := <-held:
			t.Errorf("the proxy connected across the restart was pushed config versions %v; it held %v", h.Versions, before.Versions)
		default:
			return
		}
	}
}

// settle returns what a proxy holds once it has been pushed nothing for two
// seconds.
func settle(t *testing.T, held <-chan xdstest.Held) xdstest.Held {
	t.Helper()
	var last xdstest.Held
	deadline := time.After(60 * time.Second)
	for {
		select {
		case last = <-held:
		case <-time.After(2 * time.Second):
			if last.At.IsZero() {
				continue
			}
			return last
		case <-deadline:
			t.Fatal("the proxy's config did not settle")
		}
	}
}

// identitiesIssued checks that the MeshMember of ns counts n identities
// issued and that its IdentitiesReady condition is True.
func identitiesIssued(ctx context.Context, k client.Client, ns string, n int32) func() error {
	return func() error {
		mm := &meshv1alpha1.MeshMember{}
		if err := k.Get(ctx, client.ObjectKey{Namespace: ns, Name: "demo"}, mm); err != nil {
			return err
		}
		if mm.Status.IdentitiesReady != n || !meta.IsStatusConditionTrue(mm.Status.Conditions, meshv1alpha1.ConditionIdentitiesReady) {
			return fmt.Errorf("the member counts %d identities issued, want %d; its conditions are %+v", mm.Status.IdentitiesReady, n, mm.Status.Conditions)
		}
		return nil
	}
}
