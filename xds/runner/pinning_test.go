package runner_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/internal/testpki"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/xdstest"
)

// secretIdentity is the SPIFFE ID of the certificate in an SDS secret, or ""
// for a secret without one (the trust bundle).
func secretIdentity(t testing.TB, res *anypb.Any) string {
	t.Helper()
	s := &tlsv3.Secret{}
	if err := res.UnmarshalTo(s); err != nil {
		t.Fatal(err)
	}
	chain := s.GetTlsCertificate().GetCertificateChain().GetInlineBytes()
	if chain == nil {
		return ""
	}
	block, _ := pem.Decode(chain)
	if block == nil {
		t.Fatalf("secret %s: no PEM certificate", s.GetName())
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.URIs) != 1 {
		t.Fatalf("secret %s: URI SANs %v", s.GetName(), cert.URIs)
	}
	return cert.URIs[0].String()
}

// attacked is a mesh where a buyer's proxy will try to become the store's,
// which is connected: the store's group has a snapshot, and its node ID is
// one the server knows.
func attacked(t *testing.T, ctx context.Context) (ns string, buyer testpki.KeyPair, own, victim string) {
	t.Helper()
	ns, buyer, _ = shop(t)
	store, err := ca.Workload(mesh.Identity{Namespace: ns, ServiceAccount: "store"}.SPIFFE("cluster.local"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := xdstest.OpenStream(ctx, connect(t, &store), nodeID(ns, "store-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Subscribe(resourcev3.SecretType, nil); err != nil {
		t.Fatal(err)
	}
	awaitSotW(t, s, func(r *discoveryv3.DiscoveryResponse) bool { return len(r.GetResources()) > 0 })
	own = mesh.Identity{Namespace: ns, ServiceAccount: "buyer"}.SPIFFE("cluster.local")
	victim = mesh.Identity{Namespace: ns, ServiceAccount: "store"}.SPIFFE("cluster.local")
	return ns, buyer, own, victim
}

// push changes the buyer's endpoints, so that its proxy is sent an update.
func push(t *testing.T, ctx context.Context, ns string, n int) {
	t.Helper()
	es := &discoveryv1.EndpointSlice{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "store-1"}, es); err != nil {
		t.Fatal(err)
	}
	es.Endpoints[0].Addresses = []string{fmt.Sprintf("10.1.1.%d", n)}
	if err := k8s.Update(ctx, es); err != nil {
		t.Fatal(err)
	}
}

// A proxy that proved it is the buyer cannot switch its stream to the
// store's node: a request naming another node, in the ACK of the first
// response or after several pushes, over SotW or delta, ends the stream with
// PermissionDenied, and the store's key is never sent. Before, go-control-
// plane took the node of the later request as the stream's, and the cache
// answered it from the store's snapshot, private key included.
func TestAStreamCannotSwitchToAnotherNode(t *testing.T) {
	for _, tc := range []struct {
		name   string
		delta  bool
		pushes int
	}{
		{"SotW, in the first ACK", false, 0},
		{"SotW, after pushes", false, 3},
		{"delta, in the first ACK", true, 0},
		{"delta, after pushes", true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			ns, buyer, own, victim := attacked(t, ctx)
			victimNode := &corev3.Node{Id: nodeID(ns, "store-1")}
			var err error
			if tc.delta {
				err = switchDelta(t, ctx, ns, buyer, own, victim, victimNode, tc.pushes)
			} else {
				err = switchSotW(t, ctx, ns, buyer, own, victim, victimNode, tc.pushes)
			}
			if status.Code(err) != codes.PermissionDenied {
				t.Fatalf("after the switch the stream ended with %v, want PermissionDenied", err)
			}
		})
	}
}

// checkSecrets fails the test if a response carries a certificate of
// another identity than own.
func checkSecrets(t *testing.T, typeURL string, resources []*anypb.Any, own, victim string) {
	t.Helper()
	if typeURL != resourcev3.SecretType {
		return
	}
	for _, res := range resources {
		if id := secretIdentity(t, res); id != "" && id != own {
			t.Fatalf("the buyer's stream was sent the certificate and key of %s (the victim is %s)", id, victim)
		}
	}
}

func switchSotW(t *testing.T, ctx context.Context, ns string, buyer testpki.KeyPair, own, victim string, victimNode *corev3.Node, pushes int) error {
	s, err := xdstest.OpenStream(ctx, connect(t, &buyer), nodeID(ns, "buyer-1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{resourcev3.SecretType, resourcev3.EndpointType} {
		if err := s.Subscribe(typ, nil); err != nil {
			t.Fatal(err)
		}
	}
	var last *discoveryv3.DiscoveryResponse
	for received := 0; received < 2+pushes; received++ {
		if received >= 2 {
			push(t, ctx, ns, received)
		}
		r, err := s.Recv()
		if err != nil {
			t.Fatalf("before the switch: %v", err)
		}
		checkSecrets(t, r.GetTypeUrl(), r.GetResources(), own, victim)
		if received == 1+pushes {
			last = r
			break
		}
		if err := s.ACK(r); err != nil {
			t.Fatal(err)
		}
	}
	// The switch: the ACK of the last response names the store's node, and
	// the secrets are asked for again under it.
	if err := s.ACKAs(last, victimNode); err != nil {
		return err
	}
	_ = s.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.SecretType, Node: victimNode})
	for {
		r, err := s.Recv()
		if err != nil {
			return err
		}
		checkSecrets(t, r.GetTypeUrl(), r.GetResources(), own, victim)
		_ = s.ACKAs(r, victimNode)
	}
}

func switchDelta(t *testing.T, ctx context.Context, ns string, buyer testpki.KeyPair, own, victim string, victimNode *corev3.Node, pushes int) error {
	d, err := xdstest.OpenDeltaStream(ctx, connect(t, &buyer), nodeID(ns, "buyer-1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{resourcev3.SecretType, resourcev3.EndpointType} {
		if err := d.Subscribe(typ, nil); err != nil {
			t.Fatal(err)
		}
	}
	resources := func(r *discoveryv3.DeltaDiscoveryResponse) []*anypb.Any {
		var out []*anypb.Any
		for _, res := range r.GetResources() {
			out = append(out, res.GetResource())
		}
		return out
	}
	var last *discoveryv3.DeltaDiscoveryResponse
	for received := 0; received < 2+pushes; received++ {
		if received >= 2 {
			push(t, ctx, ns, received)
		}
		r, err := d.Recv()
		if err != nil {
			t.Fatalf("before the switch: %v", err)
		}
		checkSecrets(t, r.GetTypeUrl(), resources(r), own, victim)
		if received == 1+pushes {
			last = r
			break
		}
		if err := d.ACK(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.ACKAs(last, victimNode); err != nil {
		return err
	}
	_ = d.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.SecretType, Node: victimNode, ResourceNamesSubscribe: []string{"*"}})
	for {
		r, err := d.Recv()
		if err != nil {
			return err
		}
		checkSecrets(t, r.GetTypeUrl(), resources(r), own, victim)
		_ = d.ACKAs(r, victimNode)
	}
}

// Two streams of one connection are authorized each on its own: the second,
// claiming the store's node with the buyer's certificate, is refused, and
// the first goes on being served as the buyer.
func TestStreamsOfOneConnectionAreAuthorizedEachOnItsOwn(t *testing.T) {
	ctx := testContext(t)
	ns, buyer, own, victim := attacked(t, ctx)
	conn := connect(t, &buyer)
	a, err := xdstest.OpenStream(ctx, conn, nodeID(ns, "buyer-1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{resourcev3.SecretType, resourcev3.EndpointType} {
		if err := a.Subscribe(typ, nil); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		r, err := a.Recv()
		if err != nil {
			t.Fatal(err)
		}
		checkSecrets(t, r.GetTypeUrl(), r.GetResources(), own, victim)
		if err := a.ACK(r); err != nil {
			t.Fatal(err)
		}
	}
	b, err := xdstest.OpenStream(ctx, conn, nodeID(ns, "store-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(resourcev3.SecretType, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Recv(); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("the second stream, as the store: %v, want PermissionDenied", err)
	}
	push(t, ctx, ns, 9)
	r, err := a.Recv()
	if err != nil {
		t.Fatalf("the first stream after the second was refused: %v", err)
	}
	if r.GetTypeUrl() != resourcev3.EndpointType {
		t.Fatalf("the first stream was sent %s, want the endpoint update", r.GetTypeUrl())
	}
}

// awaitEnd reads a stream until it ends, failing if it is sent a
// certificate of another identity than own on the way.
func awaitEnd(t *testing.T, s *xdstest.Stream, own string) error {
	t.Helper()
	for {
		r, err := s.Recv()
		if err != nil {
			return err
		}
		checkSecrets(t, r.GetTypeUrl(), r.GetResources(), own, "")
		_ = s.ACK(r)
	}
}

// A pod deleted and created again under its name with another service
// account does not keep the streams of its former identity: they end, and
// the new pod's proxy is served as the new identity. Before, the old stream
// stayed open, and the node ID the two shared was in the new group, so it
// was sent the new identity's key.
func TestARecreatedPodEndsTheStreamsOfItsFormerIdentity(t *testing.T) {
	ctx := testContext(t)
	ns, _, _ := shop(t)
	former := workload(t, ns, "cart-1", "buyer", nil)
	old, err := xdstest.OpenStream(ctx, connect(t, &former), nodeID(ns, "cart-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Subscribe(resourcev3.SecretType, nil); err != nil {
		t.Fatal(err)
	}
	awaitSotW(t, old, func(r *discoveryv3.DiscoveryResponse) bool { return len(r.GetResources()) > 0 })

	pod := &corev1.Pod{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "cart-1"}, pod); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Delete(ctx, pod, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := informers.Get(ctx, client.ObjectKeyFromObject(pod), &corev1.Pod{}); err == nil {
			return fmt.Errorf("pod %s still in the cache", pod.Name)
		}
		return nil
	})
	current := workload(t, ns, "cart-1", "store", nil)
	cur, err := xdstest.OpenStream(ctx, connect(t, &current), nodeID(ns, "cart-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cur.Subscribe(resourcev3.SecretType, nil); err != nil {
		t.Fatal(err)
	}
	storeID := mesh.Identity{Namespace: ns, ServiceAccount: "store"}.SPIFFE("cluster.local")
	awaitSotW(t, cur, func(r *discoveryv3.DiscoveryResponse) bool {
		for _, res := range r.GetResources() {
			if secretIdentity(t, res) == storeID {
				return true
			}
		}
		return false
	})
	err = awaitEnd(t, old, mesh.Identity{Namespace: ns, ServiceAccount: "buyer"}.SPIFFE("cluster.local"))
	if status.Code(err) != codes.Unavailable && status.Code(err) != codes.PermissionDenied {
		t.Fatalf("the former identity's stream ended with %v", err)
	}
}

// A MeshVM's service account is immutable, but a MeshVM deleted and created
// again under its name with another one ends the streams of its proxy,
// which proved the former.
func TestAMeshVMRecreatedWithAnotherServiceAccountEndsItsStreams(t *testing.T) {
	ctx := testContext(t)
	ns := memberNamespace(t)
	warehouse := workload(t, ns, "warehouse-1", "warehouse", nil)
	workload(t, ns, "buyer-1", "buyer", nil)
	vm := &meshv1alpha1.MeshVM{
		ObjectMeta: metav1.ObjectMeta{Name: "warehouse-vm", Namespace: ns},
		Spec: meshv1alpha1.MeshVMSpec{
			Mesh: meshName, ServiceAccountName: "warehouse", Addresses: []string{"192.0.2.31"},
			Ports: []meshv1alpha1.VMPort{{Name: "http", Port: 8080, Protocol: meshv1alpha1.ProtocolHTTP}},
		},
	}
	mustCreate(t, vm)
	testenv.Eventually(t, 10*time.Second, func() error {
		return informers.Get(ctx, client.ObjectKeyFromObject(vm), &meshv1alpha1.MeshVM{})
	})
	s, err := xdstest.OpenStream(ctx, connect(t, &warehouse), "vm~"+ns+"~warehouse-vm")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Subscribe(resourcev3.SecretType, nil); err != nil {
		t.Fatal(err)
	}
	awaitSotW(t, s, func(r *discoveryv3.DiscoveryResponse) bool { return len(r.GetResources()) > 0 })
	if err := k8s.Delete(ctx, vm); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(vm), &meshv1alpha1.MeshVM{}); err == nil {
			return fmt.Errorf("MeshVM %s still there", vm.Name)
		}
		return nil
	})
	vm = &meshv1alpha1.MeshVM{ObjectMeta: metav1.ObjectMeta{Name: vm.Name, Namespace: ns}, Spec: vm.Spec}
	vm.Spec.ServiceAccountName = "buyer"
	mustCreate(t, vm)
	err = awaitEnd(t, s, mesh.Identity{Namespace: ns, ServiceAccount: "warehouse"}.SPIFFE("cluster.local"))
	if status.Code(err) != codes.Unavailable && status.Code(err) != codes.PermissionDenied {
		t.Fatalf("the stream ended with %v", err)
	}
}

// A certificate is believed only for a workload of its own mesh: of the
// trust domain of the mesh of the workload's namespace, and chaining to that
// mesh's root. The server trusts every mesh's root for the handshake, so
// before, a certificate of one mesh served for a pod of another.
func TestACertificateOfOneMeshIsRefusedForAPodOfAnother(t *testing.T) {
	ctx := testContext(t)
	otherRoot, err := testpki.NewCA("other mesh root")
	if err != nil {
		t.Fatal(err)
	}
	other := fmt.Sprintf("other-%d", seq.Add(1))
	if err := createMesh(ctx, other, "other.local", otherRoot); err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: fmt.Sprintf("xds-%d", seq.Add(1)), Labels: map[string]string{meshv1alpha1.MonitorLabel: other},
	}}
	mustCreate(t, ns)
	mustCreate(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns.Name}})
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app-1", Namespace: ns.Name},
		Spec:       corev1.PodSpec{ServiceAccountName: "app", Containers: []corev1.Container{{Name: "app", Image: "app"}}},
	}
	injected(t, pod)
	mustCreate(t, pod)
	testenv.Eventually(t, 10*time.Second, func() error {
		return informers.Get(ctx, client.ObjectKeyFromObject(pod), &corev1.Pod{})
	})
	id := mesh.Identity{Namespace: ns.Name, ServiceAccount: "app"}
	for _, tc := range []struct{ name, trustDomain string }{
		// Signed by the first mesh's root, for its own trust domain.
		{"the other mesh's trust domain", "cluster.local"},
		// Signed by the first mesh's root, naming this mesh's trust domain.
		{"the other mesh's root", "other.local"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kp, err := ca.Workload(id.SPIFFE(tc.trustDomain))
			if err != nil {
				t.Fatal(err)
			}
			s, err := xdstest.OpenStream(ctx, connect(t, &kp), nodeID(ns.Name, "app-1"))
			if err == nil {
				err = s.Subscribe(resourcev3.SecretType, nil)
			}
			if err == nil {
				_, err = s.Recv()
			}
			if status.Code(err) != codes.PermissionDenied {
				t.Fatalf("got %v, want PermissionDenied", err)
			}
		})
	}
}

// A MeshVM's certificate cannot claim a pod's node, nor a pod's certificate
// a MeshVM's: the node ID's kind names where the server looks the workload
// up, and the workload must run as the certificate's identity.
func TestVMAndPodCannotClaimEachOthersNodes(t *testing.T) {
	ctx := testContext(t)
	ns := memberNamespace(t)
	buyer := workload(t, ns, "buyer-1", "buyer", nil)
	warehouse := workload(t, ns, "warehouse-1", "warehouse", nil)
	vm := &meshv1alpha1.MeshVM{
		ObjectMeta: metav1.ObjectMeta{Name: "warehouse-vm", Namespace: ns},
		Spec: meshv1alpha1.MeshVMSpec{
			Mesh: meshName, ServiceAccountName: "warehouse", Addresses: []string{"192.0.2.32"},
			Ports: []meshv1alpha1.VMPort{{Name: "http", Port: 8080, Protocol: meshv1alpha1.ProtocolHTTP}},
		},
	}
	mustCreate(t, vm)
	testenv.Eventually(t, 10*time.Second, func() error {
		return informers.Get(ctx, client.ObjectKeyFromObject(vm), &meshv1alpha1.MeshVM{})
	})
	for _, tc := range []struct {
		name string
		kp   *testpki.KeyPair
		node string
	}{
		{"the VM's certificate for a pod's node", &warehouse, nodeID(ns, "buyer-1")},
		{"a pod's certificate for the VM's node", &buyer, "vm~" + ns + "~warehouse-vm"},
		{"a pod's certificate for a VM node named like the pod", &buyer, "vm~" + ns + "~buyer-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := xdstest.OpenStream(ctx, connect(t, tc.kp), tc.node)
			if err == nil {
				err = s.Subscribe(resourcev3.SecretType, nil)
			}
			if err == nil {
				_, err = s.Recv()
			}
			if status.Code(err) != codes.PermissionDenied {
				t.Fatalf("got %v, want PermissionDenied", err)
			}
		})
	}
}

// openSecrets opens a stream as node with kp and waits for its secrets.
func openSecrets(t *testing.T, ctx context.Context, kp *testpki.KeyPair, node string) *xdstest.Stream {
	t.Helper()
	s, err := xdstest.OpenStream(ctx, connect(t, kp), node)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Subscribe(resourcev3.SecretType, nil); err != nil {
		t.Fatal(err)
	}
	awaitSotW(t, s, func(r *discoveryv3.DiscoveryResponse) bool { return len(r.GetResources()) > 0 })
	return s
}

// A stream proves nothing past its certificate's expiry: its connection
// ends then, and the proxy must connect again with a current certificate.
func TestAStreamEndsWhenItsCertificateExpires(t *testing.T) {
	ctx := testContext(t)
	ns := memberNamespace(t)
	workload(t, ns, "buyer-1", "buyer", nil)
	kp, err := ca.WorkloadUntil(mesh.Identity{Namespace: ns, ServiceAccount: "buyer"}.SPIFFE("cluster.local"), time.Now().Add(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	s := openSecrets(t, ctx, &kp, nodeID(ns, "buyer-1"))
	start := time.Now()
	err = awaitEnd(t, s, mesh.Identity{Namespace: ns, ServiceAccount: "buyer"}.SPIFFE("cluster.local"))
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("the stream ended with %v, want Unavailable as its connection closed", err)
	}
	t.Logf("the stream ended %s after it was served", time.Since(start).Round(100*time.Millisecond))
}

// A namespace that leaves its mesh ends the streams of its proxies, and a
// mesh whose roots change ends the streams whose certificates chain to a
// root it no longer trusts.
func TestStreamsEndWhenTheirMeshNoLongerHoldsThem(t *testing.T) {
	ctx := testContext(t)
	t.Run("the namespace leaves the mesh", func(t *testing.T) {
		ns := memberNamespace(t)
		kp := workload(t, ns, "buyer-1", "buyer", nil)
		s := openSecrets(t, ctx, &kp, nodeID(ns, "buyer-1"))
		n := &corev1.Namespace{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: ns}, n); err != nil {
			t.Fatal(err)
		}
		delete(n.Labels, meshv1alpha1.MonitorLabel)
		if err := k8s.Update(ctx, n); err != nil {
			t.Fatal(err)
		}
		if err := awaitEnd(t, s, mesh.Identity{Namespace: ns, ServiceAccount: "buyer"}.SPIFFE("cluster.local")); status.Code(err) != codes.Unavailable {
			t.Fatalf("the stream ended with %v", err)
		}
	})
	t.Run("the mesh's roots change", func(t *testing.T) {
		name := fmt.Sprintf("rotating-%d", seq.Add(1))
		if err := createMesh(ctx, name, "", ca); err != nil {
			t.Fatal(err)
		}
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("xds-%d", seq.Add(1)), Labels: map[string]string{meshv1alpha1.MonitorLabel: name},
		}}
		mustCreate(t, ns)
		kp := workload(t, ns.Name, "buyer-1", "buyer", nil)
		s := openSecrets(t, ctx, &kp, nodeID(ns.Name, "buyer-1"))
		other, err := testpki.NewCA("another root")
		if err != nil {
			t.Fatal(err)
		}
		mi := &meshv1alpha1.MeshInstance{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: name}, mi); err != nil {
			t.Fatal(err)
		}
		mi.Status.TrustBundle[0].SHA256Fingerprint = meshv1alpha1.Fingerprint(other.Cert)
		if err := k8s.Status().Update(ctx, mi); err != nil {
			t.Fatal(err)
		}
		if err := awaitEnd(t, s, mesh.Identity{Namespace: ns.Name, ServiceAccount: "buyer"}.SPIFFE("cluster.local")); status.Code(err) != codes.Unavailable {
			t.Fatalf("the stream ended with %v", err)
		}
	})
}
