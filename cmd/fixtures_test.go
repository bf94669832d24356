package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/xds/bootstrap"
	"github.com/open-service-mesh/osm-operator/xds/xdstest"
)

// joinMesh creates the mesh "demo", the namespace ns with a MeshMember of
// it, and the pod buyer-1 running as the service account buyer.
func joinMesh(t *testing.T, ctx context.Context, k client.Client, ns string) {
	t.Helper()
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
}

// buyerProxy waits for the buyer's identity Secret in ns and returns a
// check that a proxy holding it, as buyer-1's sidecar, is served: it
// connects to the xDS server at xdsAddr and receives a response.
func buyerProxy(t *testing.T, ctx context.Context, k client.Client, xdsAddr, ns string) func() error {
	t.Helper()
	dial := buyerDialer(t, ctx, k, xdsAddr, ns)
	return func() error {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		conn, err := dial()
		if err != nil {
			return err
		}
		defer conn.Close()
		s, err := xdstest.OpenStream(sctx, conn, buyerNode(ns))
		if err != nil {
			return err
		}
		if err := s.Subscribe(resourcev3.ClusterType, nil); err != nil {
			return err
		}
		_, err = s.Recv()
		return err
	}
}

// buyerDialer waits for the buyer's identity Secret in ns and returns a
// dialer of the xDS server at xdsAddr that presents it.
func buyerDialer(t *testing.T, ctx context.Context, k client.Client, xdsAddr, ns string) func() (*grpc.ClientConn, error) {
	t.Helper()
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
	return func() (*grpc.ClientConn, error) {
		return xdstest.Dial(xdsAddr, bootstrap.XDSServerName("demo", "osm-system"), &cert, roots)
	}
}

// buyerNode is the node ID of buyer-1's sidecar in ns.
func buyerNode(ns string) string { return "sidecar~" + ns + "~buyer-1" }
