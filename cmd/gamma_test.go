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
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/webhooks/inject"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/xdstest"
)

// testService is the gRPC test service of a backend: EmptyCall answers;
// UnaryCall sleeps for the request's x-sleep, and fails UNAVAILABLE the
// first x-fail-first calls of its x-fail-key, counting every call it gets
// by key, so a test sees the tries a retry policy made.
type testService struct {
	testgrpc.UnimplementedTestServiceServer
	mu    sync.Mutex
	tries map[string]int
}

func (s *testService) EmptyCall(context.Context, *testgrpc.Empty) (*testgrpc.Empty, error) {
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

// TestGatewayAPIRoutesWithProxylessGRPC runs Gateway API mesh routes on
// grpc-go's own xDS client, against the operator, the API server and
// cert-manager's real controllers: a GRPCRoute's method and header matches
// pick the backend; its weights share 1,000 calls 70/30 within ±5 points;
// an HTTPRoute's request timeout on a gRPC port ends a slow call with
// DeadlineExceeded at that time; its retry stanza retries a failing
// backend, counted on the backend, up to its attempts. Both routes report
// Accepted.
func TestGatewayAPIRoutesWithProxylessGRPC(t *testing.T) {
	ctx, k, xdsAddr := startOperator(t)
	r := manual.NewBuilderWithScheme(xdsScheme)
	r.InitialState(resolver.State{Addresses: []resolver.Address{{Addr: xdsAddr}}})
	resolver.Register(r)

	const meshName, ns, port = "gamma", "shop", 14001
	listeners, targetPorts, services := map[string]net.Listener{}, map[string]int32{}, map[string]*testService{}
	for _, v := range []string{"v1", "v2"} {
		lis, err := net.Listen("tcp4", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		listeners[v], targetPorts[v] = lis, int32(lis.Addr().(*net.TCPAddr).Port)
		services[v] = &testService{tries: map[string]int{}}
	}
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: meshName}, Spec: meshv1alpha1.MeshInstanceSpec{
		TrafficPolicy: meshv1alpha1.TrafficPolicy{Mode: meshv1alpha1.TrafficPolicyPermissive}}}
	cfg := inject.ConfigFor(mi, "osm-system", inject.Images{})
	grpcPod := func(name, sa string) *corev1.Pod {
		p := plainPod(ns, name, sa)
		p.Annotations = map[string]string{mesh.ProxyKindAnnotation: string(mesh.ProxyGRPC)}
		if err := inject.Pod(p, cfg); err != nil {
			t.Fatal(err)
		}
		return p
	}
	client1, v1Pod, v2Pod := grpcPod("client-1", "client"), grpcPod("echo-v1-1", "echo-v1"), grpcPod("echo-v2-1", "echo-v2")
	svcRef := func(name string) gwv1.ParentReference {
		return gwv1.ParentReference{Group: ptr.To(gwv1.Group("")), Kind: ptr.To(gwv1.Kind("Service")), Name: gwv1.ObjectName(name), Port: ptr.To(gwv1.PortNumber(port))}
	}
	backend := func(name string, weight int32) gwv1.BackendRef {
		return gwv1.BackendRef{Weight: ptr.To(weight), BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(name), Port: ptr.To(gwv1.PortNumber(port))}}
	}
	const svcName = "grpc.testing.TestService"
	exactly := func(method string) *gwv1.GRPCMethodMatch {
		return &gwv1.GRPCMethodMatch{Type: ptr.To(gwv1.GRPCMethodMatchExact), Service: ptr.To(svcName), Method: ptr.To(method)}
	}
	grpcRoute := &gwv1.GRPCRoute{ObjectMeta: metav1.ObjectMeta{Name: "echo-methods", Namespace: ns}, Spec: gwv1.GRPCRouteSpec{
		CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{svcRef("echo")}},
		Rules: []gwv1.GRPCRouteRule{
			{Matches: []gwv1.GRPCRouteMatch{{Method: exactly("EmptyCall"), Headers: []gwv1.GRPCHeaderMatch{{Name: "x-version", Value: "v2"}}}},
				BackendRefs: []gwv1.GRPCBackendRef{{BackendRef: backend("echo-v2", 1)}}},
			{Matches: []gwv1.GRPCRouteMatch{{Method: exactly("EmptyCall")}}, BackendRefs: []gwv1.GRPCBackendRef{{BackendRef: backend("echo-v1", 1)}}},
			{Matches: []gwv1.GRPCRouteMatch{{Method: &gwv1.GRPCMethodMatch{Service: ptr.To(svcName)}}},
				BackendRefs: []gwv1.GRPCBackendRef{{BackendRef: backend("echo-v1", 70)}, {BackendRef: backend("echo-v2", 30)}}},
		},
	}}
	header := func(name, value string) []gwv1.HTTPHeaderMatch {
		return []gwv1.HTTPHeaderMatch{{Name: gwv1.HTTPHeaderName(name), Value: value}}
	}
	toV1 := []gwv1.HTTPBackendRef{{BackendRef: backend("echo-v1", 1)}}
	httpRoute := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "echo-v1-resilience", Namespace: ns}, Spec: gwv1.HTTPRouteSpec{
		CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{svcRef("echo-v1")}},
		Rules: []gwv1.HTTPRouteRule{
			{Matches: []gwv1.HTTPRouteMatch{{Headers: header("x-case", "timeout")}}, BackendRefs: toV1,
				Timeouts: &gwv1.HTTPRouteTimeouts{Request: ptr.To(gwv1.Duration("500ms"))}},
			{Matches: []gwv1.HTTPRouteMatch{{Headers: header("x-case", "retry")}}, BackendRefs: toV1,
				Retry: &gwv1.HTTPRouteRetry{Attempts: ptr.To(3), Backoff: ptr.To(gwv1.Duration("10ms"))}},
			{BackendRefs: toV1},
		},
	}}
	objs := []client.Object{
		mi,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: meshName, Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: meshName}},
		client1, v1Pod, v2Pod,
		grpcService(ns, "echo"), grpcService(ns, "echo-v1"), grpcService(ns, "echo-v2"),
		podEndpoints(ns, "echo", "v1", v1Pod.Name, "192.0.2.91", targetPorts["v1"]),
		podEndpoints(ns, "echo-v1", "v1", v1Pod.Name, "192.0.2.91", targetPorts["v1"]),
		podEndpoints(ns, "echo-v2", "v2", v2Pod.Name, "192.0.2.92", targetPorts["v2"]),
		grpcRoute, httpRoute,
	}
	for _, o := range objs {
		if err := k.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	workload := func(pod *corev1.Pod) []byte {
		dir := t.TempDir()
		mountIdentity(t, ctx, k, pod, dir)
		for _, e := range pod.Spec.Containers[0].Env {
			if e.Name == inject.GRPCBootstrapEnv {
				return localGRPCBootstrap(t, []byte(e.Value), dir, "sidecar~"+ns+"~"+pod.Name)
			}
		}
		t.Fatalf("the injected pod %s has no %s", pod.Name, inject.GRPCBootstrapEnv)
		return nil
	}
	for v, pod := range map[string]*corev1.Pod{"v1": v1Pod, "v2": v2Pod} {
		svc := services[v]
		xdstest.GRPCServerWith(t, listeners[v], workload(pod), func(s grpc.ServiceRegistrar) { testgrpc.RegisterTestServiceServer(s, svc) })
	}
	clientBoot := workload(client1)
	echo := testgrpc.NewTestServiceClient(xdstest.GRPCClient(t, fmt.Sprintf("xds:///echo.%s.svc.cluster.local:%d", ns, port), clientBoot))
	echoV1 := testgrpc.NewTestServiceClient(xdstest.GRPCClient(t, fmt.Sprintf("xds:///echo-v1.%s.svc.cluster.local:%d", ns, port), clientBoot))

	// answeredBy is the version whose server answered p's call.
	answeredBy := func(p *peer.Peer) string {
		if a, ok := p.Addr.(*net.TCPAddr); ok {
			for v, port := range targetPorts {
				if a.Port == int(port) {
					return v
				}
			}
		}
		return ""
	}
	call := func(f func(context.Context, *peer.Peer) error, md ...string) (codes.Code, string) {
		cctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, md...), 5*time.Second)
		defer cancel()
		var p peer.Peer
		err := f(cctx, &p)
		return status.Code(err), answeredBy(&p)
	}
	empty := func(ctx context.Context, p *peer.Peer) error {
		_, err := echo.EmptyCall(ctx, &testgrpc.Empty{}, grpc.Peer(p))
		return err
	}
	unary := func(c testgrpc.TestServiceClient) func(context.Context, *peer.Peer) error {
		return func(ctx context.Context, p *peer.Peer) error {
			_, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.Peer(p))
			return err
		}
	}
	// Method and header matches: EmptyCall goes to v1, and to v2 with
	// x-version: v2, once both servers serve.
	testenv.Eventually(t, 60*time.Second, func() error {
		c1, by1 := call(empty)
		c2, by2 := call(empty, "x-version", "v2")
		if c1 != codes.OK || by1 != "v1" || c2 != codes.OK || by2 != "v2" {
			return fmt.Errorf("EmptyCall: %s by %q, with x-version v2: %s by %q; want OK by v1, OK by v2", c1, by1, c2, by2)
		}
		return nil
	})
	for range 20 {
		if c, by := call(empty); c != codes.OK || by != "v1" {
			t.Fatalf("EmptyCall without x-version: %s by %q, want OK by v1", c, by)
		}
		if c, by := call(empty, "x-version", "v2"); c != codes.OK || by != "v2" {
			t.Fatalf("EmptyCall with x-version v2: %s by %q, want OK by v2", c, by)
		}
	}
	// Weights: the service's other methods are shared 70/30.
	counts := map[string]int{}
	for range 1000 {
		c, by := call(unary(echo))
		if c != codes.OK {
			t.Fatalf("a UnaryCall failed: %s", c)
		}
		counts[by]++
	}
	t.Logf("70/30 GRPCRoute weights over 1,000 calls: %v", counts)
	if counts["v1"] < 650 || counts["v1"] > 750 || counts["v1"]+counts["v2"] != 1000 {
		t.Errorf("v1 answered %d and v2 %d of 1,000 calls, want 700 ± 50 on v1", counts["v1"], counts["v2"])
	}

	// Timeouts: a call slower than the rule's 500 ms ends then.
	testenv.Eventually(t, 30*time.Second, func() error {
		if c, _ := call(unary(echoV1)); c != codes.OK {
			return fmt.Errorf("echo-v1: %s", c)
		}
		return nil
	})
	start := time.Now()
	c, _ := call(unary(echoV1), "x-case", "timeout", "x-sleep", "3s")
	took := time.Since(start)
	t.Logf("a 3 s call under a 500 ms route timeout: %s after %s", c, took.Round(time.Millisecond))
	if c != codes.DeadlineExceeded || took < 450*time.Millisecond || took > 1500*time.Millisecond {
		t.Errorf("a 3 s call under a 500 ms route timeout: %s after %s, want DeadlineExceeded after about 500 ms", c, took)
	}
	if c, _ := call(unary(echoV1), "x-sleep", "700ms"); c != codes.OK {
		t.Errorf("a 700 ms call on the rule with no timeout: %s, want OK", c)
	}

	// Retries: a backend failing its first 2 tries of a call succeeds on
	// the third; failing 5, the call fails after 1 + 3 tries.
	if c, _ := call(unary(echoV1), "x-case", "retry", "x-fail-key", "a", "x-fail-first", "2"); c != codes.OK {
		t.Errorf("a call failing its first 2 tries, with 3 retries: %s, want OK", c)
	}
	if n := services["v1"].triesOf("a"); n != 3 {
		t.Errorf("the backend saw %d tries of a call failing its first 2, want 3", n)
	}
	if c, _ := call(unary(echoV1), "x-case", "retry", "x-fail-key", "b", "x-fail-first", "5"); c != codes.Unavailable {
		t.Errorf("a call failing its first 5 tries, with 3 retries: %s, want Unavailable", c)
	}
	if n := services["v1"].triesOf("b"); n != 4 {
		t.Errorf("the backend saw %d tries of a call failing every try, want 1 + 3 retries", n)
	}
	if c, _ := call(unary(echoV1), "x-fail-key", "c", "x-fail-first", "1"); c != codes.Unavailable || services["v1"].triesOf("c") != 1 {
		t.Errorf("a failing call on the rule with no retry: %s after %d tries, want Unavailable after 1", c, services["v1"].triesOf("c"))
	}

	// Both routes say they are accepted, by the mesh.
	testenv.Eventually(t, 30*time.Second, func() error {
		gr, hr := &gwv1.GRPCRoute{}, &gwv1.HTTPRoute{}
		if err := k.Get(ctx, client.ObjectKeyFromObject(grpcRoute), gr); err != nil {
			return err
		}
		if err := k.Get(ctx, client.ObjectKeyFromObject(httpRoute), hr); err != nil {
			return err
		}
		for name, parents := range map[string][]gwv1.RouteParentStatus{gr.Name: gr.Status.Parents, hr.Name: hr.Status.Parents} {
			if len(parents) != 1 || len(parents[0].Conditions) != 2 || parents[0].Conditions[0].Status != metav1.ConditionTrue || parents[0].Conditions[1].Status != metav1.ConditionTrue {
				return fmt.Errorf("%s status: %+v", name, parents)
			}
		}
		return nil
	})
}
