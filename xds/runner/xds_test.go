package runner_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/internal/testpki"
	"github.com/open-service-mesh/osm-operator/xds/translate"
	"github.com/open-service-mesh/osm-operator/xds/xdstest"
)

// clusterNames are the names of the clusters of a CDS response.
func clusterNames(t *testing.T, r *discoveryv3.DiscoveryResponse) []string {
	t.Helper()
	var out []string
	for _, a := range r.GetResources() {
		c := &clusterv3.Cluster{}
		if err := a.UnmarshalTo(c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c.GetName())
	}
	slices.Sort(out)
	return out
}

// TestProxyReceivesItsGroupsConfig applies a namespace, pods, a Service, its
// EndpointSlice and an SMI policy through the API server, in each order,
// and checks what an ADS client holding the caller's certificate receives;
// then deletes the Service and checks that its cluster goes.
func TestProxyReceivesItsGroupsConfig(t *testing.T) {
	forEachOrder(t, testProxyReceivesItsGroupsConfig)
}

func testProxyReceivesItsGroupsConfig(t *testing.T, o order) {
	ctx := testContext(t)
	ns, buyer, _ := shopIn(t, o)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "store"}}

	s, err := xdstest.OpenStream(ctx, connect(t, &buyer), nodeID(ns, "buyer-1"))
	if err != nil {
		t.Fatal(err)
	}
	storeCluster := "out|" + ns + "/store|80"
	if err := s.Subscribe(resourcev3.ClusterType, nil); err != nil {
		t.Fatal(err)
	}
	r := awaitSotW(t, s, func(r *discoveryv3.DiscoveryResponse) bool {
		return r.GetTypeUrl() == resourcev3.ClusterType && slices.Contains(clusterNames(t, r), storeCluster)
	})
	// The blackhole is where the outbound listener sends what no chain
	// matches (the shop's egress is denied).
	if got := clusterNames(t, r); !slices.Equal(got, []string{translate.BlackholeCluster, storeCluster, translate.AdminCluster}) {
		t.Errorf("clusters = %v", got)
	}

	// The endpoints of the store, and the buyer's own certificate over SDS.
	if err := s.Subscribe(resourcev3.EndpointType, []string{storeCluster}); err != nil {
		t.Fatal(err)
	}
	r = awaitSotW(t, s, func(r *discoveryv3.DiscoveryResponse) bool {
		return r.GetTypeUrl() == resourcev3.EndpointType && len(r.GetResources()) == 1
	})
	cla := &endpointv3.ClusterLoadAssignment{}
	if err := r.GetResources()[0].UnmarshalTo(cla); err != nil {
		t.Fatal(err)
	}
	ep := cla.GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
	if ep.GetAddress() != "10.1.0.5" || ep.GetPortValue() != 8080 {
		t.Errorf("endpoint = %s:%d, want 10.1.0.5:8080", ep.GetAddress(), ep.GetPortValue())
	}
	// Envoy asks for every secret its clusters and listeners name, in one request.
	if err := s.Subscribe(resourcev3.SecretType, []string{translate.IdentitySecret, translate.TrustBundleSecret}); err != nil {
		t.Fatal(err)
	}
	r = awaitSotW(t, s, func(r *discoveryv3.DiscoveryResponse) bool {
		return r.GetTypeUrl() == resourcev3.SecretType && len(r.GetResources()) == 2
	})
	sec := &tlsv3.Secret{}
	if err := r.GetResources()[0].UnmarshalTo(sec); err != nil {
		t.Fatal(err)
	}
	if sec.GetName() != translate.IdentitySecret {
		if err := r.GetResources()[1].UnmarshalTo(sec); err != nil {
			t.Fatal(err)
		}
	}
	if string(sec.GetTlsCertificate().GetCertificateChain().GetInlineBytes()) != string(buyer.CertPEM) {
		t.Error("the identity secret is not the buyer's certificate")
	}

	// Deleting the Service removes its cluster.
	if err := k8s.Delete(ctx, svc); err != nil {
		t.Fatal(err)
	}
	awaitSotW(t, s, func(r *discoveryv3.DiscoveryResponse) bool {
		return r.GetTypeUrl() == resourcev3.ClusterType && !slices.Contains(clusterNames(t, r), storeCluster)
	})
}

// TestServerRefusesProxiesThatAreNotWhoTheySay: a proxy must prove, with a
// certificate from the mesh CA, the identity of the workload its node ID names.
func TestServerRefusesProxiesThatAreNotWhoTheySay(t *testing.T) {
	ns := memberNamespace(t)
	workload(t, ns, "buyer-1", "buyer", nil)
	thief := workload(t, ns, "thief-1", "thief", nil)
	other, err := testpki.NewCA("another root")
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.Workload("spiffe://cluster.local/ns/" + ns + "/sa/buyer")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		kp   *testpki.KeyPair
		node string
		code codes.Code
	}{
		{"another identity's node ID", &thief, nodeID(ns, "buyer-1"), codes.PermissionDenied},
		{"a pod that does not exist", &thief, nodeID(ns, "ghost-1"), codes.PermissionDenied},
		{"a malformed node ID", &thief, "thief-1", codes.PermissionDenied},
		{"no client certificate", nil, nodeID(ns, "buyer-1"), codes.Unavailable},
		{"a certificate from another CA", &foreign, nodeID(ns, "buyer-1"), codes.Unavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			s, err := xdstest.OpenStream(ctx, connect(t, tc.kp), tc.node)
			if err == nil {
				err = s.Subscribe(resourcev3.SecretType, []string{translate.IdentitySecret})
			}
			if err == nil {
				_, err = s.Recv()
			}
			if status.Code(err) != tc.code {
				t.Fatalf("got %v, want code %s", err, tc.code)
			}
		})
	}
}

// TestDeltaSendsOnlyTheChangedEndpoints: after an endpoint change, a delta
// stream receives the one changed resource and nothing else.
func TestDeltaSendsOnlyTheChangedEndpoints(t *testing.T) {
	ctx := testContext(t)
	ns := memberNamespace(t)
	buyer := workload(t, ns, "buyer-1", "buyer", nil)
	workload(t, ns, "store-1", "store", nil)
	workload(t, ns, "store-2", "store", nil)
	service(t, ns, "store", "http", 80, "http")
	service(t, ns, "books", "http", 80, "http")
	es := endpointSlice(t, ns, "store", "http", 8080, map[string]string{"store-1": "10.1.0.5"})
	endpointSlice(t, ns, "books", "http", 8080, map[string]string{"store-2": "10.1.0.6"})
	allow(t, ns, "buyer", "store")

	d, err := xdstest.OpenDeltaStream(ctx, connect(t, &buyer), nodeID(ns, "buyer-1"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"out|" + ns + "/books|80", "out|" + ns + "/store|80"}
	if err := d.Subscribe(resourcev3.EndpointType, want); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	got := map[string]bool{}
	for len(got) < 2 && time.Now().Before(deadline) {
		r, err := d.Recv()
		if err != nil {
			t.Fatal(err)
		}
		for _, res := range r.GetResources() {
			got[res.GetName()] = true
		}
		if err := d.ACK(r); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 2 {
		t.Fatalf("received endpoints of %v, want %v", got, want)
	}

	es.Endpoints[0].Addresses = []string{"10.1.0.7"}
	if err := k8s.Update(ctx, es); err != nil {
		t.Fatal(err)
	}
	r, err := d.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.GetResources()) != 1 || r.GetResources()[0].GetName() != want[1] || len(r.GetRemovedResources()) != 0 {
		var sent []string
		for _, res := range r.GetResources() {
			sent = append(sent, res.GetName())
		}
		t.Fatalf("delta response carried %v (removed %v), want only %s", sent, r.GetRemovedResources(), want[1])
	}
	cla := &endpointv3.ClusterLoadAssignment{}
	if err := r.GetResources()[0].GetResource().UnmarshalTo(cla); err != nil {
		t.Fatal(err)
	}
	if a := cla.GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress().GetAddress(); a != "10.1.0.7" {
		t.Errorf("endpoint address %s, want 10.1.0.7", a)
	}
}

// TestNACKIsRecorded: a proxy's rejection is kept with its detail.
func TestNACKIsRecorded(t *testing.T) {
	ctx := testContext(t)
	ns := memberNamespace(t)
	buyer := workload(t, ns, "buyer-1", "buyer", nil)
	s, err := xdstest.OpenStream(ctx, connect(t, &buyer), nodeID(ns, "buyer-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Subscribe(resourcev3.ListenerType, nil); err != nil {
		t.Fatal(err)
	}
	r, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.NACK(r, "", "listener rejected: test"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		for _, p := range xds.Proxies() {
			if p.NodeID == nodeID(ns, "buyer-1") && p.LastNACK != nil {
				if !strings.Contains(p.LastNACK.Detail, "listener rejected: test") || p.LastNACK.TypeURL != resourcev3.ListenerType {
					t.Fatalf("NACK recorded as %+v", p.LastNACK)
				}
				return nil
			}
		}
		return errors.New("the NACK was not recorded")
	})
}

// TestANACKingProxyIsBackedOff: a proxy that keeps rejecting its config is
// answered with growing pauses, not in a tight loop.
func TestANACKingProxyIsBackedOff(t *testing.T) {
	ctx := testContext(t)
	ns := memberNamespace(t)
	buyer := workload(t, ns, "buyer-1", "buyer", nil)
	conn := connect(t, &buyer)
	// The server believes the node once its pod is in the server's cache.
	var s *xdstest.Stream
	var first *discoveryv3.DiscoveryResponse
	testenv.Eventually(t, 10*time.Second, func() error {
		var err error
		if s, err = xdstest.OpenStream(ctx, conn, nodeID(ns, "buyer-1")); err != nil {
			return err
		}
		if err := s.Subscribe(resourcev3.ListenerType, nil); err != nil {
			return err
		}
		first, err = s.Recv()
		return err
	})
	start := time.Now()
	responses := 0
	for time.Since(start) < 1500*time.Millisecond {
		r := first
		if r == nil {
			var err error
			if r, err = s.Recv(); err != nil {
				t.Fatal(err)
			}
		}
		first = nil
		responses++
		if err := s.NACK(r, "", "cannot take it"); err != nil {
			t.Fatal(err)
		}
	}
	// Pauses of 100, 200, 400 and 800 ms fit about five answers in 1.5 s.
	if responses > 6 {
		t.Errorf("%d responses in %s to a proxy that NACKs each", responses, time.Since(start).Round(time.Millisecond))
	}
}

// TestMeshVMProxyGetsItsIdentitysConfig: a VM's proxy, named vm~<ns>~<meshvm>,
// is served as the MeshVM's service account, and refused as anyone else.
func TestMeshVMProxyGetsItsIdentitysConfig(t *testing.T) {
	ctx := testContext(t)
	ns := memberNamespace(t)
	workload(t, ns, "buyer-1", "buyer", nil)
	warehouse := workload(t, ns, "warehouse-1", "warehouse", nil)
	vm := &meshv1alpha1.MeshVM{
		ObjectMeta: metav1.ObjectMeta{Name: "warehouse-vm", Namespace: ns},
		Spec: meshv1alpha1.MeshVMSpec{
			Mesh: meshName, ServiceAccountName: "warehouse", Addresses: []string{"192.0.2.30"},
			Ports: []meshv1alpha1.VMPort{{Name: "http", Port: 8080, Protocol: meshv1alpha1.ProtocolHTTP}},
		},
	}
	mustCreate(t, vm)
	service(t, ns, "buyer", "http", 80, "http")
	endpointSlice(t, ns, "buyer", "http", 8080, map[string]string{"buyer-1": "10.1.0.9"})
	allow(t, ns, "warehouse", "buyer")

	vmConn := connect(t, &warehouse)
	s, err := xdstest.OpenStream(ctx, vmConn, "vm~"+ns+"~warehouse-vm")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Subscribe(resourcev3.ClusterType, nil); err != nil {
		t.Fatal(err)
	}
	awaitSotW(t, s, func(r *discoveryv3.DiscoveryResponse) bool {
		return slices.Contains(clusterNames(t, r), "out|"+ns+"/buyer|80")
	})
	found := false
	for _, p := range xds.Proxies() {
		found = found || p.NodeID == "vm~"+ns+"~warehouse-vm" && p.Group == "envoy/"+ns+"/warehouse"
	}
	if !found {
		t.Errorf("the VM's proxy is not listed in its group: %+v", xds.Proxies())
	}
	// The server reports the VM's connection and its end (the census
	// publishes it, and the MeshVM controller writes the status: the xDS
	// server writes none, see controllers' TestVMStatusFromTheCensus).
	listed := func(want bool) func() error {
		return func() error {
			for _, p := range xds.Proxies() {
				if p.NodeID == "vm~"+ns+"~warehouse-vm" {
					if !want {
						return fmt.Errorf("the VM's proxy is still listed")
					}
					return nil
				}
			}
			if want {
				return fmt.Errorf("the VM's proxy is not listed")
			}
			return nil
		}
	}
	testenv.Eventually(t, 20*time.Second, listed(true))
	_ = vmConn.Close()
	testenv.Eventually(t, 20*time.Second, listed(false))
	if got := (&meshv1alpha1.MeshVM{}); k8s.Get(ctx, client.ObjectKeyFromObject(vm), got) == nil && got.Status.Proxy != nil {
		t.Errorf("the xDS server wrote the VM's status.proxy: %+v", got.Status.Proxy)
	}

	buyer := workload(t, ns, "buyer-2", "buyer", nil)
	s2, err := xdstest.OpenStream(ctx, connect(t, &buyer), "vm~"+ns+"~warehouse-vm")
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Subscribe(resourcev3.ClusterType, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Recv(); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a buyer claiming the VM got %v, want PermissionDenied", err)
	}
}
