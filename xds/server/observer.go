package server

import (
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// ConnectionObserver hears of proxies connecting (their first stream) and
// disconnecting (their last stream closed), on this replica. The server only
// reports connections: the census publishes them (MeshVMs' included) and
// the controllers write status from the census, so data flows one way.
//
// A node's calls come one at a time, in the order its connections changed,
// and end with its latest state; the calls that were pending while the
// observer was busy collapse to the last of them, so the observer must
// take a call as the node's state, not as a transition (a Connected for
// a connected node, a Disconnected for a gone one). Calls for different
// nodes may come at once. Streams do not wait for them.
type ConnectionObserver interface {
	Connected(node *corev3.Node)
	Disconnected(nodeID string)
}

// Observers tell each of their observers in turn.
type Observers []ConnectionObserver

// Connected implements ConnectionObserver.
func (o Observers) Connected(node *corev3.Node) {
	for _, x := range o {
		x.Connected(node)
	}
}

// Disconnected implements ConnectionObserver.
func (o Observers) Disconnected(nodeID string) {
	for _, x := range o {
		x.Disconnected(nodeID)
	}
}

// observerQueue tells an observer of each node's connections in the order
// they happened, without the streams waiting for it (its calls may write to
// the API): each node with news pending has a goroutine telling them in
// turn. Nodes do not wait for each other.
type observerQueue struct {
	mu sync.Mutex
	// pending is the call not made yet of each node whose goroutine runs:
	// the latest (the node's state), nil when it has made them all.
	pending map[string]func()
}

// post queues call for node in place of any call of it not made yet: a
// node flapping while the observer is slow keeps one call queued. Callers
// post a node's calls in the order of the changes they tell (under the
// lock that orders those).
func (q *observerQueue) post(nodeID string, call func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pending == nil {
		q.pending = map[string]func(){}
	}
	_, running := q.pending[nodeID]
	q.pending[nodeID] = call
	if !running {
		go q.drain(nodeID)
	}
}

// drain makes node's calls until none is left.
func (q *observerQueue) drain(nodeID string) {
	for {
		q.mu.Lock()
		call := q.pending[nodeID]
		if call == nil {
			delete(q.pending, nodeID)
			q.mu.Unlock()
			return
		}
		q.pending[nodeID] = nil
		q.mu.Unlock()
		call()
	}
}
