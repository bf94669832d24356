package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/go-logr/logr"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/open-service-mesh/osm-operator/internal/testpki"
	"github.com/open-service-mesh/osm-operator/xds/cache"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// nodeAuthorizer places each node in the group of the identity it claims,
// checked against the certificate, as WorkloadAuthorizer does with pods.
type nodeAuthorizer map[string]mesh.Identity

func (a nodeAuthorizer) Authorize(_ context.Context, nodeID string, peer mesh.Identity) (mesh.Group, error) {
	if a[nodeID] != peer {
		return mesh.Group{}, fmt.Errorf("%w: %s is not %s", ErrDenied, nodeID, peer)
	}
	return mesh.Group{Kind: mesh.ProxyEnvoy, Identity: peer}, nil
}

// peerContext is a stream context whose peer presented a certificate for id.
func peerContext(t *testing.T, ca *testpki.CA, id mesh.Identity) context.Context {
	t.Helper()
	kp, err := ca.Workload(fmt.Sprintf("spiffe://cluster.local/ns/%s/sa/%s", id.Namespace, id.ServiceAccount))
	if err != nil {
		t.Fatal(err)
	}
	c, err := kp.TLS()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	info := credentials.TLSInfo{State: tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{leaf, ca.Cert}}}}
	return peer.NewContext(context.Background(), &peer.Peer{AuthInfo: info})
}

// go-control-plane numbers state-of-the-world and delta streams separately,
// so a SotW stream and a delta stream can have the same number. Each must
// keep its own peer: before, the second open replaced the first's, so one
// proxy was checked against the other's certificate (seen with a fleet of
// mixed proxies as PermissionDenied and "unknown stream").
func TestSotWAndDeltaStreamsWithTheSameNumber(t *testing.T) {
	ca, err := testpki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	buyer := mesh.Identity{Namespace: "shop", ServiceAccount: "buyer"}
	store := mesh.Identity{Namespace: "shop", ServiceAccount: "store"}
	nodes := &cache.Nodes{}
	c := newCallbacks(logr.Discard(), nodeAuthorizer{"sidecar~shop~buyer-1": buyer, "sidecar~shop~store-1": store}, nodes)

	if err := c.OnStreamOpen(peerContext(t, ca, buyer), 1, ""); err != nil {
		t.Fatal(err)
	}
	if err := c.OnDeltaStreamOpen(peerContext(t, ca, store), 1, ""); err != nil {
		t.Fatal(err)
	}
	if err := c.OnStreamRequest(1, &discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "sidecar~shop~buyer-1"}}); err != nil {
		t.Errorf("SotW stream of the buyer: %v", err)
	}
	if err := c.OnStreamDeltaRequest(1, &discoveryv3.DeltaDiscoveryRequest{Node: &corev3.Node{Id: "sidecar~shop~store-1"}}); err != nil {
		t.Errorf("delta stream of the store: %v", err)
	}
	for node, want := range map[string]string{"sidecar~shop~buyer-1": "envoy/shop/buyer", "sidecar~shop~store-1": "envoy/shop/store"} {
		if got := nodes.ID(&corev3.Node{Id: node}); got != want {
			t.Errorf("node %s is in group %q, want %q", node, got, want)
		}
	}

	// Closing one leaves the other connected.
	c.OnStreamClosed(1, nil)
	if got := nodes.ID(&corev3.Node{Id: "sidecar~shop~store-1"}); got != "envoy/shop/store" {
		t.Errorf("after the SotW stream closed, the delta stream's node is in group %q", got)
	}
	if got := nodes.ID(&corev3.Node{Id: "sidecar~shop~buyer-1"}); got != "" {
		t.Errorf("the closed SotW stream's node is still in group %q", got)
	}
}
