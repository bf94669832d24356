package runner_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	grpcxds "google.golang.org/grpc/xds"

	"github.com/open-service-mesh/osm-operator/internal/testpki"
	xdsbootstrap "github.com/open-service-mesh/osm-operator/xds/bootstrap"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// TestGRPCXDSClientResolvesAServiceThroughTheMesh runs grpc-go's own xDS client
// against our server: it authenticates with its workload certificate, resolves
// xds:///<service>.<namespace>.svc.cluster.local:<port> from our listeners,
// routes, clusters and endpoints, and calls a real gRPC server behind them.
func TestGRPCXDSClientResolvesAServiceThroughTheMesh(t *testing.T) {
	ctx := testContext(t)
	ns := memberNamespace(t)
	client := workload(t, ns, "client-1", "client", map[string]string{mesh.ProxyKindAnnotation: string(mesh.ProxyGRPC)})
	workload(t, ns, "greeter-1", "greeter", nil)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	backend := grpc.NewServer()
	healthpb.RegisterHealthServer(backend, health.NewServer())
	go func() { _ = backend.Serve(lis) }()
	t.Cleanup(backend.Stop)
	port := int32(lis.Addr().(*net.TCPAddr).Port)

	service(t, ns, "greeter", "grpc", port, "grpc")
	// The API server refuses loopback endpoints, so the endpoint has a pod-like
	// address, and the client's dialer plays the pod network: it connects
	// that address to the backend on loopback, and records what xDS chose.
	endpointSlice(t, ns, "greeter", "grpc", port, map[string]string{"greeter-1": "192.0.2.10"})
	allow(t, ns, "client", "greeter")

	resolver, err := grpcxds.NewXDSResolverWithConfigForTesting([]byte(bootstrap(t, client, nodeID(ns, "client-1"))))
	if err != nil {
		t.Fatal(err)
	}
	target := "xds:///greeter." + ns + ".svc.cluster.local:" + itoa(port)
	dialed := make(chan string, 16)
	podNetwork := func(ctx context.Context, address string) (net.Conn, error) {
		select {
		case dialed <- address:
		default:
		}
		return (&net.Dialer{}).DialContext(ctx, "tcp", lis.Addr().String())
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithContextDialer(podNetwork), grpc.WithResolvers(resolver))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var last error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			if got := <-dialed; got != "192.0.2.10:"+itoa(port) {
				t.Fatalf("the client dialed %s, not the endpoint from EDS", got)
			}
			return
		}
		last = err
	}
	t.Fatalf("the call through xDS never succeeded: %v", last)
}

// bootstrap writes a gRPC xDS bootstrap that connects to our server with
// mutual TLS and names the certificate provider our clusters refer to.
func bootstrap(t *testing.T, kp testpki.KeyPair, node string) string {
	t.Helper()
	return bootstrapIn(t, t.TempDir(), kp, node)
}

// writeIdentity writes the identity files into dir as the kubelet updates a
// Secret volume: each file replaced at once.
func writeIdentity(t *testing.T, dir string, kp testpki.KeyPair) {
	t.Helper()
	files := map[string][]byte{"ca.crt": ca.PEM, "tls.crt": kp.CertPEM, "tls.key": kp.KeyPEM}
	for name, data := range files {
		tmp := filepath.Join(dir, "."+name)
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// bootstrapIn is bootstrap with the identity files in dir; the certificate
// provider re-reads them every second.
func bootstrapIn(t *testing.T, dir string, kp testpki.KeyPair, node string) string {
	t.Helper()
	writeIdentity(t, dir, kp)
	b, err := xdsbootstrap.GRPC(xdsbootstrap.GRPCOptions{NodeID: node, ServerURI: addr, IdentityDir: dir, Refresh: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }
