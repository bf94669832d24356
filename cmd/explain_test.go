package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/xds/explain"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/routesim"
)

// TestExplainAgreesWithGRPC: for a matrix of 24 calls (three callers, two
// services, two methods, with and without a header) in an SMI mesh of
// proxyless gRPC workloads, explain's verdict, from the model of the live
// cluster and the RBAC configuration the servers are sent, is what grpc-go
// observes: OK when explain says allowed, PERMISSION_DENIED when denied.
func TestExplainAgreesWithGRPC(t *testing.T) {
	const ns = "explained"
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "explain"}}
	g := newGRPCMesh(t, mi, ns, "v1", "v2")
	a, b, c := g.pod("a-1", "a"), g.pod("b-1", "b"), g.pod("c-1", "c")
	v1, v2 := g.pod("v1-1", "v1"), g.pod("v2-1", "v2")
	match := func(name, path string, headers map[string]string) specsv1alpha4.HTTPMatch {
		m := specsv1alpha4.HTTPMatch{Name: name, PathRegex: path, Methods: []string{"POST"}}
		if headers != nil {
			m.Headers = headers
		}
		return m
	}
	routes := &specsv1alpha4.HTTPRouteGroup{ObjectMeta: metav1.ObjectMeta{Name: "calls", Namespace: ns}, Spec: specsv1alpha4.HTTPRouteGroupSpec{Matches: []specsv1alpha4.HTTPMatch{
		match("unary", "/grpc.testing.TestService/UnaryCall", nil),
		match("empty", "/grpc.testing.TestService/EmptyCall", nil),
		match("vip-empty", "/grpc.testing.TestService/EmptyCall", map[string]string{"x-vip": "yes"}),
	}}}
	target := func(name, dst string, matches []string, srcs ...string) *accessv1alpha3.TrafficTarget {
		tt := &accessv1alpha3.TrafficTarget{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: accessv1alpha3.TrafficTargetSpec{
			Destination: accessv1alpha3.IdentityBindingSubject{Kind: "ServiceAccount", Name: dst, Namespace: ns},
			Rules:       []accessv1alpha3.TrafficTargetRule{{Kind: "HTTPRouteGroup", Name: "calls", Matches: matches}},
		}}
		for _, s := range srcs {
			tt.Spec.Sources = append(tt.Spec.Sources, accessv1alpha3.IdentityBindingSubject{Kind: "ServiceAccount", Name: s, Namespace: ns})
		}
		return tt
	}
	g.create(a, b, c, v1, v2, routes,
		grpcService(ns, "greeter"), g.endpoints("greeter", "v1", v1, "192.0.2.101"),
		grpcService(ns, "echo"), g.endpoints("echo", "v2", v2, "192.0.2.102"),
		// a calls greeter's both methods; b only UnaryCall, and EmptyCall
		// with x-vip: yes; c calls echo's EmptyCall.
		target("a-to-greeter", "v1", []string{"unary", "empty"}, "a"),
		target("b-to-greeter", "v1", []string{"unary", "vip-empty"}, "b"),
		target("c-to-echo", "v2", []string{"empty"}, "c"),
	)
	g.serve("v1", v1)
	g.serve("v2", v2)
	type client struct {
		sa      string
		greeter testgrpc.TestServiceClient
		echo    testgrpc.TestServiceClient
	}
	var clients []client
	for _, p := range []struct {
		sa  string
		pod string
	}{{"a", "a-1"}, {"b", "b-1"}, {"c", "c-1"}} {
		var boot []byte
		switch p.sa {
		case "a":
			boot = g.bootstrap(a)
		case "b":
			boot = g.bootstrap(b)
		default:
			boot = g.bootstrap(c)
		}
		clients = append(clients, client{p.sa, g.dial(boot, "greeter"), g.dial(boot, "echo")})
	}
	// Every policy is in force: a's allowed call passes, c's denied one not.
	testenv.Eventually(t, 60*time.Second, func() error {
		ok, _ := g.call(unary(clients[0].greeter))
		denied, _ := g.call(unary(clients[2].greeter))
		okC, _ := g.call(empty(clients[2].echo))
		if ok != codes.OK || denied != codes.PermissionDenied || okC != codes.OK {
			return fmt.Errorf("a→greeter %s, c→greeter %s, c→echo %s", ok, denied, okC)
		}
		return nil
	})
	in, meshes, err := mesh.List(g.ctx, g.k)
	if err != nil {
		t.Fatal(err)
	}
	in.Mesh = meshes[0]
	m, _ := mesh.Build(in)
	cases, agreed, allowed := 0, 0, 0
	for _, cl := range clients {
		for _, svc := range []string{"greeter", "echo"} {
			for _, method := range []string{"UnaryCall", "EmptyCall"} {
				for _, vip := range []bool{false, true} {
					cases++
					q := explain.Query{From: mesh.Group{Kind: mesh.ProxyGRPC, Identity: mesh.Identity{Namespace: ns, ServiceAccount: cl.sa}},
						To: mesh.ServiceKey{Namespace: ns, Name: svc}, Port: grpcPort}
					var md []string
					if vip {
						q.Headers = routesim.Headers{{Name: "x-vip", Value: "yes"}}
						md = []string{"x-vip", "yes"}
					}
					if err := q.GRPC("grpc.testing.TestService/" + method); err != nil {
						t.Fatal(err)
					}
					ans, err := explain.Explain(m, q)
					if err != nil {
						t.Fatal(err)
					}
					conn := cl.greeter
					if svc == "echo" {
						conn = cl.echo
					}
					call := unary(conn)
					if method == "EmptyCall" {
						call = empty(conn)
					}
					got, _ := g.call(call, md...)
					want := codes.PermissionDenied
					if ans.Allowed {
						want = codes.OK
						allowed++
					}
					name := fmt.Sprintf("%s → %s %s (x-vip %v)", cl.sa, svc, method, vip)
					if got != want {
						var out strings.Builder
						_ = ans.Write(&out)
						t.Errorf("%s: grpc-go %s, explain says %s:\n%s", name, got, want, out.String())
						continue
					}
					agreed++
				}
			}
		}
	}
	t.Logf("explain agrees with grpc-go on %d of %d calls (%d allowed)", agreed, cases, allowed)
	// Both verdicts, as the policies say: a's 4 calls to greeter; b's 2
	// UnaryCalls and its EmptyCall with x-vip; c's 2 EmptyCalls to echo.
	if allowed != 9 {
		t.Errorf("%d of the calls allowed, want 9", allowed)
	}

	// The config version explain computes from the model is the one the
	// control plane serves, and each caller's proxy holds it: explain says
	// so, and explain pod says it of the pod.
	config := func() (*rest.Config, error) { return g.rest, nil }
	testenv.Eventually(t, 30*time.Second, func() error {
		var out, errOut strings.Builder
		code := runExplain([]string{"--from", ns + "/a-1", "--to", "greeter." + ns + ":" + strconv.Itoa(grpcPort), "--grpc", "grpc.testing.TestService/UnaryCall"}, &out, &errOut, config)
		want := "the proxies of grpc/" + ns + "/a: 1/1 hold this config (version "
		if code != 0 || !strings.Contains(out.String(), want) {
			return fmt.Errorf("explain exited %d, want 0 and %q:\n%s%s", code, want, out.String(), errOut.String())
		}
		out.Reset()
		code = runExplain([]string{"pod", ns + "/c-1"}, &out, &errOut, config)
		want = "pod " + ns + "/c-1: proxy group grpc/" + ns + "/c of mesh explain\n  the proxies of grpc/" + ns + "/c: 1/1 hold this config (version "
		if code != 0 || !strings.HasPrefix(out.String(), want) {
			return fmt.Errorf("explain pod exited %d, want 0 and %q:\n%s%s", code, want, out.String(), errOut.String())
		}
		t.Logf("explain pod:\n%s", out.String())
		return nil
	})
}
