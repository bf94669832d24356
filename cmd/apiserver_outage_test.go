package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"testing"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/xds/bootstrap"
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
	for _, obj := range []client.Object{
		&meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "demo"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "demo", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "demo"}},
		testPod(ns, "buyer-1", "buyer"),
	} {
		if err := k.Create(ctx, obj); err != nil {
			t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
		}
	}
	identity := &corev1.Secret{}
	testenv.Eventually(t, 90*time.Second, func() error {
		return k.Get(ctx, client.ObjectKey{Namespace: ns, Name: meshv1alpha1.IdentitySecretName("buyer")}, identity)
	})
	cert, err := tls.X509KeyPair(identity.Data["tls.crt"], identity.Data["tls.key"])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(identity.Data["ca.crt"])
	served := func() error {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		conn, err := xdstest.Dial(o.xdsAddr, bootstrap.XDSServerName("demo", "osm-system"), &cert, roots)
		if err != nil {
			return err
		}
		defer conn.Close()
		s, err := xdstest.OpenStream(sctx, conn, "sidecar~"+ns+"~buyer-1")
		if err != nil {
			return err
		}
		if err := s.Subscribe(resourcev3.ClusterType, nil); err != nil {
			return err
		}
		_, err = s.Recv()
		return err
	}
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
