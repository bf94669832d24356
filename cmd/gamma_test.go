package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
)

// TestGatewayAPIRoutesWithProxylessGRPC runs Gateway API mesh routes on
// grpc-go's own xDS client, against the operator, the API server and
// cert-manager's real controllers: a GRPCRoute's method and header matches
// pick the backend; its weights share 1,000 calls 70/30 within ±5 points;
// an HTTPRoute's request timeout on a gRPC port ends a slow call with
// DeadlineExceeded at that time; its retry stanza retries a failing
// backend, counted on the backend, up to its attempts. Both routes report
// Accepted.
func TestGatewayAPIRoutesWithProxylessGRPC(t *testing.T) {
	const ns, port = "shop", grpcPort
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "gamma"}, Spec: meshv1alpha1.MeshInstanceSpec{
		TrafficPolicy: meshv1alpha1.TrafficPolicy{Mode: meshv1alpha1.TrafficPolicyPermissive}}}
	g := newGRPCMesh(t, mi, ns, "v1", "v2")
	client1, v1Pod, v2Pod := g.pod("client-1", "client"), g.pod("echo-v1-1", "echo-v1"), g.pod("echo-v2-1", "echo-v2")
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
	g.create(client1, v1Pod, v2Pod,
		grpcService(ns, "echo"), grpcService(ns, "echo-v1"), grpcService(ns, "echo-v2"),
		g.endpoints("echo", "v1", v1Pod, "192.0.2.91"), g.endpoints("echo-v1", "v1", v1Pod, "192.0.2.91"), g.endpoints("echo-v2", "v2", v2Pod, "192.0.2.92"),
		grpcRoute, httpRoute)
	g.serve("v1", v1Pod)
	g.serve("v2", v2Pod)
	clientBoot := g.bootstrap(client1)
	echo, echoV1 := g.dial(clientBoot, "echo"), g.dial(clientBoot, "echo-v1")
	call, services, ctx, k := g.call, g.services, g.ctx, g.k

	// Method and header matches: EmptyCall goes to v1, and to v2 with
	// x-version: v2, once both servers serve.
	testenv.Eventually(t, 60*time.Second, func() error {
		c1, by1 := call(empty(echo))
		c2, by2 := call(empty(echo), "x-version", "v2")
		if c1 != codes.OK || by1 != "v1" || c2 != codes.OK || by2 != "v2" {
			return fmt.Errorf("EmptyCall: %s by %q, with x-version v2: %s by %q; want OK by v1, OK by v2", c1, by1, c2, by2)
		}
		return nil
	})
	for range 20 {
		if c, by := call(empty(echo)); c != codes.OK || by != "v1" {
			t.Fatalf("EmptyCall without x-version: %s by %q, want OK by v1", c, by)
		}
		if c, by := call(empty(echo), "x-version", "v2"); c != codes.OK || by != "v2" {
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

	// Both routes say they are accepted, by the mesh, and in force on every
	// proxy calling their Service (in a Permissive mesh, every proxy).
	testenv.Eventually(t, 30*time.Second, func() error {
		gr, hr := &gwv1.GRPCRoute{}, &gwv1.HTTPRoute{}
		if err := k.Get(ctx, client.ObjectKeyFromObject(grpcRoute), gr); err != nil {
			return err
		}
		if err := k.Get(ctx, client.ObjectKeyFromObject(httpRoute), hr); err != nil {
			return err
		}
		for name, parents := range map[string][]gwv1.RouteParentStatus{gr.Name: gr.Status.Parents, hr.Name: hr.Status.Parents} {
			if len(parents) != 1 {
				return fmt.Errorf("%s status: %+v", name, parents)
			}
			conds := parents[0].Conditions
			a, r, e := meta.FindStatusCondition(conds, "Accepted"), meta.FindStatusCondition(conds, "ResolvedRefs"), meta.FindStatusCondition(conds, "Enforced")
			if a == nil || r == nil || e == nil || a.Status != metav1.ConditionTrue || r.Status != metav1.ConditionTrue || e.Status != metav1.ConditionTrue || !strings.Contains(e.Message, "3/3 proxies of 3 groups") {
				return fmt.Errorf("%s status: %+v", name, conds)
			}
		}
		return nil
	})
}
