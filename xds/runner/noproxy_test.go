package runner_test

import (
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/xdstest"
)

// A Deployment half rolled into the mesh, through the API server: store-1
// has its sidecar, store-2 (created before the namespace joined) has none.
// The buyer's proxy is sent the store's cluster with mutual TLS as its
// default socket and a transport socket match for endpoints without a
// proxy, and store-2's endpoint labelled for it; store-2 is no proxy group.
// (There is no Envoy here, and grpc-go implements no transport socket
// matching: what Envoy does with it is the translation's tests and Envoy's
// load rules.)
func TestAHalfRolledServiceIsServedWithPlaintextForThePodWithoutAProxy(t *testing.T) {
	ctx := testContext(t)
	ns, buyer, _ := shop(t)
	uninjected(t, ns, "store-2", "store-legacy", "10.1.0.6")
	mustCreate(t, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "store-2", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: "store"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
		Endpoints: []discoveryv1.Endpoint{{
			Addresses: []string{"10.1.0.6"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "store-2", Namespace: ns},
		}},
	})

	s, err := xdstest.OpenStream(ctx, connect(t, &buyer), nodeID(ns, "buyer-1"))
	if err != nil {
		t.Fatal(err)
	}
	storeCluster := "out|" + ns + "/store|80"
	if err := s.Subscribe(resourcev3.ClusterType, nil); err != nil {
		t.Fatal(err)
	}
	var store *clusterv3.Cluster
	awaitSotW(t, s, func(r *discoveryv3.DiscoveryResponse) bool {
		for _, a := range r.GetResources() {
			c := &clusterv3.Cluster{}
			if err := a.UnmarshalTo(c); err != nil {
				t.Fatal(err)
			}
			if c.GetName() == storeCluster && len(c.GetTransportSocketMatches()) == 1 {
				store = c
				return true
			}
		}
		return false
	})
	if store.GetTransportSocket().GetName() != "envoy.transport_sockets.tls" {
		t.Errorf("the store's default socket is %q, want mutual TLS", store.GetTransportSocket().GetName())
	}
	if err := s.Subscribe(resourcev3.EndpointType, []string{storeCluster}); err != nil {
		t.Fatal(err)
	}
	labelled := map[string]bool{}
	awaitSotW(t, s, func(r *discoveryv3.DiscoveryResponse) bool {
		if r.GetTypeUrl() != resourcev3.EndpointType || len(r.GetResources()) != 1 {
			return false
		}
		cla := &endpointv3.ClusterLoadAssignment{}
		if err := r.GetResources()[0].UnmarshalTo(cla); err != nil {
			t.Fatal(err)
		}
		clear(labelled)
		for _, l := range cla.GetEndpoints() {
			for _, e := range l.GetLbEndpoints() {
				_, ok := e.GetMetadata().GetFilterMetadata()["envoy.transport_socket_match"]
				labelled[e.GetEndpoint().GetAddress().GetSocketAddress().GetAddress()] = ok
			}
		}
		return len(labelled) == 2
	})
	if !labelled["10.1.0.6"] || labelled["10.1.0.5"] {
		t.Errorf("endpoints labelled for plaintext: %v, want 10.1.0.6 alone", labelled)
	}
	legacy := mesh.Group{Kind: mesh.ProxyEnvoy, Identity: mesh.Identity{Namespace: ns, ServiceAccount: "store-legacy"}}.String()
	if _, ok := snapshots.Versions()[legacy]; ok {
		t.Errorf("the pod without a proxy has a snapshot")
	}
}
