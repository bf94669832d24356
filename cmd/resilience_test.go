package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
)

// TestResiliencePoliciesWithProxylessGRPC runs ResiliencePolicies on
// grpc-go's own xDS client, against the operator, the API server and
// cert-manager's real controllers: an abort fault fails its share of the
// calls that carry its header (within ±5 points over 1,000 calls) and no
// other; a delay fault delays; outlier detection ejects a failing backend
// and the calls move to the healthy one; maxRequests fails the excess
// calls at once; ring hash keeps each user on one backend; a route rule
// naming a ResiliencePolicy (an ExtensionRef filter) injects its fault into
// that rule's calls only.
func TestResiliencePoliciesWithProxylessGRPC(t *testing.T) {
	const ns = "chaos"
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "resilient"}, Spec: meshv1alpha1.MeshInstanceSpec{
		TrafficPolicy: meshv1alpha1.TrafficPolicy{Mode: meshv1alpha1.TrafficPolicyPermissive}}}
	g := newGRPCMesh(t, mi, ns, "v1", "v2", "v3")
	g.services["v3"].failing = true
	client1 := g.pod("client-1", "client")
	v1, v2, v3 := g.pod("v1-1", "v1"), g.pod("v2-1", "v2"), g.pod("v3-1", "v3")
	policy := func(service string, r meshv1alpha1.Resilience) *meshv1alpha1.ResiliencePolicy {
		return &meshv1alpha1.ResiliencePolicy{ObjectMeta: metav1.ObjectMeta{Name: service, Namespace: ns}, Spec: meshv1alpha1.ResiliencePolicySpec{
			TargetRefs: []gwv1.LocalPolicyTargetReferenceWithSectionName{{LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{Kind: "Service", Name: gwv1.ObjectName(service)}}},
			Resilience: r}}
	}
	g.create(client1, v1, v2, v3,
		grpcService(ns, "faulty"), g.endpoints("faulty", "v1", v1, "192.0.2.101"),
		grpcService(ns, "slow"), g.endpoints("slow", "v1", v1, "192.0.2.101"),
		grpcService(ns, "flaky"), g.endpoints("flaky", "v1", v1, "192.0.2.101"), g.endpoints("flaky", "v3", v3, "192.0.2.103"),
		grpcService(ns, "limited"), g.endpoints("limited", "v1", v1, "192.0.2.101"),
		grpcService(ns, "sticky"), g.endpoints("sticky", "v1", v1, "192.0.2.101"), g.endpoints("sticky", "v2", v2, "192.0.2.102"),
		policy("faulty", meshv1alpha1.Resilience{Fault: &meshv1alpha1.Fault{
			Abort:   &meshv1alpha1.FaultAbort{GRPCStatus: ptr.To(int32(codes.ResourceExhausted)), Percent: 30},
			Headers: []gwv1.HTTPHeaderMatch{{Name: "x-chaos", Value: "on"}}}}),
		policy("slow", meshv1alpha1.Resilience{Fault: &meshv1alpha1.Fault{Delay: &meshv1alpha1.FaultDelay{FixedDelay: "300ms", Percent: 100}}}),
		policy("flaky", meshv1alpha1.Resilience{OutlierDetection: &meshv1alpha1.OutlierDetection{
			FailurePercentage: ptr.To(int32(50)), MinimumRequests: ptr.To(int32(5)), Interval: "1s", BaseEjectionTime: "1m", MaxEjectionPercent: ptr.To(int32(100))}}),
		policy("limited", meshv1alpha1.Resilience{Connections: &meshv1alpha1.ConnectionLimits{MaxRequests: ptr.To(int32(2))}}),
		policy("sticky", meshv1alpha1.Resilience{LoadBalancer: &meshv1alpha1.LoadBalancer{Algorithm: meshv1alpha1.LoadBalancerRingHash, HashHeader: "x-user"}}),
		// A fault for the route rule that names it: UnaryCall of routed.
		grpcService(ns, "routed"), g.endpoints("routed", "v1", v1, "192.0.2.101"),
		&meshv1alpha1.ResiliencePolicy{ObjectMeta: metav1.ObjectMeta{Name: "chaos", Namespace: ns}, Spec: meshv1alpha1.ResiliencePolicySpec{
			Resilience: meshv1alpha1.Resilience{Fault: &meshv1alpha1.Fault{Abort: &meshv1alpha1.FaultAbort{GRPCStatus: ptr.To(int32(codes.FailedPrecondition)), Percent: 100}}}}},
		&gwv1.GRPCRoute{ObjectMeta: metav1.ObjectMeta{Name: "routed", Namespace: ns}, Spec: gwv1.GRPCRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Group: ptr.To(gwv1.Group("")), Kind: ptr.To(gwv1.Kind("Service")), Name: "routed"}}},
			Rules: []gwv1.GRPCRouteRule{
				{Matches: []gwv1.GRPCRouteMatch{{Method: &gwv1.GRPCMethodMatch{Service: ptr.To("grpc.testing.TestService"), Method: ptr.To("UnaryCall")}}},
					Filters:     []gwv1.GRPCRouteFilter{{Type: gwv1.GRPCRouteFilterExtensionRef, ExtensionRef: &gwv1.LocalObjectReference{Group: "mesh.openservicemesh.io", Kind: "ResiliencePolicy", Name: "chaos"}}},
					BackendRefs: []gwv1.GRPCBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "routed", Port: ptr.To(gwv1.PortNumber(grpcPort))}}}}},
				{BackendRefs: []gwv1.GRPCBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "routed", Port: ptr.To(gwv1.PortNumber(grpcPort))}}}}},
			}}},
	)
	g.serve("v1", v1)
	g.serve("v2", v2)
	g.serve("v3", v3)
	boot := g.bootstrap(client1)
	faulty, slow, flaky, limited, sticky := g.dial(boot, "faulty"), g.dial(boot, "slow"), g.dial(boot, "flaky"), g.dial(boot, "limited"), g.dial(boot, "sticky")
	routed := g.dial(boot, "routed")

	// A rule's fault: every UnaryCall fails FAILED_PRECONDITION, EmptyCall not.
	testenv.Eventually(t, 60*time.Second, func() error {
		u, _ := g.call(unary(routed))
		e, _ := g.call(empty(routed))
		if u != codes.FailedPrecondition || e != codes.OK {
			return fmt.Errorf("routed: UnaryCall %s, EmptyCall %s; want FailedPrecondition, OK", u, e)
		}
		return nil
	})

	// Abort: 30% of the calls with x-chaos: on fail RESOURCE_EXHAUSTED.
	testenv.Eventually(t, 60*time.Second, func() error {
		codesSeen := map[codes.Code]int{}
		for range 50 {
			c, _ := g.call(empty(faulty), "x-chaos", "on")
			codesSeen[c]++
		}
		if len(codesSeen) != 2 || codesSeen[codes.OK] == 0 || codesSeen[codes.ResourceExhausted] == 0 {
			return fmt.Errorf("50 calls with the fault's header: %v", codesSeen)
		}
		return nil
	})
	aborted := 0
	for i := range 1000 {
		switch c, _ := g.call(empty(faulty), "x-chaos", "on"); c {
		case codes.ResourceExhausted:
			aborted++
		case codes.OK:
		default:
			_, err := faulty.EmptyCall(g.ctx, &testgrpc.Empty{})
			t.Fatalf("call %d failed with %s, not the fault's code (again: %v)", i, c, err)
		}
	}
	t.Logf("abort fault of 30%%: %d of 1,000 calls aborted", aborted)
	if aborted < 250 || aborted > 350 {
		t.Errorf("%d of 1,000 calls aborted, want 300 ± 50", aborted)
	}
	for range 100 {
		if c, _ := g.call(empty(faulty)); c != codes.OK {
			t.Fatalf("a call without the fault's header: %s, want OK", c)
		}
	}

	// Delay: every call to slow takes 300 ms more.
	testenv.Eventually(t, 30*time.Second, func() error {
		start := time.Now()
		if c, _ := g.call(empty(slow)); c != codes.OK {
			return fmt.Errorf("slow: %s", c)
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			return fmt.Errorf("a delayed call took %s", d)
		}
		return nil
	})
	start := time.Now()
	for range 5 {
		if c, _ := g.call(empty(slow)); c != codes.OK {
			t.Fatalf("a delayed call: %s", c)
		}
	}
	t.Logf("delay fault of 300 ms: 5 calls took %s", time.Since(start).Round(time.Millisecond))
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Errorf("5 calls delayed 300 ms each took %s", d)
	}

	// Outlier detection: v3 fails every call; it is ejected, and then
	// every call reaches v1.
	failedBefore := 0
	testenv.Eventually(t, 60*time.Second, func() error {
		failed := 0
		for range 50 {
			if c, _ := g.call(empty(flaky)); c != codes.OK {
				failed++
			}
			time.Sleep(10 * time.Millisecond)
		}
		if failedBefore == 0 {
			failedBefore = failed
		}
		if failed > 0 {
			return fmt.Errorf("%d of 50 calls failed", failed)
		}
		return nil
	})
	for range 100 {
		if c, by := g.call(empty(flaky)); c != codes.OK || by != "v1" {
			t.Fatalf("after the ejection, a call: %s by %q, want OK by v1", c, by)
		}
	}
	t.Logf("outlier detection: %d of the first 50 calls failed; after v3's ejection, 100 of 100 reached v1", failedBefore)
	if failedBefore == 0 {
		t.Errorf("no call failed before the ejection: the failing backend was never reached")
	}

	// Max requests: with 2 in flight, the excess fails at once.
	testenv.Eventually(t, 30*time.Second, func() error {
		if c, _ := g.call(unary(limited)); c != codes.OK {
			return fmt.Errorf("limited: %s", c)
		}
		return nil
	})
	var mu sync.Mutex
	results := map[codes.Code][]time.Duration{}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			start := time.Now()
			c, _ := g.call(unary(limited), "x-sleep", "1s")
			mu.Lock()
			results[c] = append(results[c], time.Since(start))
			mu.Unlock()
		})
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	t.Logf("10 concurrent 1 s calls with maxRequests 2: %d OK, %d Unavailable (in %v)", len(results[codes.OK]), len(results[codes.Unavailable]), results[codes.Unavailable])
	if len(results[codes.OK]) != 2 || len(results[codes.Unavailable]) != 8 {
		t.Errorf("10 concurrent calls with maxRequests 2: %v, want 2 OK and 8 Unavailable", results)
	}
	for _, d := range results[codes.Unavailable] {
		if d > 500*time.Millisecond {
			t.Errorf("a call over the limit failed after %s, not at once", d)
		}
	}

	// Ring hash: each user's calls reach one backend; the users spread.
	testenv.Eventually(t, 30*time.Second, func() error {
		if c, _ := g.call(empty(sticky), "x-user", "probe"); c != codes.OK {
			return fmt.Errorf("sticky: %s", c)
		}
		return nil
	})
	backends := map[string]bool{}
	for u := range 20 {
		user := fmt.Sprintf("user-%d", u)
		first := ""
		for range 10 {
			c, by := g.call(empty(sticky), "x-user", user)
			if c != codes.OK {
				t.Fatalf("%s's call: %s", user, c)
			}
			if first == "" {
				first = by
			}
			if by != first {
				t.Fatalf("%s's calls reached %s and %s", user, first, by)
			}
		}
		backends[first] = true
	}
	if !backends["v1"] || !backends["v2"] {
		t.Errorf("20 users all reached %v", backends)
	}

	// A policy says, in the mesh's entry of its target, that it is in
	// force on every proxy calling the Service (Permissive: all four).
	testenv.Eventually(t, 30*time.Second, func() error {
		p := &meshv1alpha1.ResiliencePolicy{}
		if err := g.k.Get(g.ctx, client.ObjectKey{Namespace: ns, Name: "limited"}, p); err != nil {
			return err
		}
		for _, a := range p.Status.Ancestors {
			if e := meta.FindStatusCondition(a.Conditions, "Enforced"); a.ControllerName == meshv1alpha1.RouteControllerName && e != nil &&
				e.Status == metav1.ConditionTrue && strings.Contains(e.Message, "4/4 proxies of 4 groups") && e.ObservedGeneration == p.Generation {
				return nil
			}
		}
		return fmt.Errorf("ResiliencePolicy limited: %+v", p.Status.Ancestors)
	})
}
