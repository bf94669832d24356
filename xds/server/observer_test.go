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
	release chan struct{}
	mu      sync.Mutex
	heard   []string
}

func (o *slowObserver) Connected(node *corev3.Node) {
	if node.GetUserAgentVersion() == "slow" {
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
	obs := &slowObserver{release: make(chan struct{})}
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
			c.OnStreamClosed(id, nil)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the streams waited for the observer")
	}
	// Give what is not held back time to arrive, then let the first through.
	time.Sleep(100 * time.Millisecond)
	close(obs.release)
	// What was pending while the observer was busy collapses to the
	// node's latest state: the observer hears some of the changes, in
	// their order, and the last one last.
	happened := []string{"connected slow", "disconnected", "connected fast", "disconnected"}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if got := obs.log(); len(got) > 1 && got[len(got)-1] == "disconnected" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	got := obs.log()
	if len(got) == 0 || got[len(got)-1] != "disconnected" || !inOrder(got, happened) {
		t.Errorf("the observer heard %q; want changes of %q in their order, ending with the last", got, happened)
	}
}

// inOrder says whether heard is a subsequence of happened.
func inOrder(heard, happened []string) bool {
	i := 0
	for _, h := range heard {
		for i < len(happened) && happened[i] != h {
			i++
		}
		if i == len(happened) {
			return false
		}
		i++
	}
	return true
}

// A node that flaps while the observer is busy (a slow API server) queues
// no more than its latest state: the queue is bounded by the nodes, not by
// their flaps.
func TestAFlappingNodeQueuesOneCall(t *testing.T) {
	var q observerQueue
	release := make(chan struct{})
	var mu sync.Mutex
	var heard []int
	for i := range 1000 {
		q.post("vm~shop~web-1", func() {
			if i == 0 {
				<-release
			}
			mu.Lock()
			heard = append(heard, i)
			mu.Unlock()
		})
	}
	q.mu.Lock()
	pending := len(q.pending["vm~shop~web-1"])
	q.mu.Unlock()
	if pending > 1 {
		t.Errorf("%d calls pending for one node, want at most 1", pending)
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(heard)
		mu.Unlock()
		if n > 0 && heard[n-1] == 999 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(heard) == 0 || len(heard) > 2 || heard[len(heard)-1] != 999 || !slices.IsSorted(heard) {
		t.Errorf("heard calls %v; want at most the one running and the last, in order", heard)
	}
}
