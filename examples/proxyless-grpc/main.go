// Command proxyless-grpc is a gRPC server and client that join the mesh
// without a sidecar: grpc-go's xDS support reads the bootstrap the injector
// puts in GRPC_XDS_BOOTSTRAP_CONFIG, gets its listeners, routes, clusters
// and endpoints from the operator, and takes its mTLS certificates from the
// mounted identity Secret. See README.md next to it.
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	xdscreds "google.golang.org/grpc/credentials/xds"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/xds"
)

func main() {
	serve := flag.String("serve", "", "Serve the health service on this address, e.g. 0.0.0.0:50051.")
	target := flag.String("call", "", "Call the health service of this target, e.g. xds:///greeter.shop.svc.cluster.local:50051, every second.")
	flag.Parse()
	switch {
	case *serve != "":
		creds, err := xdscreds.NewServerCredentials(xdscreds.ServerOptions{FallbackCreds: insecure.NewCredentials()})
		if err != nil {
			log.Fatal(err)
		}
		srv, err := xds.NewGRPCServer(grpc.Creds(creds))
		if err != nil {
			log.Fatal(err)
		}
		healthpb.RegisterHealthServer(srv, health.NewServer())
		lis, err := net.Listen("tcp4", *serve)
		if err != nil {
			log.Fatal(err)
		}
		log.Printf("serving on %s", *serve)
		log.Fatal(srv.Serve(lis))
	case *target != "":
		creds, err := xdscreds.NewClientCredentials(xdscreds.ClientOptions{FallbackCreds: insecure.NewCredentials()})
		if err != nil {
			log.Fatal(err)
		}
		conn, err := grpc.NewClient(*target, grpc.WithTransportCredentials(creds))
		if err != nil {
			log.Fatal(err)
		}
		defer conn.Close()
		for range time.Tick(time.Second) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
			cancel()
			log.Printf("Check: %v %v", resp.GetStatus(), err)
		}
	default:
		flag.Usage()
	}
}
