package server

import (
	"context"
	"fmt"
	"sync"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/go-logr/logr"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/open-service-mesh/osm-operator/internal/testpki"
	"github.com/open-service-mesh/osm-operator/xds/cache"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// hookedAuthorizer authorizes as nodeAuthorizer does, from the identity it
// holds for each node when the call begins (as WorkloadAuthorizer reads its
// informer cache), then calls during: what happens while that authorization
// is in flight, such as the node's workload changing and its recheck.
type hookedAuthorizer struct {
	mu    sync.Mutex
	ids   map[string]mesh.Identity
	calls map[string]int
	// during is called with the node and the number of its call.
	during func(nodeID string, call int)
}

func (a *hookedAuthorizer) Authorize(_ context.Context, nodeID string, peer Peer) (mesh.Group, error) {
	a.mu.Lock()
	a.calls[nodeID]++
	call, id := a.calls[nodeID], a.ids[nodeID]
	a.mu.Unlock()
	if a.during != nil {
		a.during(nodeID, call)
	}
	if id != peer.Identity {
		return mesh.Group{}, fmt.Errorf("%w: %s is not %s", ErrDenied, nodeID, peer)
	}
	return mesh.Group{Kind: mesh.ProxyEnvoy, Identity: peer.Identity}, nil
}

func (a *hookedAuthorizer) set(nodeID string, id mesh.Identity) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ids[nodeID] = id
}

func (a *hookedAuthorizer) callsOf(nodeID string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[nodeID]
}

// elsewhere runs f on another goroutine and waits for it: a recheck comes
// from an informer's goroutine, not the stream's.
func elsewhere(f func()) {
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	<-done
}

// firstRequest opens stream n as a peer of id and sends its first request,
// as node.
func firstRequest(t *testing.T, c *callbacks, ca *testpki.CA, n int64, id mesh.Identity, node string) error {
	t.Helper()
	if err := c.OnStreamOpen(peerContext(t, ca, id), n, ""); err != nil {
		t.Fatal(err)
	}
	return c.OnStreamRequest(n, &discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: node}})
}

// A recheck of a node while one of its streams is being authorized makes
// the authorization run again, however often it comes: the result of an
// authorization that a change of the node's workload overtook is never
// admitted. Before, the server authorized at most three times and then
// admitted a fourth result unchecked, so a pod recreated as another
// identity as its proxy connected could leave the proxy connected as the
// former one.
func TestARecheckOfTheNodeDuringAuthorizationIsNeverMissed(t *testing.T) {
	ca, err := testpki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	buyer := mesh.Identity{Namespace: "shop", ServiceAccount: "buyer"}
	store := mesh.Identity{Namespace: "shop", ServiceAccount: "store"}
	const node = "sidecar~shop~buyer-1"
	for _, tc := range []struct {
		name string
		// changes says whether the node's workload changes during its
		// call-th authorization; recreated, whether it then runs as
		// another identity.
		changes    func(call int) bool
		recreated  int
		want       codes.Code
		wantCalls  int
		thenAdmits bool
	}{
		{name: "once, to another identity", changes: func(call int) bool { return call == 1 }, recreated: 1, want: codes.PermissionDenied, wantCalls: 2},
		{name: "four times, the fourth to another identity", changes: func(call int) bool { return call <= 4 }, recreated: 4, want: codes.PermissionDenied, wantCalls: 5},
		// A workload that never settles is refused for the proxy to retry.
		{name: "during every authorization", changes: func(int) bool { return true }, want: codes.Unavailable, wantCalls: authorizeAttempts, thenAdmits: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &hookedAuthorizer{ids: map[string]mesh.Identity{node: buyer}, calls: map[string]int{}}
			c := newCallbacks(logr.Discard(), a, &cache.Nodes{})
			a.during = func(nodeID string, call int) {
				if nodeID != node || !tc.changes(call) {
					return
				}
				if call == tc.recreated {
					a.set(node, store)
				}
				elsewhere(func() { c.recheck(context.Background(), node) })
			}
			err := firstRequest(t, c, ca, 1, buyer, node)
			if status.Code(err) != tc.want {
				t.Errorf("the first request: %v, want code %v", err, tc.want)
			}
			if got := a.callsOf(node); got != tc.wantCalls {
				t.Errorf("authorized %d times, want %d", got, tc.wantCalls)
			}
			if g := groups(c); len(g) != 0 {
				t.Errorf("connected proxies %v, want none", g)
			}
			if !tc.thenAdmits {
				return
			}
			// Once the workload settles, the proxy's retry is admitted.
			a.during = nil
			if err := firstRequest(t, c, ca, 2, buyer, node); err != nil {
				t.Errorf("the retry once the workload settled: %v", err)
			}
			if g := groups(c); g[node] != "envoy/shop/buyer" {
				t.Errorf("after the retry, connected proxies %v", g)
			}
		})
	}
}

// Rechecks of other nodes leave a stream's authorization alone: at scale a
// recheck runs somewhere all the time, and before, any of them made every
// stream being authorized anywhere authorize again, up to four times.
func TestRechecksOfOtherNodesDoNotReauthorizeAStream(t *testing.T) {
	ca, err := testpki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	buyer := mesh.Identity{Namespace: "shop", ServiceAccount: "buyer"}
	store := mesh.Identity{Namespace: "shop", ServiceAccount: "store"}
	const buyerNode, storeNode = "sidecar~shop~buyer-1", "sidecar~shop~store-1"
	a := &hookedAuthorizer{ids: map[string]mesh.Identity{buyerNode: buyer, storeNode: store}, calls: map[string]int{}}
	c := newCallbacks(logr.Discard(), a, &cache.Nodes{})
	if err := firstRequest(t, c, ca, 1, store, storeNode); err != nil {
		t.Fatal(err)
	}
	a.during = func(nodeID string, _ int) {
		if nodeID != buyerNode {
			return
		}
		elsewhere(func() {
			c.recheck(context.Background(), storeNode)                      // connected
			c.recheck(context.Background(), "sidecar~shop~not-connected-1") // not
			c.recheckWhere(context.Background(), func(id string) bool { return id != buyerNode })
		})
	}
	if err := firstRequest(t, c, ca, 2, buyer, buyerNode); err != nil {
		t.Fatal(err)
	}
	if got := a.callsOf(buyerNode); got != 1 {
		t.Errorf("the buyer's stream was authorized %d times, want once", got)
	}
	if got := a.callsOf(storeNode); got != 3 {
		t.Errorf("the store's node was authorized %d times, want 3 (its stream, then two rechecks)", got)
	}
	want := map[string]string{buyerNode: "envoy/shop/buyer", storeNode: "envoy/shop/store"}
	if got := groups(c); len(got) != 2 || got[buyerNode] != want[buyerNode] || got[storeNode] != want[storeNode] {
		t.Errorf("connected proxies %v, want %v", got, want)
	}
}

// A change of a node's namespace or mesh (recheckWhere) during its
// authorization is not missed either: the authorization may have read the
// namespace before the change, and runs again; one where the change made
// the node another identity's is refused.
func TestANamespaceRecheckDuringAuthorizationIsNeverMissed(t *testing.T) {
	ca, err := testpki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	buyer := mesh.Identity{Namespace: "shop", ServiceAccount: "buyer"}
	store := mesh.Identity{Namespace: "shop", ServiceAccount: "store"}
	const node = "sidecar~shop~buyer-1"
	a := &hookedAuthorizer{ids: map[string]mesh.Identity{node: buyer}, calls: map[string]int{}}
	c := newCallbacks(logr.Discard(), a, &cache.Nodes{})
	a.during = func(nodeID string, call int) {
		if nodeID != node || call != 1 {
			return
		}
		a.set(node, store)
		elsewhere(func() { c.recheckWhere(context.Background(), func(string) bool { return true }) })
	}
	if err := firstRequest(t, c, ca, 1, buyer, node); status.Code(err) != codes.PermissionDenied {
		t.Errorf("the first request: %v, want code %v", err, codes.PermissionDenied)
	}
	if got := a.callsOf(node); got != 2 {
		t.Errorf("authorized %d times, want 2", got)
	}
	if g := groups(c); len(g) != 0 {
		t.Errorf("connected proxies %v, want none", g)
	}
}
