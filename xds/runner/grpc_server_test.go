package runner_test

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	xdscreds "google.golang.org/grpc/credentials/xds"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	grpcxds "google.golang.org/grpc/xds"

	"github.com/open-service-mesh/osm-operator/internal/testpki"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// TestProxylessGRPCServerEnforcesSMI runs a gRPC server created with
// grpc-go's xds.NewGRPCServer and two proxyless clients, all configured only
// by our xDS server: the server requires their mesh certificates and applies
// the SMI policy with the same RBAC rules as a sidecar, so the allowed
// client's calls succeed and the other's are PERMISSION_DENIED; moving the
// TrafficTarget flips both, without restarts.
func TestProxylessGRPCServerEnforcesSMI(t *testing.T) {
	ctx := testContext(t)
	ns := memberNamespace(t)
	grpcPod := map[string]string{mesh.ProxyKindAnnotation: string(mesh.ProxyGRPC)}
	buyer := workload(t, ns, "buyer-1", "buyer", grpcPod)
	thief := workload(t, ns, "thief-1", "thief", grpcPod)
	store := workload(t, ns, "store-1", "store", grpcPod)

	lis, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	port := int32(lis.Addr().(*net.TCPAddr).Port)
	service(t, ns, "store", "grpc", port, "grpc")
	endpointSlice(t, ns, "store", "grpc", port, map[string]string{"store-1": "192.0.2.11"})
	target := allow(t, ns, "buyer", "store")

	serverCreds, err := xdscreds.NewServerCredentials(xdscreds.ServerOptions{FallbackCreds: insecure.NewCredentials()})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := grpcxds.NewGRPCServer(grpc.Creds(serverCreds), grpcxds.BootstrapContentsForTesting([]byte(bootstrap(t, store, nodeID(ns, "store-1")))))
	if err != nil {
		t.Fatal(err)
	}
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	call := proxylessClient(t, lis.Addr().String(), "xds:///store."+ns+".svc.cluster.local:"+itoa(port))
	buyerCall, thiefCall := call(buyer, nodeID(ns, "buyer-1")), call(thief, nodeID(ns, "thief-1"))
	expect := func(what string, buyerWant, thiefWant codes.Code) {
		t.Helper()
		start := time.Now()
		var got [2]codes.Code
		for deadline := start.Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			got = [2]codes.Code{buyerCall(ctx), thiefCall(ctx)}
			if got == [2]codes.Code{buyerWant, thiefWant} {
				t.Logf("%s: buyer %s, thief %s after %v", what, got[0], got[1], time.Since(start).Round(time.Millisecond))
				return
			}
		}
		t.Fatalf("%s: buyer %s, thief %s; want %s, %s", what, got[0], got[1], buyerWant, thiefWant)
	}
	expect("buyer allowed", codes.OK, codes.PermissionDenied)

	target.Spec.Sources[0].Name = "thief"
	if err := k8s.Update(ctx, target); err != nil {
		t.Fatal(err)
	}
	expect("policy moved to thief", codes.PermissionDenied, codes.OK)
}

// proxylessClient returns a constructor of proxyless gRPC clients of target:
// each resolves it through our xDS server with its own certificate and
// bootstrap, and returns a function that makes one health check call and
// gives its status code. The dialer plays the pod network, connecting the
// endpoint's address to the server on loopback.
func proxylessClient(t *testing.T, serverAddr, target string) func(kp testpki.KeyPair, node string) func(context.Context) codes.Code {
	return func(kp testpki.KeyPair, node string) func(context.Context) codes.Code {
		t.Helper()
		resolver, err := grpcxds.NewXDSResolverWithConfigForTesting([]byte(bootstrap(t, kp, node)))
		if err != nil {
			t.Fatal(err)
		}
		creds, err := xdscreds.NewClientCredentials(xdscreds.ClientOptions{FallbackCreds: insecure.NewCredentials()})
		if err != nil {
			t.Fatal(err)
		}
		podNetwork := func(ctx context.Context, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", serverAddr)
		}
		conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds), grpc.WithContextDialer(podNetwork), grpc.WithResolvers(resolver))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return func(ctx context.Context) codes.Code {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{})
			return status.Code(err)
		}
	}
}
