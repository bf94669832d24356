package runner_test

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// TestProxylessGRPCServerTakesIngressBackendSources: an IngressBackend
// naming a proxyless gRPC server's port with an IPRange source lets a
// plaintext caller from outside the mesh in from that range (grpc-go picks
// the server's plaintext chain by source address), and a plaintext caller
// from another address is refused: it reaches the mutual TLS chain.
func TestProxylessGRPCServerTakesIngressBackendSources(t *testing.T) {
	ctx := testContext(t)
	ns := memberNamespace(t)
	store := workload(t, ns, "store-1", "store", map[string]string{mesh.ProxyKindAnnotation: string(mesh.ProxyGRPC)})
	lis, port := grpcService(t, ns, "store", "store-1", "192.0.2.31")
	mustCreate(t, &policyv1alpha1.IngressBackend{
		ObjectMeta: metav1.ObjectMeta{Name: "store", Namespace: ns},
		Spec: policyv1alpha1.IngressBackendSpec{
			Backends: []policyv1alpha1.IngressBackendTarget{{Name: "store", Port: policyv1alpha1.BackendPort{Number: port, Protocol: policyv1alpha1.BackendProtocolHTTP}}},
			Sources:  []policyv1alpha1.IngressSource{{Kind: policyv1alpha1.IngressSourceIPRange, Name: "127.0.0.1/32"}},
		},
	})
	proxylessServer(t, lis, store, nodeID(ns, "store-1"))

	allowed, refused := plaintextFrom(t, "127.0.0.1", port), plaintextFrom(t, "127.0.0.2", port)
	var got [2]codes.Code
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		got = [2]codes.Code{allowed(ctx), refused(ctx)}
		if got[0] == codes.OK && got[1] != codes.OK {
			t.Logf("from 127.0.0.1: %s; from 127.0.0.2: %s", got[0], got[1])
			return
		}
	}
	t.Fatalf("plaintext from 127.0.0.1: %s, from 127.0.0.2: %s; want OK and a refusal", got[0], got[1])
}

// plaintextFrom is a health check over plaintext, as a caller outside the
// mesh makes it, from local address src to the server's port on loopback.
func plaintextFrom(t *testing.T, src string, port int32) func(context.Context) codes.Code {
	t.Helper()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	conn, err := grpc.NewClient(net.JoinHostPort("127.0.0.1", itoa(port)),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return dialer.DialContext(ctx, "tcp4", addr) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return check(conn)
}
