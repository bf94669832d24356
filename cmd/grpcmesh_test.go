package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/webhooks/inject"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/xdstest"
)

// testService is the gRPC test service of a backend: EmptyCall answers (fails, when failing);
// UnaryCall sleeps for the request's x-sleep, and fails UNAVAILABLE the
// first x-fail-first calls of its x-fail-key, counting every call it gets
// by key, so a test sees the tries a retry policy made.
type testService struct {
	testgrpc.UnimplementedTestServiceServer
	mu    sync.Mutex
	tries map[string]int
	// failing makes EmptyCall fail UNAVAILABLE: an unhealthy backend.
	failing bool
}

func (s *testService) EmptyCall(context.Context, *testgrpc.Empty) (*testgrpc.Empty, error) {
	if s.failing {
		return nil, status.Error(codes.Unavailable, "this backend is unhealthy")
	}
	return &testgrpc.Empty{}, nil
}

func (s *testService) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	first := func(k string) string {
		if v := md.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	if d, err := time.ParseDuration(first("x-sleep")); err == nil {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if key := first("x-fail-key"); key != "" {
		s.mu.Lock()
		s.tries[key]++
		n := s.tries[key]
		s.mu.Unlock()
		if fail, _ := strconv.Atoi(first("x-fail-first")); n <= fail {
			return nil, status.Errorf(codes.Unavailable, "failing try %d of %d", n, fail)
		}
	}
	return &testgrpc.SimpleResponse{}, nil
}

func (s *testService) triesOf(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tries[key]
}

// grpcMesh is a mesh of proxyless gRPC workloads in one namespace of a
// running operator (with the API server and cert-manager's controllers):
// backends, each a version serving testService on a port of its own, and
// clients calling them through grpc-go's xDS resolver.
type grpcMesh struct {
	t        *testing.T
	ctx      context.Context
	k        client.Client
	ns       string
	cfg      inject.Config
	ports    map[string]int32
	services map[string]*testService
	lis      map[string]net.Listener
	// rest is the cluster's, for the commands (explain, status).
	rest *rest.Config
}

// grpcPort is the port of every Service of a grpcMesh.
const grpcPort = 14001

// newGRPCMesh starts the operator and makes mi, its namespace ns (a
// MeshMember's) and a listener per version.
func newGRPCMesh(t *testing.T, mi *meshv1alpha1.MeshInstance, ns string, versions ...string) *grpcMesh {
	o := startOperatorWith(t, false)
	ctx, k := o.ctx, o.k
	r := manual.NewBuilderWithScheme(xdsScheme)
	r.InitialState(resolver.State{Addresses: []resolver.Address{{Addr: o.xdsAddr}}})
	resolver.Register(r)
	g := &grpcMesh{t: t, ctx: ctx, k: k, ns: ns, cfg: inject.ConfigFor(mi, "osm-system", inject.Images{}), rest: o.env.Config,
		ports: map[string]int32{}, services: map[string]*testService{}, lis: map[string]net.Listener{}}
	for _, v := range versions {
		lis, err := net.Listen("tcp4", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		g.lis[v], g.ports[v] = lis, int32(lis.Addr().(*net.TCPAddr).Port)
		g.services[v] = &testService{tries: map[string]int{}}
	}
	g.create(mi, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: mi.Name, Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: mi.Name}})
	return g
}

func (g *grpcMesh) create(objs ...client.Object) {
	g.t.Helper()
	for _, o := range objs {
		if err := g.k.Create(g.ctx, o); err != nil {
			g.t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// pod is a proxyless pod of the mesh running as sa, injected, not created.
func (g *grpcMesh) pod(name, sa string) *corev1.Pod {
	p := plainPod(g.ns, name, sa)
	p.Annotations = map[string]string{mesh.ProxyKindAnnotation: string(mesh.ProxyGRPC)}
	if err := inject.Pod(p, g.cfg); err != nil {
		g.t.Fatal(err)
	}
	return p
}

// endpoints is an EndpointSlice of service with the pod of version v.
func (g *grpcMesh) endpoints(service, v string, pod *corev1.Pod, addr string) client.Object {
	return podEndpoints(g.ns, service, v, pod.Name, addr, g.ports[v])
}

// bootstrap is the gRPC bootstrap of pod, its identity files mounted.
func (g *grpcMesh) bootstrap(pod *corev1.Pod) []byte {
	dir := g.t.TempDir()
	mountIdentity(g.t, g.ctx, g.k, pod, dir)
	for _, e := range pod.Spec.Containers[0].Env {
		if e.Name == inject.GRPCBootstrapEnv {
			return localGRPCBootstrap(g.t, []byte(e.Value), dir, "sidecar~"+g.ns+"~"+pod.Name)
		}
	}
	g.t.Fatalf("the injected pod %s has no %s", pod.Name, inject.GRPCBootstrapEnv)
	return nil
}

// serve serves version v as pod.
func (g *grpcMesh) serve(v string, pod *corev1.Pod) {
	svc := g.services[v]
	xdstest.GRPCServerWith(g.t, g.lis[v], g.bootstrap(pod), func(s grpc.ServiceRegistrar) { testgrpc.RegisterTestServiceServer(s, svc) })
}

// dial is a client of service as the proxyless app with bootstrap boot.
func (g *grpcMesh) dial(boot []byte, service string) testgrpc.TestServiceClient {
	return testgrpc.NewTestServiceClient(xdstest.GRPCClient(g.t, fmt.Sprintf("xds:///%s.%s.svc.cluster.local:%d", service, g.ns, grpcPort), boot))
}

// call makes one call f with metadata md, within 5 s, and returns its code
// and the version that answered.
func (g *grpcMesh) call(f func(context.Context, *peer.Peer) error, md ...string) (codes.Code, string) {
	cctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(g.ctx, md...), 5*time.Second)
	defer cancel()
	var p peer.Peer
	err := f(cctx, &p)
	if a, ok := p.Addr.(*net.TCPAddr); ok {
		for v, port := range g.ports {
			if a.Port == int(port) {
				return status.Code(err), v
			}
		}
	}
	return status.Code(err), ""
}

// unary and empty are the calls of c's UnaryCall and EmptyCall.
func unary(c testgrpc.TestServiceClient) func(context.Context, *peer.Peer) error {
	return func(ctx context.Context, p *peer.Peer) error {
		_, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.Peer(p))
		return err
	}
}

func empty(c testgrpc.TestServiceClient) func(context.Context, *peer.Peer) error {
	return func(ctx context.Context, p *peer.Peer) error {
		_, err := c.EmptyCall(ctx, &testgrpc.Empty{}, grpc.Peer(p))
		return err
	}
}
