package server

import (
	"context"
	"errors"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/go-logr/logr"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/open-service-mesh/osm-operator/xds/cache"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// ProxyStatus is what the server knows of a connected proxy.
type ProxyStatus struct {
	NodeID    string
	Group     string
	Streams   int
	Connected time.Time
	// Acked maps a resource type URL to the version the proxy last accepted.
	Acked map[string]string
	// LastNACK is the proxy's last rejection, if any.
	LastNACK *NACK
}

// NACK is a response a proxy rejected.
type NACK struct {
	TypeURL, Version, Detail string
	At                       time.Time
}

type stream struct {
	ctx    context.Context
	peer   mesh.Identity
	nodeID string // set once authorized
	// sent is when each type's last response went out, for ACK latency.
	sent map[string]time.Time
	// nacks counts consecutive rejections, for backoff.
	nacks int
}

// nackBackoff is how long a stream waits after its n-th consecutive NACK
// before the server answers it again. go-control-plane answers a NACK that
// names no accepted version with the same config at once; without a pause a
// proxy that cannot take its config would spin with the server.
func nackBackoff(n int) time.Duration {
	d := 100 * time.Millisecond << min(n-1, 6)
	return min(d, 5*time.Second)
}

// callbacks authorize streams, keep the proxy registry and record metrics.
// They implement go-control-plane's server callbacks.
type callbacks struct {
	log      logr.Logger
	auth     Authorizer
	nodes    *cache.Nodes
	observer ConnectionObserver

	mu      sync.Mutex
	streams map[streamID]*stream
	proxies map[string]*ProxyStatus
}

// streamID names a stream: go-control-plane numbers state-of-the-world and
// delta streams with counters of their own, so their numbers collide.
type streamID struct {
	delta bool
	n     int64
}

func newCallbacks(log logr.Logger, auth Authorizer, nodes *cache.Nodes) *callbacks {
	return &callbacks{log: log, auth: auth, nodes: nodes, streams: map[streamID]*stream{}, proxies: map[string]*ProxyStatus{}}
}

func (c *callbacks) open(ctx context.Context, id streamID) error {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, "no peer")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return status.Error(codes.Unauthenticated, "a verified client certificate is required")
	}
	_, ident, err := PeerIdentity(info.State.VerifiedChains[0][0])
	if err != nil {
		return status.Error(codes.Unauthenticated, err.Error())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.streams[id] = &stream{ctx: ctx, peer: ident, sent: map[string]time.Time{}}
	return nil
}

// request authorizes a stream on its first node and records ACKs and NACKs.
func (c *callbacks) request(id streamID, node *corev3.Node, typeURL, version string, nack error) error {
	c.mu.Lock()
	s := c.streams[id]
	c.mu.Unlock()
	if s == nil {
		return status.Error(codes.Internal, "unknown stream")
	}
	if s.nodeID == "" {
		if node.GetId() == "" {
			return status.Error(codes.InvalidArgument, "the first request must carry a node ID")
		}
		g, err := c.auth.Authorize(s.ctx, node.GetId(), s.peer)
		if err != nil {
			denied.Inc()
			c.log.Info("Refused xDS stream", "node", node.GetId(), "identity", s.peer.String(), "reason", err.Error())
			if errors.Is(err, ErrDenied) {
				return status.Error(codes.PermissionDenied, err.Error())
			}
			return status.Error(codes.Unavailable, err.Error())
		}
		c.connect(id, s, node, g.String())
	}
	c.mu.Lock()
	p := c.proxies[s.nodeID]
	if nack != nil {
		nacks.WithLabelValues(typeName(typeURL)).Inc()
		p.LastNACK = &NACK{TypeURL: typeURL, Version: version, Detail: nack.Error(), At: time.Now()}
		s.nacks++
		wait := nackBackoff(s.nacks)
		c.mu.Unlock()
		c.log.Info("Proxy rejected xDS config", "node", s.nodeID, "type", typeName(typeURL), "version", version, "error", nack.Error(), "backoff", wait.String())
		// This holds only this stream: other proxies are served meanwhile.
		select {
		case <-time.After(wait):
		case <-s.ctx.Done():
		}
		return nil
	}
	defer c.mu.Unlock()
	s.nacks = 0
	if version != "" && typeURL != "" {
		if p.Acked[typeURL] != version {
			if at, ok := s.sent[typeURL]; ok {
				ackLatency.Observe(time.Since(at).Seconds())
			}
		}
		p.Acked[typeURL] = version
	}
	return nil
}

func (c *callbacks) connect(id streamID, s *stream, node *corev3.Node, group string) {
	nodeID := node.GetId()
	c.nodes.Assign(nodeID, group)
	c.mu.Lock()
	defer c.mu.Unlock()
	s.nodeID = nodeID
	p := c.proxies[nodeID]
	if p == nil {
		p = &ProxyStatus{NodeID: nodeID, Group: group, Connected: time.Now(), Acked: map[string]string{}}
		c.proxies[nodeID] = p
		connectedProxies.Inc()
		c.log.V(1).Info("Proxy connected", "node", nodeID, "group", group)
		if c.observer != nil {
			go c.observer.Connected(node) // an API write must not hold the stream
		}
	}
	p.Streams++
}

func (c *callbacks) response(id streamID, typeURL string) {
	pushes.WithLabelValues(typeName(typeURL)).Inc()
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.streams[id]; s != nil {
		s.sent[typeURL] = time.Now()
	}
}

func (c *callbacks) closed(id streamID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.streams[id]
	delete(c.streams, id)
	if s == nil || s.nodeID == "" {
		return
	}
	p := c.proxies[s.nodeID]
	if p.Streams--; p.Streams == 0 {
		delete(c.proxies, s.nodeID)
		c.nodes.Forget(s.nodeID)
		connectedProxies.Dec()
		c.log.V(1).Info("Proxy disconnected", "node", s.nodeID)
		if c.observer != nil {
			go c.observer.Disconnected(s.nodeID)
		}
	}
}

// Proxies returns a copy of the status of every connected proxy.
func (c *callbacks) Proxies() []ProxyStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ProxyStatus, 0, len(c.proxies))
	for _, p := range c.proxies {
		cp := *p
		cp.Acked = make(map[string]string, len(p.Acked))
		for k, v := range p.Acked {
			cp.Acked[k] = v
		}
		out = append(out, cp)
	}
	return out
}

func typeName(typeURL string) string {
	for i := len(typeURL) - 1; i >= 0; i-- {
		if typeURL[i] == '.' {
			return typeURL[i+1:]
		}
	}
	return typeURL
}

// go-control-plane's callback interface.

func (c *callbacks) OnStreamOpen(ctx context.Context, id int64, _ string) error {
	return c.open(ctx, streamID{n: id})
}
func (c *callbacks) OnStreamClosed(id int64, _ *corev3.Node) { c.closed(streamID{n: id}) }
func (c *callbacks) OnDeltaStreamOpen(ctx context.Context, id int64, _ string) error {
	return c.open(ctx, streamID{delta: true, n: id})
}
func (c *callbacks) OnDeltaStreamClosed(id int64, _ *corev3.Node) {
	c.closed(streamID{delta: true, n: id})
}

func (c *callbacks) OnStreamRequest(id int64, r *discoveryv3.DiscoveryRequest) error {
	var nack error
	if r.GetErrorDetail() != nil {
		nack = errors.New(r.GetErrorDetail().GetMessage())
	}
	return c.request(streamID{n: id}, r.GetNode(), r.GetTypeUrl(), r.GetVersionInfo(), nack)
}

func (c *callbacks) OnStreamResponse(_ context.Context, id int64, r *discoveryv3.DiscoveryRequest, _ *discoveryv3.DiscoveryResponse) {
	c.response(streamID{n: id}, r.GetTypeUrl())
}

func (c *callbacks) OnStreamDeltaRequest(id int64, r *discoveryv3.DeltaDiscoveryRequest) error {
	var nack error
	if r.GetErrorDetail() != nil {
		nack = errors.New(r.GetErrorDetail().GetMessage())
	}
	// A delta ACK carries the nonce it acknowledges, not a version.
	return c.request(streamID{delta: true, n: id}, r.GetNode(), r.GetTypeUrl(), r.GetResponseNonce(), nack)
}

func (c *callbacks) OnStreamDeltaResponse(id int64, r *discoveryv3.DeltaDiscoveryRequest, _ *discoveryv3.DeltaDiscoveryResponse) {
	c.response(streamID{delta: true, n: id}, r.GetTypeUrl())
}

func (c *callbacks) OnFetchRequest(context.Context, *discoveryv3.DiscoveryRequest) error {
	return status.Error(codes.Unimplemented, "REST xDS is not served")
}

func (c *callbacks) OnFetchResponse(*discoveryv3.DiscoveryRequest, *discoveryv3.DiscoveryResponse) {}
