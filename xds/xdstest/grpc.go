package xdstest

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	xdscreds "google.golang.org/grpc/credentials/xds"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	grpcxds "google.golang.org/grpc/xds"
)

// GRPCServer serves the gRPC health service on lis with a server created by
// xds.NewGRPCServer from bootstrap, as a proxyless workload does; it stops
// when the test ends.
func GRPCServer(t testing.TB, lis net.Listener, bootstrap []byte) {
	t.Helper()
	GRPCServerWith(t, lis, bootstrap, nil)
}

// GRPCServerWith is GRPCServer serving, beside the health service, the
// services register registers.
func GRPCServerWith(t testing.TB, lis net.Listener, bootstrap []byte, register func(grpc.ServiceRegistrar)) {
	t.Helper()
	creds, err := xdscreds.NewServerCredentials(xdscreds.ServerOptions{FallbackCreds: insecure.NewCredentials()})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := grpcxds.NewGRPCServer(grpc.Creds(creds), grpcxds.BootstrapContentsForTesting(bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	healthpb.RegisterHealthServer(srv, health.NewServer())
	if register != nil {
		register(srv)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
}

// GRPCClient dials target (xds:///...) as a proxyless client with bootstrap.
// Its dialer plays the pod network: an endpoint's address (192.0.2.x:port)
// reaches the server listening on that port of loopback.
func GRPCClient(t testing.TB, target string, bootstrap []byte) *grpc.ClientConn {
	t.Helper()
	resolver, err := grpcxds.NewXDSResolverWithConfigForTesting(bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := xdscreds.NewClientCredentials(xdscreds.ClientOptions{FallbackCreds: insecure.NewCredentials()})
	if err != nil {
		t.Fatal(err)
	}
	podNetwork := func(ctx context.Context, addr string) (net.Conn, error) {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		return (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", port))
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds), grpc.WithContextDialer(podNetwork), grpc.WithResolvers(resolver))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
