package server

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// ConnectionObserver hears of proxies connecting (their first stream) and
// disconnecting (their last stream closed), on this replica. The server only
// reports connections: the census publishes them (MeshVMs' included) and
// the controllers write status from the census, so data flows one way.
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
