package runner_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	splitv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha4"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testpki"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/xdstest"
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

	lis, port := grpcService(t, ns, "store", "store-1", "192.0.2.11")
	target := allow(t, ns, "buyer", "store")

	proxylessServer(t, lis, store, nodeID(ns, "store-1"))

	call := proxylessClient(t, "xds:///store."+ns+".svc.cluster.local:"+itoa(port))
	buyerCall, thiefCall := check(call(buyer, nodeID(ns, "buyer-1"))), check(call(thief, nodeID(ns, "thief-1")))
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

// proxylessServer serves the health service on lis with a gRPC server
// created by xds.NewGRPCServer, configured only by our xDS server.
func proxylessServer(t *testing.T, lis net.Listener, kp testpki.KeyPair, node string) {
	t.Helper()
	proxylessServerIn(t, t.TempDir(), lis, kp, node)
}

// proxylessServerIn is proxylessServer with the identity files in dir.
func proxylessServerIn(t *testing.T, dir string, lis net.Listener, kp testpki.KeyPair, node string) {
	t.Helper()
	xdstest.GRPCServer(t, lis, []byte(bootstrapIn(t, dir, kp, node)))
}

// proxylessClient returns a constructor of proxyless gRPC clients of target,
// each with its own certificate and bootstrap.
func proxylessClient(t *testing.T, target string) func(kp testpki.KeyPair, node string) *grpc.ClientConn {
	return func(kp testpki.KeyPair, node string) *grpc.ClientConn {
		t.Helper()
		return xdstest.GRPCClient(t, target, []byte(bootstrap(t, kp, node)))
	}
}

// check makes one health check call on conn and gives its status code.
func check(conn *grpc.ClientConn) func(context.Context) codes.Code {
	return func(ctx context.Context) codes.Code {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{})
		return status.Code(err)
	}
}

// TestProxylessGRPCTrafficSplit: a TrafficSplit 80/20 over two versions of
// a service, each a proxyless gRPC server, splits 1,000 calls of a proxyless
// client within 5 points; changing it to 0/100 moves every call.
func TestProxylessGRPCTrafficSplit(t *testing.T) {
	ctx := testContext(t)
	ns := memberNamespace(t)
	grpcPod := map[string]string{mesh.ProxyKindAnnotation: string(mesh.ProxyGRPC)}
	buyer := workload(t, ns, "buyer-1", "buyer", grpcPod)
	ports := map[string]int32{}
	for _, v := range []string{"v1", "v2"} {
		store := workload(t, ns, "store-"+v+"-1", "store", grpcPod)
		lis, err := net.Listen("tcp4", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[v] = int32(lis.Addr().(*net.TCPAddr).Port)
		service(t, ns, "store-"+v, "grpc", 8080, "grpc")
		addr := map[string]string{"v1": "192.0.2.21", "v2": "192.0.2.22"}[v]
		endpointSlice(t, ns, "store-"+v, "grpc", ports[v], map[string]string{"store-" + v + "-1": addr})
		proxylessServer(t, lis, store, nodeID(ns, "store-"+v+"-1"))
	}
	service(t, ns, "store", "grpc", 8080, "grpc")
	allow(t, ns, "buyer", "store")
	split := &splitv1alpha4.TrafficSplit{
		ObjectMeta: metav1.ObjectMeta{Name: "store-split", Namespace: ns},
		Spec: splitv1alpha4.TrafficSplitSpec{Service: "store", Backends: []splitv1alpha4.TrafficSplitBackend{
			{Service: "store-v1", Weight: 80}, {Service: "store-v2", Weight: 20},
		}},
	}
	mustCreate(t, split)

	conn := proxylessClient(t, "xds:///store."+ns+".svc.cluster.local:8080")(buyer, nodeID(ns, "buyer-1"))
	// version calls the service once and says which version answered.
	version := func() (string, error) {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var p peer.Peer
		if _, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p)); err != nil {
			return "", err
		}
		for v, port := range ports {
			if p.Addr.(*net.TCPAddr).Port == int(port) {
				return v, nil
			}
		}
		return "", fmt.Errorf("answered from %s", p.Addr)
	}
	// Both versions answer once the config is in.
	seen := map[string]bool{}
	for deadline := time.Now().Add(30 * time.Second); len(seen) < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %v answered", seen)
		}
		if v, err := version(); err == nil {
			seen[v] = true
		}
	}
	counts := map[string]int{}
	for range 1000 {
		v, err := version()
		if err != nil {
			t.Fatal(err)
		}
		counts[v]++
	}
	t.Logf("80/20 split over 1,000 calls: %v", counts)
	if counts["v1"] < 750 || counts["v1"] > 850 {
		t.Errorf("v1 answered %d of 1,000 calls, want 800 ± 50", counts["v1"])
	}

	split.Spec.Backends[0].Weight, split.Spec.Backends[1].Weight = 0, 100
	if err := k8s.Update(ctx, split); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for streak := 0; streak < 50; time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 30*time.Second {
			t.Fatal("traffic did not move to v2")
		}
		if v, err := version(); err == nil && v == "v2" {
			streak++
		} else {
			streak = 0
		}
	}
	t.Logf("0/100: every call on v2 %v after the change", time.Since(start).Round(time.Millisecond))
	for range 200 {
		if v, err := version(); err != nil || v != "v2" {
			t.Fatalf("after 0/100 a call went to %q (%v)", v, err)
		}
	}
}

// TestProxylessGRPCRouteMatch: an HTTPRouteGroup that matches one gRPC
// method by path and method lets the client call that method and no other.
func TestProxylessGRPCRouteMatch(t *testing.T) {
	ctx := testContext(t)
	ns := memberNamespace(t)
	grpcPod := map[string]string{mesh.ProxyKindAnnotation: string(mesh.ProxyGRPC)}
	buyer := workload(t, ns, "buyer-1", "buyer", grpcPod)
	store := workload(t, ns, "store-1", "store", grpcPod)
	lis, port := grpcService(t, ns, "store", "store-1", "192.0.2.31")
	routes := &specsv1alpha4.HTTPRouteGroup{
		ObjectMeta: metav1.ObjectMeta{Name: "health-check", Namespace: ns},
		Spec: specsv1alpha4.HTTPRouteGroupSpec{Matches: []specsv1alpha4.HTTPMatch{{
			Name: "check", PathRegex: `/grpc\.health\.v1\.Health/Check`, Methods: []string{"POST"},
		}}},
	}
	mustCreate(t, routes, &accessv1alpha3.TrafficTarget{
		ObjectMeta: metav1.ObjectMeta{Name: "buyer-checks-store", Namespace: ns},
		Spec: accessv1alpha3.TrafficTargetSpec{
			Destination: accessv1alpha3.IdentityBindingSubject{Kind: "ServiceAccount", Name: "store", Namespace: ns},
			Sources:     []accessv1alpha3.IdentityBindingSubject{{Kind: "ServiceAccount", Name: "buyer", Namespace: ns}},
			Rules:       []accessv1alpha3.TrafficTargetRule{{Kind: "HTTPRouteGroup", Name: routes.Name, Matches: []string{"check"}}},
		},
	})
	proxylessServer(t, lis, store, nodeID(ns, "store-1"))
	conn := proxylessClient(t, "xds:///store."+ns+".svc.cluster.local:"+itoa(port))(buyer, nodeID(ns, "buyer-1"))
	list := func(ctx context.Context) codes.Code {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := healthpb.NewHealthClient(conn).List(cctx, &healthpb.HealthListRequest{})
		return status.Code(err)
	}
	var got [2]codes.Code
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got = [2]codes.Code{check(conn)(ctx), list(ctx)}; got == [2]codes.Code{codes.OK, codes.PermissionDenied} {
			return
		}
	}
	t.Fatalf("Check %s, List %s; want OK, PermissionDenied", got[0], got[1])
}

// TestProxylessGRPCMeshVM: a MeshVM whose proxy is ProxylessGRPC serves its
// Service from outside the cluster: a gRPC server on the VM, configured by
// our xDS server under the VM's node ID, receives the calls a proxyless
// client makes to the Service.
func TestProxylessGRPCMeshVM(t *testing.T) {
	ctx := testContext(t)
	ns := memberNamespace(t)
	buyer := workload(t, ns, "buyer-1", "buyer", map[string]string{mesh.ProxyKindAnnotation: string(mesh.ProxyGRPC)})
	warehouse := workload(t, ns, "warehouse-1", "warehouse", nil) // the service account's certificate
	lis, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	port := int32(lis.Addr().(*net.TCPAddr).Port)
	mustCreate(t, &meshv1alpha1.MeshVM{
		ObjectMeta: metav1.ObjectMeta{Name: "warehouse-vm", Namespace: ns},
		Spec: meshv1alpha1.MeshVMSpec{
			Mesh: meshName, ServiceAccountName: "warehouse", Addresses: []string{"192.0.2.40"},
			Ports:    []meshv1alpha1.VMPort{{Name: "grpc", Port: port, Protocol: meshv1alpha1.ProtocolGRPC}},
			Services: []string{"warehouse"}, Proxy: meshv1alpha1.ProxyProxylessGRPC,
		},
	})
	service(t, ns, "warehouse", "grpc", port, "grpc")
	// The slice the MeshVM controller publishes for the VM.
	mustCreate(t, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "warehouse-vm", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: "warehouse"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("grpc"), Port: ptr.To(port)}},
		Endpoints: []discoveryv1.Endpoint{{
			Addresses: []string{"192.0.2.40"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			TargetRef: &corev1.ObjectReference{Kind: "MeshVM", Name: "warehouse-vm", Namespace: ns},
		}},
	})
	allow(t, ns, "buyer", "warehouse")
	proxylessServer(t, lis, warehouse, "vm~"+ns+"~warehouse-vm")

	conn := proxylessClient(t, "xds:///warehouse."+ns+".svc.cluster.local:"+itoa(port))(buyer, nodeID(ns, "buyer-1"))
	var code codes.Code
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if code = check(conn)(ctx); code == codes.OK {
			return
		}
	}
	t.Fatalf("calls to the VM's Service end with %s", code)
}

// TestProxylessGRPCPermissive: in a Permissive mesh every member may call
// every other; back in SMI mode the call without a TrafficTarget is denied.
func TestProxylessGRPCPermissive(t *testing.T) {
	ctx := testContext(t)
	ns := memberNamespace(t)
	grpcPod := map[string]string{mesh.ProxyKindAnnotation: string(mesh.ProxyGRPC)}
	thief := workload(t, ns, "thief-1", "thief", grpcPod)
	store := workload(t, ns, "store-1", "store", grpcPod)
	lis, port := grpcService(t, ns, "store", "store-1", "192.0.2.51")
	proxylessServer(t, lis, store, nodeID(ns, "store-1"))
	call := check(proxylessClient(t, "xds:///store."+ns+".svc.cluster.local:"+itoa(port))(thief, nodeID(ns, "thief-1")))

	setMode := func(mode meshv1alpha1.TrafficPolicyMode) {
		t.Helper()
		mi := &meshv1alpha1.MeshInstance{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: meshName}, mi); err != nil {
			t.Fatal(err)
		}
		mi.Spec.TrafficPolicy.Mode = mode
		if err := k8s.Update(ctx, mi); err != nil {
			t.Fatal(err)
		}
	}
	await := func(want codes.Code) {
		t.Helper()
		var got codes.Code
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if got = call(ctx); got == want {
				return
			}
		}
		t.Fatalf("the call ends with %s, want %s", got, want)
	}
	await(codes.PermissionDenied)
	setMode(meshv1alpha1.TrafficPolicyPermissive)
	t.Cleanup(func() { setMode(meshv1alpha1.TrafficPolicySMI) })
	await(codes.OK)
	setMode(meshv1alpha1.TrafficPolicySMI)
	await(codes.PermissionDenied)
}

// TestProxylessGRPCCertificateRotation: when the server's identity files are
// renewed (as cert-manager renews the Secret and the kubelet updates the
// volume), established traffic goes on, and new connections get the new
// certificate, without restarts.
func TestProxylessGRPCCertificateRotation(t *testing.T) {
	ctx := testContext(t)
	ns := memberNamespace(t)
	grpcPod := map[string]string{mesh.ProxyKindAnnotation: string(mesh.ProxyGRPC)}
	buyer := workload(t, ns, "buyer-1", "buyer", grpcPod)
	store := workload(t, ns, "store-1", "store", grpcPod)
	lis, port := grpcService(t, ns, "store", "store-1", "192.0.2.61")
	allow(t, ns, "buyer", "store")
	dir := t.TempDir()
	proxylessServerIn(t, dir, lis, store, nodeID(ns, "store-1"))
	newClient := proxylessClient(t, "xds:///store."+ns+".svc.cluster.local:"+itoa(port))

	// serverSerial calls once and returns the serial of the certificate the
	// server presented.
	serverSerial := func(conn *grpc.ClientConn) (string, error) {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var p peer.Peer
		if _, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p)); err != nil {
			return "", err
		}
		info, ok := p.AuthInfo.(credentials.TLSInfo)
		if !ok || len(info.State.PeerCertificates) == 0 {
			return "", fmt.Errorf("no TLS peer: %T", p.AuthInfo)
		}
		return info.State.PeerCertificates[0].SerialNumber.String(), nil
	}
	conn := newClient(buyer, nodeID(ns, "buyer-1"))
	var before string
	for deadline := time.Now().Add(30 * time.Second); before == ""; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first call never succeeded")
		}
		before, _ = serverSerial(conn)
	}

	renewed, err := ca.Workload(mesh.Identity{Namespace: ns, ServiceAccount: "store"}.SPIFFE("cluster.local"))
	if err != nil {
		t.Fatal(err)
	}
	writeIdentity(t, dir, renewed)
	// The established connection keeps working through the renewal.
	for range 60 {
		if _, err := serverSerial(conn); err != nil {
			t.Fatalf("a call on the established connection failed after the renewal: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A new connection gets the renewed certificate.
	var after string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		fresh := newClient(buyer, nodeID(ns, "buyer-1"))
		after, err = serverSerial(fresh)
		fresh.Close()
		if err == nil && after != before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new connections still see serial %s (last error %v)", before, err)
		}
	}
	t.Logf("server certificate renewed: serial %s → %s", before, after)
}

// grpcService listens on every interface for a gRPC server, and creates a
// Service backed by pod at addr on that port; it returns the listener and
// the port.
func grpcService(t *testing.T, ns, svc, pod, addr string) (net.Listener, int32) {
	t.Helper()
	lis, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	port := int32(lis.Addr().(*net.TCPAddr).Port)
	service(t, ns, svc, "grpc", port, "grpc")
	endpointSlice(t, ns, svc, "grpc", port, map[string]string{pod: addr})
	return lis, port
}
