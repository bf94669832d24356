package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"maps"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/go-logr/logr"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/open-service-mesh/osm-operator/xds/cache"
)

// ProxyStatus is what the server knows of a connected proxy.
type ProxyStatus struct {
	NodeID    string
	Group     string
	Streams   int
	Connected time.Time
	// Acked maps a resource type URL to the version the proxy last accepted.
	Acked map[string]string
	// Subscribed are the type URLs the proxy asked for: the config it
	// holds is those types' (an Envoy asks for routes only when a listener
	// names some, a gRPC client for no secrets).
	Subscribed map[string]bool
	// Rejecting maps a type URL to the detail of the proxy's rejection of
	// its last response of that type, until it accepts one.
	Rejecting map[string]string
	// LastNACK is the proxy's last rejection, if any.
	LastNACK *NACK
}

// Holds says whether the proxy accepted the versions of every type it asked
// for that versions counts (by type URL; ok false for a type it does not):
// it runs that config.
func (p ProxyStatus) Holds(versions func(typeURL string) (version string, ok bool)) bool {
	counted := false
	for t := range p.Subscribed {
		want, ok := versions(t)
		if !ok {
			continue
		}
		if v := p.Acked[t]; v == "" || v != want {
			return false
		}
		counted = true
	}
	return counted
}

// NACK is a response a proxy rejected.
type NACK struct {
	TypeURL, Version, Detail string
	At                       time.Time
}

type stream struct {
	ctx  context.Context
	peer Peer
	// conn is the connection the peer proved its certificate on; closing
	// it ends the stream. Nil when the peer came without one (in tests).
	conn io.Closer
	// claimed is the node the stream was authorized as, as the proxy sent
	// it; pinned is the stream's own copy of it, the only node the cache is
	// ever shown for this stream; group is what the authorizer made of it.
	claimed, pinned *corev3.Node
	group           string
	// revoked is set when the workload no longer admits the stream.
	revoked bool
	// expiry ends the stream's connection when its certificate chain
	// expires: the stream proved nothing past that.
	expiry *time.Timer
	// sent is when each type's last response went out, for ACK latency.
	sent map[string]time.Time
	// lastSent is the nonce and version of each type's last response: a
	// delta ACK names the nonce, not the version; a SotW ACK must name the
	// version sent.
	lastSent map[string][2]string
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
//
// A stream is authorized once, on its first request, and keeps the identity
// it proved: go-control-plane would take the node of any later request as
// the stream's node, so every later request must name the same node, and
// the callbacks replace it with the stream's pinned copy before the cache
// sees it. A stream whose workload no longer runs as its identity is ended
// (Recheck).
type callbacks struct {
	log      logr.Logger
	auth     Authorizer
	nodes    *cache.Nodes
	observer ConnectionObserver
	// configState hears of changes of what proxies run (Options.OnConfigState).
	configState func()
	// told orders what observer hears per node.
	told observerQueue

	mu      sync.Mutex
	streams map[streamID]*stream
	proxies map[string]*proxy
	// authorizing are the authorizations in flight, by node ID. A recheck
	// of a node cannot see a stream that is not registered with its proxy
	// yet, so it marks the node's authorizations stale instead, and they
	// run again. Each stays here until its stream is registered, under the
	// same lock, so that every recheck sees the stream one way or the
	// other.
	authorizing map[string]map[*authorization]bool
}

// authorization is a stream's authorization in flight.
type authorization struct {
	// stale is set when a recheck of the node began meanwhile.
	stale bool
}

// authorizeAttempts bounds the authorizations of a stream whose node's
// workload keeps changing meanwhile: the stream is then refused, for the
// proxy to retry, never admitted on a result that may be out of date.
const authorizeAttempts = 5

// errUnsettled refuses a stream whose workload did not hold still for its
// authorization.
var errUnsettled = errors.New("the workload kept changing while its stream was authorized; retry")

// proxy is a connected node and its authorized streams.
type proxy struct {
	status  ProxyStatus
	streams map[streamID]*stream
}

// streamID names a stream: go-control-plane numbers state-of-the-world and
// delta streams with counters of their own, so their numbers collide.
type streamID struct {
	delta bool
	n     int64
}

func newCallbacks(log logr.Logger, auth Authorizer, nodes *cache.Nodes) *callbacks {
	return &callbacks{
		log: log, auth: auth, nodes: nodes,
		streams: map[streamID]*stream{}, proxies: map[string]*proxy{}, authorizing: map[string]map[*authorization]bool{},
	}
}

func (c *callbacks) open(ctx context.Context, id streamID) error {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, "no peer")
	}
	var conn io.Closer
	var state tls.ConnectionState
	switch info := p.AuthInfo.(type) {
	case connInfo:
		state, conn = info.State, info.conn
	case credentials.TLSInfo:
		state = info.State
	default:
		return status.Error(codes.Unauthenticated, "a verified client certificate is required")
	}
	who, err := PeerOf(state.VerifiedChains)
	if err != nil {
		return status.Error(codes.Unauthenticated, err.Error())
	}
	s := &stream{ctx: ctx, peer: who, conn: conn, sent: map[string]time.Time{}, lastSent: map[string][2]string{}}
	if conn != nil {
		end := state.VerifiedChains[0][0].NotAfter
		for _, cert := range state.VerifiedChains[0] {
			if cert.NotAfter.Before(end) {
				end = cert.NotAfter
			}
		}
		s.expiry = time.AfterFunc(time.Until(end), func() {
			c.log.Info("Ended xDS stream: its certificate expired", "identity", who.String(), "notAfter", end)
			_ = conn.Close()
		})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.streams[id] = s
	return nil
}

// request authorizes a stream on its first node, holds it to that node, and
// records ACKs and NACKs. It returns the node the cache is to see.
func (c *callbacks) request(id streamID, node *corev3.Node, typeURL, version string, nack error) (*corev3.Node, error) {
	if !servedType(typeURL) {
		// Recorded as no type: a proxy must not grow its registry entry
		// or the metrics' label sets by naming types of its own.
		typeURL = ""
	}
	c.mu.Lock()
	s := c.streams[id]
	c.mu.Unlock()
	if s == nil {
		return nil, status.Error(codes.Internal, "unknown stream")
	}
	if s.pinned == nil {
		if node.GetId() == "" {
			return nil, status.Error(codes.InvalidArgument, "the first request must carry a node ID")
		}
		if err := c.authorize(id, s, node); err != nil {
			denied.Inc()
			c.log.Info("Refused xDS stream", "node", node.GetId(), "identity", s.peer.String(), "reason", err.Error())
			if errors.Is(err, ErrDenied) {
				return nil, status.Error(codes.PermissionDenied, err.Error())
			}
			return nil, status.Error(codes.Unavailable, err.Error())
		}
	} else if c.isRevoked(s) {
		return nil, status.Error(codes.PermissionDenied, "this stream's workload no longer runs as its identity")
	} else if node != nil && node != s.pinned && !sameNode(node, s.claimed) {
		denied.Inc()
		c.log.Info("Refused xDS stream: a request named another node", "node", s.claimed.GetId(), "requested", node.GetId(), "identity", s.peer.String())
		return nil, status.Errorf(codes.PermissionDenied, "this stream is authorized as node %q and cannot switch to %q", s.claimed.GetId(), node.GetId())
	}
	c.mu.Lock()
	p := c.proxies[s.claimed.GetId()]
	if typeURL != "" {
		p.status.Subscribed[typeURL] = true
	}
	if nack != nil {
		nacks.WithLabelValues(cmp.Or(TypeName(typeURL), "other")).Inc()
		// What a proxy says goes to logs, the census and policies' status:
		// printable, and short.
		detail := printable(nack.Error(), maxNACKDetail)
		p.status.LastNACK = &NACK{TypeURL: typeURL, Version: printable(version, maxVersion), Detail: detail, At: time.Now()}
		changed := false
		if typeURL != "" {
			changed = p.status.Rejecting[typeURL] != detail
			p.status.Rejecting[typeURL] = detail
		}
		s.nacks++
		wait := nackBackoff(s.nacks)
		c.mu.Unlock()
		if changed && c.configState != nil {
			c.configState()
		}
		c.log.Info("Proxy rejected xDS config", "node", s.claimed.GetId(), "type", TypeName(typeURL), "version", p.status.LastNACK.Version, "error", detail, "backoff", wait.String())
		// This holds only this stream: other proxies are served meanwhile.
		select {
		case <-time.After(wait):
		case <-s.ctx.Done():
		}
		return s.pinned, nil
	}
	s.nacks = 0
	sent, responded := s.lastSent[typeURL]
	switch {
	case id.delta:
		// A delta ACK names the nonce of the response it accepts: its
		// version is what that response carried, when it is the last one.
		if version != "" && sent[0] == version {
			version = sent[1]
		} else {
			version = ""
		}
	case responded && version != sent[1], len(version) > maxVersion:
		// Once this stream was sent a response of the type, only its
		// version is one the proxy can hold: a proxy saying others makes
		// no census churn. Before, it names what it held on an earlier
		// stream (a reconnect), which the server does not send again.
		version = ""
	}
	changed := false
	if version != "" && typeURL != "" {
		_, rejecting := p.status.Rejecting[typeURL]
		delete(p.status.Rejecting, typeURL)
		if p.status.Acked[typeURL] != version {
			if at, ok := s.sent[typeURL]; ok {
				ackLatency.Observe(time.Since(at).Seconds())
			}
			changed = true
		}
		changed = changed || rejecting
		p.status.Acked[typeURL] = version
	}
	c.mu.Unlock()
	if changed && c.configState != nil {
		c.configState()
	}
	return s.pinned, nil
}

// authorize authorizes a stream as the node of its first request and
// connects it, unless a recheck of that node began meanwhile (its workload
// changing as its proxy connects): then the result may be out of date, and
// it authorizes again. Rechecks of other nodes do not concern it.
func (c *callbacks) authorize(id streamID, s *stream, node *corev3.Node) error {
	nodeID := node.GetId()
	for range authorizeAttempts {
		a := c.beginAuthorization(nodeID)
		g, err := c.auth.Authorize(s.ctx, nodeID, s.peer)
		if err != nil {
			if c.endAuthorization(nodeID, a) {
				return err
			}
			continue
		}
		pinned := c.nodes.Pin(node, g.String())
		if c.connect(id, s, node, pinned, g.String(), a) {
			return nil
		}
		c.nodes.Release(pinned)
	}
	return errUnsettled
}

// beginAuthorization registers an authorization of nodeID, for rechecks
// of the node to mark stale.
func (c *callbacks) beginAuthorization(nodeID string) *authorization {
	a := &authorization{}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.authorizing[nodeID] == nil {
		c.authorizing[nodeID] = map[*authorization]bool{}
	}
	c.authorizing[nodeID][a] = true
	return a
}

// endAuthorization unregisters a, and says whether its result holds: no
// recheck of the node began meanwhile. The caller holds no lock.
func (c *callbacks) endAuthorization(nodeID string, a *authorization) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endAuthorizationLocked(nodeID, a)
}

func (c *callbacks) endAuthorizationLocked(nodeID string, a *authorization) bool {
	delete(c.authorizing[nodeID], a)
	if len(c.authorizing[nodeID]) == 0 {
		delete(c.authorizing, nodeID)
	}
	return !a.stale
}

// sameNode tells whether a later request names the node a stream was
// authorized as: its ID, and the cluster and metadata a group could be
// told by. Envoy sends the same node on every request; grpc-go only on the
// first.
func sameNode(a, b *corev3.Node) bool {
	return a == b || a.GetId() == b.GetId() && a.GetCluster() == b.GetCluster() && proto.Equal(a.GetMetadata(), b.GetMetadata())
}

// connect registers a stream with its proxy as authorized by a, in the
// group, unless a recheck of the node made a stale: then it changes
// nothing and returns false.
func (c *callbacks) connect(id streamID, s *stream, node, pinned *corev3.Node, group string, a *authorization) bool {
	nodeID := node.GetId()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.endAuthorizationLocked(nodeID, a) {
		return false
	}
	s.claimed, s.pinned, s.group = node, pinned, group
	p := c.proxies[nodeID]
	if p == nil {
		p = &proxy{status: ProxyStatus{NodeID: nodeID, Connected: time.Now(), Acked: map[string]string{}, Subscribed: map[string]bool{}, Rejecting: map[string]string{}}, streams: map[streamID]*stream{}}
		c.proxies[nodeID] = p
		connectedProxies.Inc()
		c.log.V(1).Info("Proxy connected", "node", nodeID, "group", group)
		if o := c.observer; o != nil {
			c.told.post(nodeID, func() { o.Connected(node) })
		}
	}
	p.status.Group = group
	p.streams[id] = s
	return true
}

// response records a response sent on a stream, of nonce and version.
func (c *callbacks) response(id streamID, typeURL, nonce, version string) {
	pushes.WithLabelValues(TypeName(typeURL)).Inc()
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.streams[id]; s != nil {
		s.sent[typeURL] = time.Now()
		s.lastSent[typeURL] = [2]string{nonce, version}
	}
}

func (c *callbacks) closed(id streamID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.streams[id]
	delete(c.streams, id)
	if s != nil && s.expiry != nil {
		s.expiry.Stop()
	}
	if s == nil || s.pinned == nil {
		return
	}
	c.nodes.Release(s.pinned)
	nodeID := s.claimed.GetId()
	p := c.proxies[nodeID]
	delete(p.streams, id)
	if len(p.streams) == 0 {
		delete(c.proxies, nodeID)
		connectedProxies.Dec()
		c.log.V(1).Info("Proxy disconnected", "node", nodeID)
		if o := c.observer; o != nil {
			c.told.post(nodeID, func() { o.Disconnected(nodeID) })
		}
	}
}

// recheck authorizes the streams of a node again, as a change of its
// workload requires, and ends those whose peer the workload no longer
// admits, or admits into another group. A lookup that fails for another
// reason than a refusal keeps the stream: the informer cache decides, not
// a transient error. The node's authorizations in flight, whose streams it
// cannot see yet, run again.
func (c *callbacks) recheck(ctx context.Context, nodeID string) {
	c.mu.Lock()
	for a := range c.authorizing[nodeID] {
		a.stale = true
	}
	p := c.proxies[nodeID]
	var streams []*stream
	if p != nil {
		for _, s := range p.streams {
			streams = append(streams, s)
		}
	}
	c.mu.Unlock()
	for _, s := range streams {
		g, err := c.auth.Authorize(ctx, nodeID, s.peer)
		switch {
		case err == nil && g.String() == s.group:
			continue
		case err != nil && !errors.Is(err, ErrDenied):
			c.log.Error(err, "Rechecking an xDS stream", "node", nodeID)
			continue
		}
		reason := "its workload is now in group " + g.String()
		if err != nil {
			reason = err.Error()
		}
		denied.Inc()
		c.log.Info("Ended xDS stream: its workload changed", "node", nodeID, "identity", s.peer.String(), "group", s.group, "reason", reason)
		c.nodes.Release(s.pinned)
		c.mu.Lock()
		s.revoked = true
		c.mu.Unlock()
		if s.conn != nil {
			_ = s.conn.Close()
		}
	}
}

// recheckWhere rechecks the connected nodes that match, as a change of
// their namespace or mesh requires. match may read the informer cache: it
// runs without the lock that streams take.
func (c *callbacks) recheckWhere(ctx context.Context, match func(nodeID string) bool) {
	c.mu.Lock()
	// The nodes being authorized too: an authorization in flight may have
	// read the namespace or mesh before the change.
	ids := make([]string, 0, len(c.proxies)+len(c.authorizing))
	for id := range c.proxies {
		ids = append(ids, id)
	}
	for id := range c.authorizing {
		if c.proxies[id] == nil {
			ids = append(ids, id)
		}
	}
	c.mu.Unlock()
	for _, id := range ids {
		if match(id) {
			c.recheck(ctx, id)
		}
	}
}

func (c *callbacks) isRevoked(s *stream) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return s.revoked
}

// Proxies returns a copy of the status of every connected proxy.
func (c *callbacks) Proxies() []ProxyStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ProxyStatus, 0, len(c.proxies))
	for _, p := range c.proxies {
		cp := p.status
		cp.Streams = len(p.streams)
		cp.Acked = maps.Clone(p.status.Acked)
		cp.Subscribed = maps.Clone(p.status.Subscribed)
		cp.Rejecting = maps.Clone(p.status.Rejecting)
		out = append(out, cp)
	}
	return out
}

// Bounds of what a proxy says that the server keeps: a NACK's detail, and
// a version (the cache's are 16 hex digits).
const (
	maxNACKDetail = 1024
	maxVersion    = 64
)

// printable is s without control characters (a terminal's escapes), cut to
// at most n bytes at a character boundary.
func printable(s string, n int) string {
	out := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
	if len(out) <= n {
		return out
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(out[cut]) {
		cut--
	}
	return out[:cut] + "…"
}

// servedType says whether typeURL is a type go-control-plane's cache serves.
func servedType(typeURL string) bool {
	return cachev3.GetResponseType(typeURL) != types.UnknownType
}

// TypeName is the last part of a type URL: "Listener".
func TypeName(typeURL string) string {
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
	node, err := c.request(streamID{n: id}, r.GetNode(), r.GetTypeUrl(), r.GetVersionInfo(), nack)
	r.Node = node
	return err
}

func (c *callbacks) OnStreamResponse(_ context.Context, id int64, r *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
	c.response(streamID{n: id}, r.GetTypeUrl(), resp.GetNonce(), resp.GetVersionInfo())
}

func (c *callbacks) OnStreamDeltaRequest(id int64, r *discoveryv3.DeltaDiscoveryRequest) error {
	var nack error
	if r.GetErrorDetail() != nil {
		nack = errors.New(r.GetErrorDetail().GetMessage())
	}
	// A delta ACK carries the nonce it acknowledges, not a version.
	node, err := c.request(streamID{delta: true, n: id}, r.GetNode(), r.GetTypeUrl(), r.GetResponseNonce(), nack)
	r.Node = node
	return err
}

func (c *callbacks) OnStreamDeltaResponse(id int64, r *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
	c.response(streamID{delta: true, n: id}, r.GetTypeUrl(), resp.GetNonce(), resp.GetSystemVersionInfo())
}

func (c *callbacks) OnFetchRequest(context.Context, *discoveryv3.DiscoveryRequest) error {
	return status.Error(codes.Unimplemented, "REST xDS is not served")
}

func (c *callbacks) OnFetchResponse(*discoveryv3.DiscoveryRequest, *discoveryv3.DiscoveryResponse) {}
