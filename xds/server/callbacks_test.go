package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"maps"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/go-logr/logr"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/open-service-mesh/osm-operator/internal/san"
	"github.com/open-service-mesh/osm-operator/internal/testpki"
	"github.com/open-service-mesh/osm-operator/xds/cache"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// nodeAuthorizer places each node in the group of the identity it claims,
// checked against the certificate, as WorkloadAuthorizer does with pods.
type nodeAuthorizer map[string]mesh.Identity

func (a nodeAuthorizer) Authorize(_ context.Context, nodeID string, peer Peer) (mesh.Group, error) {
	if a[nodeID] != peer.Identity {
		return mesh.Group{}, fmt.Errorf("%w: %s is not %s", ErrDenied, nodeID, peer)
	}
	return mesh.Group{Kind: mesh.ProxyEnvoy, Identity: peer.Identity}, nil
}

// groups are the groups of the connected proxies, by node ID.
func groups(c *callbacks) map[string]string {
	out := map[string]string{}
	for _, p := range c.Proxies() {
		out[p.NodeID] = p.Group
	}
	return out
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
	sotw := &discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "sidecar~shop~buyer-1"}}
	if err := c.OnStreamRequest(1, sotw); err != nil {
		t.Errorf("SotW stream of the buyer: %v", err)
	}
	delta := &discoveryv3.DeltaDiscoveryRequest{Node: &corev3.Node{Id: "sidecar~shop~store-1"}}
	if err := c.OnStreamDeltaRequest(1, delta); err != nil {
		t.Errorf("delta stream of the store: %v", err)
	}
	want := map[string]string{"sidecar~shop~buyer-1": "envoy/shop/buyer", "sidecar~shop~store-1": "envoy/shop/store"}
	if got := groups(c); !maps.Equal(got, want) {
		t.Errorf("groups %v, want %v", got, want)
	}
	// The cache is shown each stream's pinned node, in its group.
	if got := nodes.ID(sotw.Node); got != "envoy/shop/buyer" {
		t.Errorf("the SotW stream's node is in group %q", got)
	}
	if got := nodes.ID(delta.Node); got != "envoy/shop/store" {
		t.Errorf("the delta stream's node is in group %q", got)
	}

	// Closing one leaves the other connected.
	c.OnStreamClosed(1, nil)
	if got := nodes.ID(delta.Node); got != "envoy/shop/store" {
		t.Errorf("after the SotW stream closed, the delta stream's node is in group %q", got)
	}
	if got := nodes.ID(sotw.Node); got != "" {
		t.Errorf("the closed SotW stream's node is still in group %q", got)
	}
}

// A node the proxy sends is in no group, whatever its ID: the cache finds a
// group only for the node a stream was pinned to.
func TestANodeAProxySendsIsInNoGroup(t *testing.T) {
	ca, err := testpki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	buyer := mesh.Identity{Namespace: "shop", ServiceAccount: "buyer"}
	nodes := &cache.Nodes{}
	c := newCallbacks(logr.Discard(), nodeAuthorizer{"sidecar~shop~buyer-1": buyer}, nodes)
	if err := c.OnStreamOpen(peerContext(t, ca, buyer), 1, ""); err != nil {
		t.Fatal(err)
	}
	sent := &corev3.Node{Id: "sidecar~shop~buyer-1"}
	r := &discoveryv3.DiscoveryRequest{Node: sent}
	if err := c.OnStreamRequest(1, r); err != nil {
		t.Fatal(err)
	}
	if got := nodes.ID(sent); got != "" {
		t.Errorf("the node as the proxy sent it is in group %q", got)
	}
	if got := nodes.ID(&corev3.Node{Id: "sidecar~shop~buyer-1"}); got != "" {
		t.Errorf("a node with the stream's ID is in group %q", got)
	}
	if r.Node == sent || nodes.ID(r.Node) != "envoy/shop/buyer" {
		t.Errorf("the request goes on with node %v in group %q, want the stream's pinned node", r.Node, nodes.ID(r.Node))
	}
	// A later request with no node, with the same node, and with another.
	for _, tc := range []struct {
		node *corev3.Node
		ok   bool
	}{{nil, true}, {&corev3.Node{Id: "sidecar~shop~buyer-1"}, true}, {&corev3.Node{Id: "sidecar~shop~buyer-1", Cluster: "store"}, false}, {&corev3.Node{Id: "sidecar~shop~store-1"}, false}} {
		r := &discoveryv3.DiscoveryRequest{Node: tc.node}
		err := c.OnStreamRequest(1, r)
		if (err == nil) != tc.ok {
			t.Errorf("a later request with node %v: %v", tc.node, err)
		}
		if err == nil && nodes.ID(r.Node) != "envoy/shop/buyer" {
			t.Errorf("a later request with node %v goes on in group %q", tc.node, nodes.ID(r.Node))
		}
	}
}

// A SPIFFE ID is read only in its one canonical form: a URI parser reads
// past userinfo, ports, queries and fragments, and a certificate that
// says spiffe://x@cluster.local/ns/victim/sa/db must not prove victim/db.
func TestPeerIdentityReadsOnlyTheCanonicalForm(t *testing.T) {
	for _, tc := range []struct {
		uris []string
		ok   bool
	}{
		{[]string{"spiffe://cluster.local/ns/shop/sa/buyer"}, true},
		{[]string{"spiffe://x@cluster.local/ns/victim/sa/db"}, false},
		{[]string{"spiffe://cluster.local:443/ns/victim/sa/db"}, false},
		{[]string{"spiffe://cluster.local/ns/victim/sa/db?x=1"}, false},
		{[]string{"spiffe://cluster.local/ns/victim/sa/db#f"}, false},
		{[]string{"spiffe://cluster.local/ns/victim/sa/db?"}, false},
		{[]string{"spiffe://cluster.local/ns/vic%74im/sa/db"}, false},
		{[]string{"spiffe://cluster.local/ns/victim/sa/db/"}, false},
		{[]string{"SPIFFE://cluster.local/ns/victim/sa/db"}, false},
		{[]string{"spiffe://cluster.local/ns/shop/sa/buyer", "spiffe://cluster.local/ns/victim/sa/db"}, false},
		{nil, false},
	} {
		var names cryptobyte.Builder
		names.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for _, s := range tc.uris {
				b.AddASN1(cbasn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(s)) })
			}
		})
		ext := pkix.Extension{Id: san.OID, Value: names.BytesOrPanic()}
		cert := &x509.Certificate{Extensions: []pkix.Extension{ext}}
		if tc.uris == nil {
			cert.Extensions = nil
		}
		td, id, err := PeerIdentity(cert)
		if (err == nil) != tc.ok {
			t.Errorf("%v: read as %s %s, %v", tc.uris, td, id, err)
		}
	}
}

// What a proxy runs, as the census counts it: the types it asked for, the
// versions it accepted of each, and the rejections it has not got past. A
// delta ACK names the nonce of the response it accepts, which maps to the
// version that response carried; a stale nonce says nothing.
func TestWhatAProxyRuns(t *testing.T) {
	ca, err := testpki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	buyer := mesh.Identity{Namespace: "shop", ServiceAccount: "buyer"}
	c := newCallbacks(logr.Discard(), nodeAuthorizer{"sidecar~shop~buyer-1": buyer}, &cache.Nodes{})
	var told int
	c.configState = func() { told++ }
	if err := c.OnDeltaStreamOpen(peerContext(t, ca, buyer), 1, ""); err != nil {
		t.Fatal(err)
	}
	const lds, cds = "type.googleapis.com/envoy.config.listener.v3.Listener", "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	node := &corev3.Node{Id: "sidecar~shop~buyer-1"}
	request := func(typeURL, nonce string, nack string) {
		t.Helper()
		r := &discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: typeURL, ResponseNonce: nonce}
		if nack != "" {
			r.ErrorDetail = &statuspb.Status{Message: nack}
		}
		if err := c.OnStreamDeltaRequest(1, r); err != nil {
			t.Fatal(err)
		}
	}
	respond := func(typeURL, nonce, version string) {
		c.OnStreamDeltaResponse(1, &discoveryv3.DeltaDiscoveryRequest{TypeUrl: typeURL}, &discoveryv3.DeltaDiscoveryResponse{TypeUrl: typeURL, Nonce: nonce, SystemVersionInfo: version})
	}
	status := func() ProxyStatus {
		t.Helper()
		ps := c.Proxies()
		if len(ps) != 1 {
			t.Fatalf("%d proxies", len(ps))
		}
		return ps[0]
	}
	current := map[string]string{lds: "l2", cds: "c1"}
	versions := func(typeURL string) (string, bool) { v, ok := current[typeURL]; return v, ok }

	request(lds, "", "")
	request(cds, "", "")
	if p := status(); !maps.Equal(p.Subscribed, map[string]bool{lds: true, cds: true}) || p.Holds(versions) {
		t.Fatalf("subscribed %v, holds %v before any ACK", p.Subscribed, p.Holds(versions))
	}
	respond(cds, "n1", "c1")
	respond(lds, "n2", "l1")
	request(cds, "n1", "")
	request(lds, "n2", "")
	if p := status(); !maps.Equal(p.Acked, map[string]string{lds: "l1", cds: "c1"}) || p.Holds(versions) {
		t.Fatalf("acked %v, holds %v: l1 is not the current listeners", p.Acked, p.Holds(versions))
	}
	if told != 2 {
		t.Errorf("told of %d changes, want 2", told)
	}
	// l2 goes out and is rejected; an ACK of the stale nonce n2 changes nothing.
	respond(lds, "n3", "l2")
	request(lds, "n3", "listener foo: bad")
	request(lds, "n2", "")
	if p := status(); p.Rejecting[lds] != "listener foo: bad" || p.Acked[lds] != "l1" || p.LastNACK == nil {
		t.Fatalf("after a NACK of l2: rejecting %v, acked %v", p.Rejecting, p.Acked)
	}
	told = 0
	request(lds, "n3", "listener foo: bad")
	if told != 0 {
		t.Errorf("the same rejection again was told as a change")
	}
	// A fixed l2 is accepted: the rejection is over and the proxy holds the current config.
	respond(lds, "n4", "l2")
	request(lds, "n4", "")
	if p := status(); len(p.Rejecting) != 0 || !p.Holds(versions) {
		t.Fatalf("after an ACK of l2: rejecting %v, acked %v", p.Rejecting, p.Acked)
	}
	if told != 1 {
		t.Errorf("told of %d changes, want 1", told)
	}
	// The snapshot moves on: the proxy no longer holds the current config.
	current[cds] = "c2"
	if status().Holds(versions) {
		t.Error("holds c2 it never accepted")
	}
}

// A proxy naming types of its own, accepting and rejecting them, grows
// neither its registry entry nor the metrics' label sets.
func TestTypesAProxyMakesUpAreNotRecorded(t *testing.T) {
	c := buyerStream(t)
	node := &corev3.Node{Id: "sidecar~shop~buyer-1"}
	for i := range 1000 {
		typeURL := fmt.Sprintf("type.googleapis.com/made.up.T%d", i)
		if err := c.OnStreamRequest(1, &discoveryv3.DiscoveryRequest{Node: node, TypeUrl: typeURL, VersionInfo: "v1"}); err != nil {
			t.Fatal(err)
		}
	}
	p := c.Proxies()[0]
	if len(p.Subscribed)+len(p.Acked)+len(p.Rejecting) != 0 {
		t.Errorf("recorded %d subscriptions, %d ACKs and %d rejections of made-up types", len(p.Subscribed), len(p.Acked), len(p.Rejecting))
	}
}

// A SotW proxy holds the version it was sent once it ACKs it, or, before
// any response on its stream, what it says it held on an earlier one; an
// ACK of another version says nothing. What it says of a rejection is kept
// printable and short.
func TestWhatASotWProxyCanClaim(t *testing.T) {
	c := buyerStream(t)
	const cds = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	node := &corev3.Node{Id: "sidecar~shop~buyer-1"}
	request := func(version, nack string) {
		t.Helper()
		r := &discoveryv3.DiscoveryRequest{Node: node, TypeUrl: cds, VersionInfo: version}
		if nack != "" {
			r.ErrorDetail = &statuspb.Status{Message: nack}
		}
		if err := c.OnStreamRequest(1, r); err != nil {
			t.Fatal(err)
		}
	}
	acked := func() string { return c.Proxies()[0].Acked[cds] }
	request("c0", "") // a reconnect: what it held before
	if acked() != "c0" {
		t.Errorf("the first request's version: acked %q", acked())
	}
	c.OnStreamResponse(context.Background(), 1, &discoveryv3.DiscoveryRequest{TypeUrl: cds}, &discoveryv3.DiscoveryResponse{TypeUrl: cds, VersionInfo: "c1", Nonce: "1"})
	for _, v := range []string{"a", "b", "c9"} {
		request(v, "")
	}
	if acked() != "c0" {
		t.Errorf("ACKs of versions never sent: acked %q", acked())
	}
	request("c1", "")
	if acked() != "c1" {
		t.Errorf("the ACK of c1: acked %q", acked())
	}
	request("c1", "\x1b[31mred\x1b[0m "+strings.Repeat("x", 5000))
	p := c.Proxies()[0]
	if d := p.Rejecting[cds]; strings.ContainsRune(d, '\x1b') || len(d) > maxNACKDetail || !strings.Contains(d, "red") {
		t.Errorf("a rejection kept as %q (%d bytes)", d[:min(len(d), 40)], len(d))
	}
}

// buyerStream are callbacks with a SotW stream 1 open for shop/buyer's
// proxy, sidecar~shop~buyer-1, and no request on it yet.
func buyerStream(t *testing.T) *callbacks {
	t.Helper()
	ca, err := testpki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	buyer := mesh.Identity{Namespace: "shop", ServiceAccount: "buyer"}
	c := newCallbacks(logr.Discard(), nodeAuthorizer{"sidecar~shop~buyer-1": buyer}, &cache.Nodes{})
	if err := c.OnStreamOpen(peerContext(t, ca, buyer), 1, ""); err != nil {
		t.Fatal(err)
	}
	return c
}
