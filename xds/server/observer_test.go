package server

import (
	"slices"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/go-logr/logr"

	"github.com/open-service-mesh/osm-operator/internal/testpki"
	"github.com/open-service-mesh/osm-operator/xds/cache"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// slowObserver records what it hears; its Connected for a node of user
// agent version "slow" waits until release is closed, as an API write may.
type slowObserver struct {
	// started is closed when the slow call begins; it then waits for
	// release.
	started, release chan struct{}
	mu               sync.Mutex
	heard            []string
}

func (o *slowObserver) Connected(node *corev3.Node) {
	if node.GetUserAgentVersion() == "slow" {
		close(o.started)
		<-o.release
	}
	o.record("connected " + node.GetUserAgentVersion())
}

func (o *slowObserver) Disconnected(nodeID string) { o.record("disconnected") }

func (o *slowObserver) record(s string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.heard = append(o.heard, s)
}

func (o *slowObserver) log() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.heard)
}

// The observer hears of a node's connections and disconnections in the
// order they happened, though it may be slow and the streams do not wait
// for it. Before, each was told in a goroutine of its own, so a proxy that
// reconnected at once could be heard as gone after its new connection
// (its census left out a connected MeshVM), or the reverse.
func TestTheObserverHearsANodesConnectionsInOrder(t *testing.T) {
	ca, err := testpki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	web := mesh.Identity{Namespace: "shop", ServiceAccount: "web"}
	const node = "vm~shop~web-1"
	c := newCallbacks(logr.Discard(), nodeAuthorizer{node: web}, &cache.Nodes{})
	obs := &slowObserver{started: make(chan struct{}), release: make(chan struct{})}
	c.observer = obs

	// Connected (slowly), disconnected, connected again and disconnected
	// again, each stream closing before the next opens: none waits for
	// the observer.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i, version := range []string{"slow", "fast"} {
			id := int64(i + 1)
			if err := c.OnStreamOpen(peerContext(t, ca, web), id, ""); err != nil {
				t.Error(err)
				return
			}
			r := &discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: node, UserAgentVersionType: &corev3.Node_UserAgentVersion{UserAgentVersion: version}}}
			if err := c.OnStreamRequest(id, r); err != nil {
				t.Error(err)
				return
			}
			if i == 0 {
				<-obs.started // the observer is now busy with the first connection
			}
			c.OnStreamClosed(id, nil)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the streams waited for the observer")
	}
	close(obs.release)
	// What was posted while the observer was busy collapses to the node's
	// latest state: it hears the first connection, then that the node is
	// gone, never a connection after its last disconnection.
	want := []string{"connected slow", "disconnected"}
	deadline := time.Now().Add(5 * time.Second)
	for len(obs.log()) < len(want) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := obs.log(); !slices.Equal(got, want) {
		t.Errorf("the observer heard %q, want %q", got, want)
	}
}

// A node that flaps while the observer is busy (a slow API server) queues
// no more than its latest state: the queue is bounded by the nodes, not by
// their flaps.
func TestAFlappingNodeQueuesOneCall(t *testing.T) {
	var q observerQueue
	started, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var heard []int
	call := func(i int) func() {
		return func() {
			if i == 0 {
				close(started)
				<-release
			}
			mu.Lock()
			heard = append(heard, i)
			mu.Unlock()
		}
	}
	q.post("vm~shop~web-1", call(0))
	<-started
	for i := 1; i < 1000; i++ {
		q.post("vm~shop~web-1", call(i))
	}
	close(release)
	want := []int{0, 999}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(heard)
		mu.Unlock()
		if n >= len(want) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // a call heard after the last would show here
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(heard, want) {
		t.Errorf("heard calls %v, want the one running and the last: %v", heard, want)
	}
}
