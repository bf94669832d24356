package runner_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/go-logr/logr"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/internal/testpki"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/server"
	"github.com/open-service-mesh/osm-operator/xds/xdstest"
)

// countingAuthorizer is an Authorizer that counts each node's
// authorizations: a stream's, and each recheck of it.
type countingAuthorizer struct {
	server.Authorizer
	mu    sync.Mutex
	calls map[string]int
}

func (a *countingAuthorizer) Authorize(ctx context.Context, nodeID string, peer server.Peer) (mesh.Group, error) {
	a.mu.Lock()
	a.calls[nodeID]++
	a.mu.Unlock()
	return a.Authorizer.Authorize(ctx, nodeID, peer)
}

func (a *countingAuthorizer) count(nodeID string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[nodeID]
}

// countingServer starts an xDS server of its own, as the control plane's but
// with a countingAuthorizer, over the suite's informers and snapshots, and
// returns it with its address.
func countingServer(t *testing.T, ctx context.Context) (*countingAuthorizer, string) {
	t.Helper()
	auth := &countingAuthorizer{Authorizer: server.WorkloadAuthorizer{Reader: informers}, calls: map[string]int{}}
	srv := server.New(server.Options{
		Address: "127.0.0.1:0",
		TLS: func(*tls.ClientHelloInfo) (*tls.Certificate, *x509.CertPool, error) {
			return servingCert, ca.Pool(), nil
		},
		Authorizer: auth, Cache: snapshots, Nodes: nodes, Workloads: informers, Log: logr.Discard(),
	})
	go func() { _ = srv.Start(ctx) }()
	a, err := srv.Addr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return auth, a.String()
}

// A change of one mesh's trust domain or roots rechecks the streams of that
// mesh's workloads only, and ends those it no longer trusts. Before, it
// rechecked every stream of every mesh: with thousands of proxies, one
// mesh's root rotation authorized all of them again.
func TestAMeshsTrustChangeRechecksOnlyItsOwnStreams(t *testing.T) {
	ctx := testContext(t)
	auth, at := countingServer(t, ctx)
	// Each mesh has a namespace with a pod's proxy and a MeshVM's.
	type side struct {
		mesh, ns string
		streams  map[string]*xdstest.Stream // by node
	}
	var sides [2]*side
	for i := range sides {
		s := &side{mesh: fmt.Sprintf("trust-%d", seq.Add(1))}
		if err := createMesh(ctx, s.mesh, "", ca); err != nil {
			t.Fatal(err)
		}
		sides[i] = s
	}
	for _, s := range sides {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("xds-%d", seq.Add(1)), Labels: map[string]string{meshv1alpha1.MonitorLabel: s.mesh},
		}}
		mustCreate(t, ns)
		s.ns = ns.Name
		kp := workload(t, s.ns, "buyer-1", "buyer", nil)
		vm := &meshv1alpha1.MeshVM{
			ObjectMeta: metav1.ObjectMeta{Name: "buyer-vm", Namespace: s.ns},
			Spec: meshv1alpha1.MeshVMSpec{
				Mesh: s.mesh, ServiceAccountName: "buyer", Addresses: []string{"192.0.2.41"},
				Ports: []meshv1alpha1.VMPort{{Name: "http", Port: 8080, Protocol: meshv1alpha1.ProtocolHTTP}},
			},
		}
		mustCreate(t, vm)
		testenv.Eventually(t, 10*time.Second, func() error {
			return informers.Get(ctx, client.ObjectKeyFromObject(vm), &meshv1alpha1.MeshVM{})
		})
		s.streams = map[string]*xdstest.Stream{}
		for _, node := range []string{nodeID(s.ns, "buyer-1"), "vm~" + s.ns + "~buyer-vm"} {
			s.streams[node] = openSecretsAt(t, ctx, at, &kp, node)
		}
	}
	a, b := sides[0], sides[1]
	// Authorized as they connected, and perhaps rechecked since.
	before := map[string]int{}
	for _, s := range sides {
		for node := range s.streams {
			before[node] = auth.count(node)
		}
	}
	updateMesh := func(name string, change func(*meshv1alpha1.MeshInstance)) {
		t.Helper()
		mi := &meshv1alpha1.MeshInstance{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: name}, mi); err != nil {
			t.Fatal(err)
		}
		// An update returns the object as stored, the status unchanged:
		// change its status again for the status update.
		change(mi)
		if err := k8s.Update(ctx, mi); err != nil {
			t.Fatal(err)
		}
		change(mi)
		if err := k8s.Status().Update(ctx, mi); err != nil {
			t.Fatal(err)
		}
	}

	// Mesh b trusts one more root: its streams are rechecked, and stay.
	another, err := testpki.NewCA("another root")
	if err != nil {
		t.Fatal(err)
	}
	updateMesh(b.mesh, func(mi *meshv1alpha1.MeshInstance) {
		mi.Status.TrustBundle = append(mi.Status.TrustBundle, meshv1alpha1.TrustAnchorOf(another.Cert))
	})
	testenv.Eventually(t, 10*time.Second, func() error {
		for node := range b.streams {
			if n := auth.count(node) - before[node]; n != 1 {
				return fmt.Errorf("%s was rechecked %d times, want once", node, n)
			}
		}
		return nil
	})
	// Mesh a changes its trust domain: its streams end, as their
	// certificate is of the former one.
	updateMesh(a.mesh, func(mi *meshv1alpha1.MeshInstance) { mi.Spec.TrustDomain = a.mesh + ".example" })
	for node, st := range a.streams {
		if err := awaitEnd(t, st, mesh.Identity{Namespace: a.ns, ServiceAccount: "buyer"}.SPIFFE("cluster.local")); status.Code(err) != codes.Unavailable {
			t.Fatalf("the stream of %s ended with %v", node, err)
		}
	}
	// Each was rechecked by its own mesh's change only, and mesh b's
	// proxies are connected still.
	time.Sleep(500 * time.Millisecond)
	for _, s := range sides {
		for node := range s.streams {
			if n := auth.count(node) - before[node]; n != 1 {
				t.Errorf("%s was rechecked %d times, want once: for its own mesh's change", node, n)
			}
		}
	}
	for node, st := range b.streams {
		if err := st.Subscribe(resourcev3.ClusterType, nil); err != nil {
			t.Errorf("the stream of %s: %v", node, err)
			continue
		}
		if _, err := st.Recv(); err != nil {
			t.Errorf("the stream of %s: %v", node, err)
		}
	}
}

// openSecretsAt is openSecrets on the xDS server at addr.
func openSecretsAt(t *testing.T, ctx context.Context, addr string, kp *testpki.KeyPair, node string) *xdstest.Stream {
	t.Helper()
	cert, err := kp.TLS()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := xdstest.Dial(addr, "localhost", &cert, ca.Pool())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	s, err := xdstest.OpenStream(ctx, conn, node)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Subscribe(resourcev3.SecretType, nil); err != nil {
		t.Fatal(err)
	}
	awaitSotW(t, s, func(r *discoveryv3.DiscoveryResponse) bool { return len(r.GetResources()) > 0 })
	return s
}

// A MeshVM in a namespace in no mesh is of the mesh its spec names: that
// mesh's trust change rechecks its stream, and another mesh's does not.
// The namespace has no mesh label to match, so the server reads the VM
// (inMesh in xds/server/server.go). Without that, the VM's stream kept a
// trust its mesh no longer had; matching every VM instead rechecks each
// of them at every mesh's change.
func TestAVMInANamespaceOfNoMeshIsRecheckedByItsOwnMeshOnly(t *testing.T) {
	ctx := testContext(t)
	auth, at := countingServer(t, ctx)
	own, other := fmt.Sprintf("vm-own-%d", seq.Add(1)), fmt.Sprintf("vm-other-%d", seq.Add(1))
	for _, m := range []string{own, other} {
		if err := createMesh(ctx, m, "", ca); err != nil {
			t.Fatal(err)
		}
	}
	// A pod's proxy in a namespace of the other mesh: its rechecks say how
	// far the server has got through the meshes' changes.
	otherNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: fmt.Sprintf("xds-%d", seq.Add(1)), Labels: map[string]string{meshv1alpha1.MonitorLabel: other},
	}}
	vmNS := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("xds-%d", seq.Add(1))}}
	mustCreate(t, otherNS, vmNS)
	podKP := workload(t, otherNS.Name, "buyer-1", "buyer", nil)
	podNode := nodeID(otherNS.Name, "buyer-1")
	openSecretsAt(t, ctx, at, &podKP, podNode)

	vmKP := workload(t, vmNS.Name, "identity-1", "warehouse", nil) // the VM's identity and its Secret
	vm := &meshv1alpha1.MeshVM{
		ObjectMeta: metav1.ObjectMeta{Name: "warehouse-vm", Namespace: vmNS.Name},
		Spec: meshv1alpha1.MeshVMSpec{
			Mesh: own, ServiceAccountName: "warehouse", Addresses: []string{"192.0.2.42"},
			Ports: []meshv1alpha1.VMPort{{Name: "http", Port: 8080, Protocol: meshv1alpha1.ProtocolHTTP}},
		},
	}
	mustCreate(t, vm)
	testenv.Eventually(t, 10*time.Second, func() error {
		return informers.Get(ctx, client.ObjectKeyFromObject(vm), &meshv1alpha1.MeshVM{})
	})
	vmNode := mesh.VMNodeID(vm.Namespace, vm.Name)
	vmStream := openSecretsAt(t, ctx, at, &vmKP, vmNode)
	beforeVM, beforePod := auth.count(vmNode), auth.count(podNode)

	// Each mesh trusts one more root: the VM's first, then the other twice.
	// The server handles the meshes' changes one after the other, in
	// order: once the pod is rechecked for the other mesh's second change,
	// it is done with its first, and with the VM's mesh's before it.
	trustAnother := func(name string) {
		t.Helper()
		root, err := testpki.NewCA("another root")
		if err != nil {
			t.Fatal(err)
		}
		mi := &meshv1alpha1.MeshInstance{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: name}, mi); err != nil {
			t.Fatal(err)
		}
		mi.Status.TrustBundle = append(mi.Status.TrustBundle, meshv1alpha1.TrustAnchorOf(root.Cert))
		if err := k8s.Status().Update(ctx, mi); err != nil {
			t.Fatal(err)
		}
	}
	trustAnother(own)
	trustAnother(other)
	trustAnother(other)
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := auth.count(podNode) - beforePod; n < 2 {
			return fmt.Errorf("the pod of mesh %s was rechecked %d times, want 2: its mesh's changes are not handled yet", other, n)
		}
		return nil
	})
	if n := auth.count(vmNode) - beforeVM; n != 1 {
		t.Errorf("the VM of mesh %s in a namespace of no mesh was rechecked %d times, want once: for its own mesh's change", own, n)
	}
	// Rechecked and still trusted: its stream is served.
	if err := vmStream.Subscribe(resourcev3.ClusterType, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := vmStream.Recv(); err != nil {
		t.Errorf("the VM's stream: %v", err)
	}
}
