package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/go-logr/logr"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/open-service-mesh/osm-operator/internal/testpki"
	"github.com/open-service-mesh/osm-operator/xds/cache"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/translate"
	"github.com/open-service-mesh/osm-operator/xds/xdstest"
)

// FuzzADSServer sends the ADS server, over mutual TLS, arbitrary sequences of
// requests from one authenticated proxy, of the bookbuyer group: state of the
// world and delta streams, several on a connection, whose requests name no
// node, the stream's own, another pod of the same identity, a connected pod of
// another group (bookstore, bookwarehouse), a malformed one, or the stream's
// own with another cluster, metadata or user agent; ask for the five Envoy
// types, an unknown one or none; name the group's resources, other groups',
// "*" and garbage; carry versions and nonces of earlier responses, of other
// groups, stale or made up; subscribe, unsubscribe, claim initial resource
// versions and NACK. What must hold:
//
//   - Every resource of every response is one of bookbuyer's: equal to the
//     resource of that name in its snapshot, under its version, in a
//     response of the group's version of the type. Every resource of the
//     three groups is made group-specific, so a resource of another group
//     cannot pass for one of bookbuyer's.
//   - A request that names another node (another ID, cluster or metadata; at
//     the first request, a node the certificate does not prove) ends its
//     stream with PermissionDenied, and the server sends nothing on it after
//     the refusal: its own record of when it last sent each type on the
//     stream is no later than the moment it logged the refusal.
//   - A stream ends only so, or for the reasons the protocol gives (no node,
//     no type URL: InvalidArgument): the model of each stream (expect) says
//     when it must and may end.
//   - The other groups' pods stay connected.
//
// The server is the real one, started once per process with the real
// snapshot cache; the other groups' pods stay connected for the whole run, so
// a stream that could switch to their node would be served their resources.
// Each input is read until its streams are quiet; see adsInput for how bytes
// become requests, and adsSeeds for the seeds in testdata/fuzz/FuzzADSServer.
func FuzzADSServer(f *testing.F) {
	fx := newADSFixture(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		fx.run(t, decodeADSInput(data))
	})
}

// The groups: the fuzzing proxy's, and two others whose pods are connected.
var (
	adsPeer    = mesh.Identity{Namespace: "bookbuyer", ServiceAccount: "bookbuyer"}
	adsVictims = []mesh.Identity{
		{Namespace: "bookstore", ServiceAccount: "bookstore"},
		{Namespace: "bookwarehouse", ServiceAccount: "bookwarehouse"},
	}
)

// adsVictimNode is the node ID of the connected pod of adsVictims[i].
func adsVictimNode(i int) string {
	id := adsVictims[i]
	return mesh.NodeKindSidecar + "~" + id.Namespace + "~" + id.ServiceAccount + "-victim"
}

func envoyGroup(id mesh.Identity) string {
	return mesh.Group{Kind: mesh.ProxyEnvoy, Identity: id}.String()
}

// podAuthorizer admits node sidecar~<namespace>~<sa>-<suffix> for a
// certificate of <namespace>/<sa>: the pods of a Deployment are named after it
// and run as its service account. No other node ID names a pod.
type podAuthorizer struct{}

func (podAuthorizer) Authorize(_ context.Context, nodeID string, peer Peer) (mesh.Group, error) {
	kind, ns, pod, err := mesh.ParseNodeID(nodeID)
	if err != nil {
		return mesh.Group{}, fmt.Errorf("%w: %w", ErrDenied, err)
	}
	sa, _, ok := strings.Cut(pod, "-")
	id := mesh.Identity{Namespace: ns, ServiceAccount: sa}
	if kind != mesh.NodeKindSidecar || !ok || id != peer.Identity {
		return mesh.Group{}, fmt.Errorf("%w: no pod %s runs as %s", ErrDenied, nodeID, peer)
	}
	return mesh.Group{Kind: mesh.ProxyEnvoy, Identity: id}, nil
}

// adsTypes are the type URLs a request may carry.
var adsTypes = []string{
	resourcev3.ListenerType,
	resourcev3.RouteType,
	resourcev3.ClusterType,
	resourcev3.EndpointType,
	resourcev3.SecretType,
	resourcev3.RuntimeType, // a type the cache knows, of which no group has any
	"",                     // none, which ADS requires
	"type.googleapis.com/envoy.api.v2.auth.Secret", // Secret's v2 name
}

// Indexes of adsTypes.
const (
	typeListener = iota
	typeRoute
	typeCluster
	typeEndpoint
	typeSecret
	typeRuntime
	typeNone
	typeV2Secret
)

// adsNames are the resource names a request may carry: every name of the three
// groups (newADSFixture checks it), and some that are none.
var adsNames = []string{
	"*",
	"",
	translate.IdentitySecret,
	translate.TrustBundleSecret,
	translate.OutboundListener,
	translate.InboundListener,
	translate.PrometheusListener,
	translate.AdminCluster,
	"blackhole",
	translate.PassthroughCluster, // no group has it
	// bookbuyer's
	"out|bookstore/bookstore|14001",
	"out|bookstore/bookstore-v1|14001",
	"out|bookstore/bookstore-v2|14001",
	// bookstore's and bookwarehouse's
	"in|14001",
	"in|9090",
	"out|bookwarehouse/bookwarehouse|14001",
	"out|bookwarehouse/bookwarehouse|9090",
	"out|bookwarehouse/mysql|3306",
	// none
	"identity\x00",
	"IDENTITY",
	" identity",
	"envoy/bookstore/bookstore",
	"sidecar~bookstore~bookstore-victim",
	"out|bookstore/bookstore|14001/../in|14001",
	strings.Repeat("x", 300),
}

// nameIndex is the index of a name in adsNames, for the seeds.
func nameIndex(name string) int {
	i := slices.Index(adsNames, name)
	if i < 0 {
		panic("no resource name " + name + " in adsNames")
	}
	return i
}

// nodeChoice is the node a request carries.
type nodeChoice int

const (
	nodeNone         nodeChoice = iota // none: the stream's, as proxies send after the first request
	nodeOwn                            // the stream's own pod
	nodeOwnCluster                     // the stream's own pod, with bookstore's cluster
	nodeOwnMetadata                    // the stream's own pod, with metadata naming bookstore's group
	nodeOwnUserAgent                   // the stream's own pod, with a user agent, which tells no group
	nodeFirst                          // the node of the stream's first request, again
	nodeAlt                            // another pod of the peer's identity
	nodeStore                          // bookstore's connected pod
	nodeWarehouse                      // bookwarehouse's connected pod
	nodeEmptyID                        // a node without an ID
	nodeMalformed                      // an ID that is not kind~namespace~name
	nodeNoPod                          // the ID of a pod that does not exist
	numNodeChoices
)

// versionChoice is a SotW request's version, or a delta request's initial
// version of a resource.
type versionChoice int

const (
	versionNone      versionChoice = iota // ""
	versionLast                           // the last the stream was sent of the type (of the resource, in delta)
	versionOwn                            // bookbuyer's current one
	versionStore                          // bookstore's
	versionWarehouse                      // bookwarehouse's
	versionStale                          // one the server never sent
	numVersionChoices
)

// nonceChoice is a request's response nonce.
type nonceChoice int

const (
	nonceNone       nonceChoice = iota // ""
	nonceLast                          // of the stream's last response
	nonceLastOfType                    // of the stream's last response of the type
	nonceFirst                         // of the stream's first response: stale once another came
	nonceFuture                        // one the server has not sent yet
	nonceGarbage
	numNonceChoices
)

// adsInput is what an input asks for. It is decoded from bytes, every byte
// sequence being an input:
//
//	header    conns-1 (bit 0), streams-1 (bits 1–7, mod 3)
//	stream    delta (bit 0), connection (bits 1–7, mod conns); one byte a stream
//	op        a: stream (bits 0–5, mod streams), NACK (bit 6), wait (bit 7);
//	          a wait is that byte alone: read the stream until it is quiet
//	          b: nodeChoice, c: type (index of adsTypes), d: versionChoice
//	          (bits 0–3), nonceChoice (bits 4–7), e: the numbers of names
//	          (bits 0–1), unsubscribed names (bits 2–3) and initial versions
//	          (bits 4–5), then the names and unsubscribed names (an index of
//	          adsNames each), and the initial versions (a name and a
//	          versionChoice each)
//
// Choices are taken modulo their number, and missing bytes are zeros. An
// input has at most maxADSOps operations, maxADSWaits waits and maxADSNACKs
// NACKs (each holds its stream for callbacks.nackBackoff); the rest are
// dropped. A SotW request ignores unsubscribed names and initial versions, a
// delta request the version.
type adsInput struct {
	conns   int
	streams []adsStream
	ops     []adsOp
}

type adsStream struct {
	delta bool
	conn  int
}

type adsOp struct {
	stream     int
	wait, nack bool
	node       nodeChoice
	typ        int
	version    versionChoice
	nonce      nonceChoice
	names      []int
	unsub      []int
	initial    []adsInitial
}

type adsInitial struct {
	name    int
	version versionChoice
}

const (
	maxADSOps   = 16
	maxADSWaits = 4
	maxADSNACKs = 2
)

type byteReader []byte

func (r *byteReader) more() bool { return len(*r) > 0 }

func (r *byteReader) next() int {
	if len(*r) == 0 {
		return 0
	}
	b := (*r)[0]
	*r = (*r)[1:]
	return int(b)
}

func decodeADSInput(data []byte) adsInput {
	r := byteReader(data)
	h := r.next()
	in := adsInput{conns: 1 + h&1}
	for range 1 + (h>>1)%3 {
		b := r.next()
		in.streams = append(in.streams, adsStream{delta: b&1 == 1, conn: (b >> 1) % in.conns})
	}
	waits, nacks := 0, 0
	for r.more() && len(in.ops) < maxADSOps {
		a := r.next()
		op := adsOp{stream: (a & 0x3f) % len(in.streams)}
		if a&0x80 != 0 {
			if waits < maxADSWaits {
				waits++
				op.wait = true
				in.ops = append(in.ops, op)
			}
			continue
		}
		if a&0x40 != 0 && nacks < maxADSNACKs {
			nacks++
			op.nack = true
		}
		op.node = nodeChoice(r.next() % int(numNodeChoices))
		op.typ = r.next() % len(adsTypes)
		vn := r.next()
		op.version, op.nonce = versionChoice((vn&15)%int(numVersionChoices)), nonceChoice((vn>>4)%int(numNonceChoices))
		counts := r.next()
		for range counts & 3 {
			op.names = append(op.names, r.next()%len(adsNames))
		}
		for range (counts >> 2) & 3 {
			op.unsub = append(op.unsub, r.next()%len(adsNames))
		}
		for range (counts >> 4) & 3 {
			name := r.next() % len(adsNames)
			op.initial = append(op.initial, adsInitial{name: name, version: versionChoice(r.next() % int(numVersionChoices))})
		}
		in.ops = append(in.ops, op)
	}
	return in
}

// encode is the inverse of decodeADSInput, for the seeds.
func (in adsInput) encode() []byte {
	b := []byte{byte(in.conns-1) | byte(len(in.streams)-1)<<1}
	for _, s := range in.streams {
		c := byte(s.conn) << 1
		if s.delta {
			c |= 1
		}
		b = append(b, c)
	}
	for _, op := range in.ops {
		a := byte(op.stream)
		if op.wait {
			b = append(b, a|0x80)
			continue
		}
		if op.nack {
			a |= 0x40
		}
		b = append(b, a, byte(op.node), byte(op.typ), byte(op.version)|byte(op.nonce)<<4,
			byte(len(op.names))|byte(len(op.unsub))<<2|byte(len(op.initial))<<4)
		for _, n := range op.names {
			b = append(b, byte(n))
		}
		for _, n := range op.unsub {
			b = append(b, byte(n))
		}
		for _, iv := range op.initial {
			b = append(b, byte(iv.name), byte(iv.version))
		}
	}
	return b
}

// adsFixture is the server and what the inputs are checked against.
type adsFixture struct {
	srv   *Server
	addr  string
	roots *x509.CertPool
	// peer is the fuzzing proxy's certificate, of adsPeer.
	peer tls.Certificate
	// own is the peer's group; others are the victims'.
	own    *groupView
	others []*groupView
	log    *refusalLog
	// inputs numbers the inputs, whose pods have names of their own.
	inputs atomic.Int64
}

// groupView is a group's snapshot as the cache serves it.
type groupView struct {
	name string
	// resources, their versions and the type versions, by type URL.
	resources        map[string]map[string]types.Resource
	resourceVersions map[string]map[string]string
	versions         map[string]string
	// wireVersions are the versions go-control-plane puts in delta
	// responses: a hash of the resource's encoding, not the version the
	// snapshot gives it (which it keeps as the stream's state).
	wireVersions map[string]map[string]string
}

func newADSFixture(f *testing.F) *adsFixture {
	ca, err := testpki.NewCA("fuzz")
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	nodes := &cache.Nodes{}
	snapshots := cache.New(nodes, nil)
	for group, r := range adsSnapshots(f, ca) {
		if _, err := snapshots.Update(ctx, group, r); err != nil {
			f.Fatal(err)
		}
	}
	fx := &adsFixture{roots: ca.Pool(), log: &refusalLog{seen: map[string][]refusal{}}}
	fx.own = viewOf(f, snapshots, envoyGroup(adsPeer))
	for url, rs := range fx.own.resources {
		if len(rs) == 0 {
			f.Fatalf("group %s has no %s", fx.own.name, TypeName(url))
		}
	}
	for _, v := range adsVictims {
		fx.others = append(fx.others, viewOf(f, snapshots, envoyGroup(v)))
	}
	for _, g := range append([]*groupView{fx.own}, fx.others...) {
		for url, rs := range g.resources {
			for name := range rs {
				if !slices.Contains(adsNames, name) {
					f.Fatalf("group %s has %s %q, which adsNames lacks: add it", g.name, TypeName(url), name)
				}
			}
		}
	}

	serving, err := ca.Server([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		f.Fatal(err)
	}
	servingCert, err := serving.TLS()
	if err != nil {
		f.Fatal(err)
	}
	fx.srv = New(Options{
		Address: "127.0.0.1:0",
		TLS: func(*tls.ClientHelloInfo) (*tls.Certificate, *x509.CertPool, error) {
			return &servingCert, ca.Pool(), nil
		},
		Authorizer: podAuthorizer{},
		Cache:      snapshots,
		Nodes:      nodes,
		Log:        logr.New(fx.log),
	})
	fx.log.cb = fx.srv.cb
	done := make(chan error, 1)
	go func() { done <- fx.srv.Start(ctx) }()
	addr, err := fx.srv.Addr(ctx)
	if err != nil {
		f.Fatal(err)
	}
	fx.addr = addr.String()
	if fx.peer, err = workloadCert(ca, adsPeer); err != nil {
		f.Fatal(err)
	}

	// The victims' pods stay connected, with a stream of each kind
	// subscribed to everything.
	var conns []*grpc.ClientConn
	f.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
		cancel()
		if err := <-done; err != nil {
			f.Error(err)
		}
	})
	for i, v := range adsVictims {
		cert, err := workloadCert(ca, v)
		if err != nil {
			f.Fatal(err)
		}
		conn, err := xdstest.Dial(fx.addr, "localhost", &cert, ca.Pool())
		if err != nil {
			f.Fatal(err)
		}
		conns = append(conns, conn)
		sotw, err := xdstest.OpenStream(ctx, conn, adsVictimNode(i))
		if err != nil {
			f.Fatal(err)
		}
		delta, err := xdstest.OpenDeltaStream(ctx, conn, adsVictimNode(i))
		if err != nil {
			f.Fatal(err)
		}
		for _, url := range adsTypes[:typeRuntime] {
			if err := sotw.Subscribe(url, nil); err != nil {
				f.Fatal(err)
			}
			if err := delta.Subscribe(url, nil); err != nil {
				f.Fatal(err)
			}
		}
		go func() {
			for {
				if _, err := sotw.Recv(); err != nil {
					return
				}
			}
		}()
		go func() {
			for {
				if _, err := delta.Recv(); err != nil {
					return
				}
			}
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		connected := map[string]ProxyStatus{}
		for _, p := range fx.srv.Proxies() {
			connected[p.NodeID] = p
		}
		ok := true
		for i, v := range adsVictims {
			p := connected[adsVictimNode(i)]
			ok = ok && p.Group == envoyGroup(v) && p.Streams == 2
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			f.Fatalf("the victims' pods did not connect: %v", fx.srv.Proxies())
		}
	}
	return fx
}

func workloadCert(ca *testpki.CA, id mesh.Identity) (tls.Certificate, error) {
	kp, err := ca.Workload(id.SPIFFE("cluster.local"))
	if err != nil {
		return tls.Certificate{}, err
	}
	return kp.TLS()
}

// adsSnapshots translates the bookstore demo for the three groups, each with
// a workload certificate of its own, and stamps every resource with its
// group.
func adsSnapshots(f *testing.F, ca *testpki.CA) map[string]*translate.Resources {
	data, err := os.ReadFile("../translate/testdata/in/bookstore.yaml")
	if err != nil {
		f.Fatal(err)
	}
	in, err := meshtest.Decode(data)
	if err != nil {
		f.Fatal(err)
	}
	m, _ := mesh.Build(in)
	sh := translate.NewShared()
	out := map[string]*translate.Resources{}
	for _, g := range m.Groups {
		if g.Kind != mesh.ProxyEnvoy || g.Identity != adsPeer && !slices.Contains(adsVictims, g.Identity) {
			continue
		}
		kp, err := ca.Workload(g.Identity.SPIFFE("cluster.local"))
		if err != nil {
			f.Fatal(err)
		}
		r, err := sh.Translate(m.View(g), &translate.Certificates{CertChain: kp.CertPEM, PrivateKey: kp.KeyPEM, TrustBundle: ca.PEM})
		if err != nil {
			f.Fatal(err)
		}
		out[g.String()] = stamped(r, g.String())
	}
	if len(out) != 1+len(adsVictims) {
		f.Fatalf("the bookstore demo has groups %v of %s and %v", slices.Sorted(maps.Keys(out)), adsPeer, adsVictims)
	}
	return out
}

// stamped is r with its group written into every resource, so that no two
// groups have a resource alike, not even those translation makes the same for
// every group (the Prometheus listener, the admin cluster, the trust bundle):
// a resource of another group cannot pass for one of the group's own.
func stamped(r *translate.Resources, group string) *translate.Resources {
	out := *r // keeps what translation recorded of the references between them
	meta := func() *corev3.Metadata {
		return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
			"fuzz": {Fields: map[string]*structpb.Value{"group": structpb.NewStringValue(group)}},
		}}
	}
	out.Listeners = cloneEach(r.Listeners, func(l *listenerv3.Listener) { l.Metadata = meta() })
	out.Routes = cloneEach(r.Routes, func(rc *routev3.RouteConfiguration) { rc.Metadata = meta() })
	out.Clusters = cloneEach(r.Clusters, func(c *clusterv3.Cluster) { c.Metadata = meta() })
	out.Endpoints = cloneEach(r.Endpoints, func(e *endpointv3.ClusterLoadAssignment) {
		e.NamedEndpoints = map[string]*endpointv3.Endpoint{"fuzz": {Hostname: group}}
	})
	out.Secrets = cloneEach(r.Secrets, func(s *tlsv3.Secret) {
		// The identity certificate is the group's already.
		if ca := s.GetValidationContext().GetTrustedCa(); ca != nil {
			ca.Specifier = &corev3.DataSource_InlineBytes{InlineBytes: fmt.Appendf(bytes.Clone(ca.GetInlineBytes()), "# the trust bundle of %s\n", group)}
		}
	})
	return &out
}

func cloneEach[T proto.Message](in []T, stamp func(T)) []T {
	out := make([]T, len(in))
	for i, m := range in {
		out[i] = proto.Clone(m).(T)
		stamp(out[i])
	}
	return out
}

func viewOf(f *testing.F, c *cache.Cache, group string) *groupView {
	snap, err := c.GetSnapshot(group)
	if err != nil {
		f.Fatal(err)
	}
	g := &groupView{
		name:      group,
		resources: map[string]map[string]types.Resource{}, resourceVersions: map[string]map[string]string{},
		versions: map[string]string{}, wireVersions: map[string]map[string]string{},
	}
	for _, url := range adsTypes[:typeRuntime] {
		g.resources[url] = snap.GetResources(url)
		g.resourceVersions[url] = snap.GetVersionMap(url)
		g.versions[url] = snap.GetVersion(url)
		g.wireVersions[url] = map[string]string{}
		for name, r := range g.resources[url] {
			b, err := cachev3.MarshalResource(r)
			if err != nil {
				f.Fatal(err)
			}
			g.wireVersions[url][name] = cachev3.HashResource(b)
		}
	}
	return g
}

// refusalLog is the server's log, which tells when a stream was refused for
// naming another node (the line of callbacks.request with a "requested"
// node): it keeps that moment and the server's record of the stream, whose
// times of the last response of each type (stream.sent, set before each send
// on the goroutine that also refuses) tell whether anything was sent after.
type refusalLog struct {
	cb   *callbacks
	mu   sync.Mutex
	seen map[string][]refusal // by the node the stream was authorized as
}

type refusal struct {
	s  *stream // nil when the record could not be read
	at time.Time
}

func (l *refusalLog) Init(logr.RuntimeInfo)          {}
func (l *refusalLog) Enabled(level int) bool         { return level == 0 }
func (l *refusalLog) Error(error, string, ...any)    {}
func (l *refusalLog) WithValues(...any) logr.LogSink { return l }
func (l *refusalLog) WithName(string) logr.LogSink   { return l }

func (l *refusalLog) Info(_ int, _ string, kv ...any) {
	at := time.Now()
	var node string
	switching := false
	for i := 0; i+1 < len(kv); i += 2 {
		switch kv[i] {
		case "node":
			node, _ = kv[i+1].(string)
		case "requested":
			switching = true
		}
	}
	if !switching {
		return
	}
	var found []refusal
	// The server logs the refusal on the stream's goroutine, not holding
	// its lock; should that change, give up rather than deadlock.
	locked := false
	for deadline := at.Add(time.Second); !locked && time.Now().Before(deadline); runtime.Gosched() {
		locked = l.cb.mu.TryLock()
	}
	if locked {
		for _, s := range l.cb.streams {
			if s.claimed.GetId() == node {
				found = append(found, refusal{s: s, at: at})
			}
		}
		l.cb.mu.Unlock()
	}
	if len(found) == 0 {
		found = []refusal{{at: at}}
	}
	l.mu.Lock()
	l.seen[node] = append(l.seen[node], found...)
	l.mu.Unlock()
}

// forget drops what was seen of node.
func (l *refusalLog) forget(node string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.seen, node)
}

// sentAfterRefusal tells what the server sent on the streams of node after
// refusing them, and forgets them.
func (l *refusalLog) sentAfterRefusal(node string) (after []string, logged bool, err error) {
	l.mu.Lock()
	seen := l.seen[node]
	delete(l.seen, node)
	l.mu.Unlock()
	if len(seen) == 0 {
		return nil, false, nil
	}
	l.cb.mu.Lock()
	defer l.cb.mu.Unlock()
	for _, r := range seen {
		if r.s == nil {
			return nil, true, fmt.Errorf("the server's record of the stream of %s could not be read when it was refused", node)
		}
		for url, at := range r.s.sent {
			if at.After(r.at) {
				after = append(after, fmt.Sprintf("%s %v after", TypeName(url), at.Sub(r.at)))
			}
		}
	}
	return after, true, nil
}

// adsQuiet is how long a stream must be silent to be taken to have been
// answered.
const adsQuiet = 20 * time.Millisecond

// adsEndWait bounds the wait for the server to end a stream it must end.
const adsEndWait = 2 * time.Second

// clientStream is one stream of an input: its model, kept by the input's
// goroutine, and what its reader received.
type clientStream struct {
	index int
	delta bool
	sotw  discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	dlt   discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	done  chan struct{} // closed when the reader is done
	ownID string        // the stream's own pod

	// The model.
	first   *corev3.Node // the node of the first request, once authorized
	sent    bool         // a request was sent
	stopped bool         // the stream must end: nothing more is sent
	// mayEnd are the codes the stream may end with; mustEnd that it must.
	mayEnd  []codes.Code
	mustEnd bool
	nacks   int // consecutive NACKs, for the server's backoff

	mu sync.Mutex
	// last is when a request was sent or a response received; busyUntil is
	// when the server's NACK backoff ends.
	last, busyUntil time.Time
	responses       int
	firstNonce      string
	lastNonce       string
	nonces          map[string]string            // the last nonce of each type
	versions        map[string]string            // the last version of each type
	resVersions     map[string]map[string]string // delta: by type and resource
	ended           bool
	endErr          error
}

// adsRun is one input's run.
type adsRun struct {
	fx *adsFixture
	mu sync.Mutex
	// failures are the invariants the input broke.
	failures []string
}

func (r *adsRun) fail(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

func (r *adsRun) failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.failures) > 0
}

func (fx *adsFixture) run(t *testing.T, in adsInput) {
	k := fx.inputs.Add(1)
	r := &adsRun{fx: fx}
	conns := make([]*grpc.ClientConn, in.conns)
	for i := range conns {
		conn, err := xdstest.Dial(fx.addr, "localhost", &fx.peer, fx.roots)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conns[i] = conn
	}
	ctx, cancel := context.WithCancel(context.Background())
	var readers sync.WaitGroup
	defer readers.Wait()
	defer cancel()
	streams := make([]*clientStream, len(in.streams))
	for i, spec := range in.streams {
		s := &clientStream{
			index: i, delta: spec.delta, done: make(chan struct{}),
			// A pod of its own: no two streams, of this input or another,
			// are authorized as the same node.
			ownID:  fmt.Sprintf("%s~%s~%s-%d-%d", mesh.NodeKindSidecar, adsPeer.Namespace, adsPeer.ServiceAccount, k, i),
			mayEnd: []codes.Code{},
			nonces: map[string]string{}, versions: map[string]string{}, resVersions: map[string]map[string]string{},
		}
		ads := discoveryv3.NewAggregatedDiscoveryServiceClient(conns[spec.conn])
		var err error
		if s.delta {
			s.dlt, err = ads.DeltaAggregatedResources(ctx)
		} else {
			s.sotw, err = ads.StreamAggregatedResources(ctx)
		}
		if err != nil {
			t.Fatalf("opening stream %d: %v", i, err)
		}
		streams[i] = s
		readers.Add(1)
		go func() {
			defer readers.Done()
			r.read(s)
		}()
	}

	for _, op := range in.ops {
		s := streams[op.stream]
		if op.wait {
			settle(s)
			continue
		}
		if s.stopped {
			continue
		}
		r.send(s, op)
	}
	settle(streams...)
	endWait, stop := context.WithTimeout(ctx, adsEndWait)
	defer stop()
	for _, s := range streams {
		if !s.mustEnd || r.failed() {
			continue
		}
		select {
		case <-s.done:
		case <-endWait.Done():
		}
	}
	for _, s := range streams {
		r.checkEnd(s)
		fx.log.forget(s.first.GetId())
	}
	// Nothing the peer sends ends another group's streams.
	victims := map[string]ProxyStatus{}
	for _, p := range fx.srv.Proxies() {
		victims[p.NodeID] = p
	}
	for i, v := range adsVictims {
		if p := victims[adsVictimNode(i)]; p.Group != envoyGroup(v) || p.Streams != 2 {
			r.fail("%s's pod is no longer connected with its two streams: %+v", v, p)
		}
	}
	for _, f := range r.failures {
		t.Error(f)
	}
}

// settle waits until the streams are quiet, or ended.
func settle(streams ...*clientStream) {
	giveUp := time.Now().Add(3 * time.Second)
	for {
		var until time.Time
		for _, s := range streams {
			s.mu.Lock()
			if !s.ended {
				u := s.last
				if s.busyUntil.After(u) {
					u = s.busyUntil
				}
				if u = u.Add(adsQuiet); u.After(until) {
					until = u
				}
			}
			s.mu.Unlock()
		}
		now := time.Now()
		if !until.After(now) || now.After(giveUp) {
			return
		}
		time.Sleep(until.Sub(now))
	}
}

// node is the node of a choice, on stream s.
func (s *clientStream) node(c nodeChoice) *corev3.Node {
	switch c {
	case nodeNone:
		return nil
	case nodeOwnCluster:
		return &corev3.Node{Id: s.ownID, Cluster: adsVictims[0].Namespace}
	case nodeOwnMetadata:
		return &corev3.Node{Id: s.ownID, Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{
			"group": structpb.NewStringValue(envoyGroup(adsVictims[0])),
		}}}
	case nodeOwnUserAgent:
		return &corev3.Node{Id: s.ownID, UserAgentName: "fuzz"}
	case nodeFirst:
		if s.first != nil {
			return proto.Clone(s.first).(*corev3.Node)
		}
	case nodeAlt:
		return &corev3.Node{Id: s.ownID + "-alt"}
	case nodeStore:
		return &corev3.Node{Id: adsVictimNode(0)}
	case nodeWarehouse:
		return &corev3.Node{Id: adsVictimNode(1)}
	case nodeEmptyID:
		return &corev3.Node{Cluster: adsPeer.Namespace}
	case nodeMalformed:
		return &corev3.Node{Id: mesh.NodeKindSidecar + "~" + adsPeer.Namespace}
	case nodeNoPod:
		return &corev3.Node{Id: mesh.NodeKindSidecar + "~" + adsPeer.Namespace + "~gone"}
	}
	return &corev3.Node{Id: s.ownID}
}

// provenBy tells whether the peer's certificate proves the node a stream's
// first request names: the stream's own pod, and another of its identity.
func provenBy(c nodeChoice) bool {
	switch c {
	case nodeOwn, nodeOwnCluster, nodeOwnMetadata, nodeOwnUserAgent, nodeFirst, nodeAlt:
		return true
	}
	return false
}

// expect updates the model of s for a request of node and type, and tells
// whether the server answers it, or may.
func (s *clientStream) expect(c nodeChoice, node *corev3.Node, typeURL string) (served bool) {
	end := func(codes ...codes.Code) bool {
		s.mayEnd = append(s.mayEnd, codes...)
		s.mustEnd, s.stopped = true, true
		return false
	}
	first := !s.sent
	s.sent = true
	// State of the world checks the type URL first, delta the node first.
	if !s.delta && typeURL == "" {
		return end(codes.InvalidArgument)
	}
	switch {
	case first && node.GetId() == "":
		return end(codes.InvalidArgument)
	case first && !provenBy(c):
		return end(codes.PermissionDenied)
	case first:
		s.first = node
	case node == nil || proto.Equal(node, s.first):
	case node.GetId() != s.first.GetId() || node.GetCluster() != s.first.GetCluster() || !proto.Equal(node.GetMetadata(), s.first.GetMetadata()):
		// Another node: the proxy is refused whatever else it asks.
		return end(codes.PermissionDenied)
	default:
		// The same node, but for a field no group is told by: the server
		// may take it or refuse the stream.
		s.mayEnd = append(s.mayEnd, codes.PermissionDenied)
	}
	if typeURL == "" {
		return end(codes.InvalidArgument)
	}
	return true
}

func (r *adsRun) send(s *clientStream, op adsOp) {
	typeURL := adsTypes[op.typ]
	node := s.node(op.node)
	served := s.expect(op.node, node, typeURL)

	s.mu.Lock()
	version := map[versionChoice]string{
		versionLast:      s.versions[typeURL],
		versionOwn:       r.fx.own.versions[typeURL],
		versionStore:     r.fx.others[0].versions[typeURL],
		versionWarehouse: r.fx.others[1].versions[typeURL],
		versionStale:     "0",
	}[op.version]
	nonce := map[nonceChoice]string{
		nonceLast:       s.lastNonce,
		nonceLastOfType: s.nonces[typeURL],
		nonceFirst:      s.firstNonce,
		nonceFuture:     "1000",
		nonceGarbage:    "not a nonce",
	}[op.nonce]
	initial := map[string]string{}
	for _, iv := range op.initial {
		name := adsNames[iv.name]
		initial[name] = map[versionChoice]string{
			versionLast:      s.resVersions[typeURL][name],
			versionOwn:       r.fx.own.resourceVersions[typeURL][name],
			versionStore:     r.fx.others[0].resourceVersions[typeURL][name],
			versionWarehouse: r.fx.others[1].resourceVersions[typeURL][name],
			versionStale:     "0",
		}[iv.version]
	}
	now := time.Now()
	s.last = now
	if served && op.nack {
		// The server holds the stream, and the requests after, that long.
		s.nacks++
		if s.busyUntil.Before(now) {
			s.busyUntil = now
		}
		s.busyUntil = s.busyUntil.Add(nackBackoff(s.nacks))
	} else if served {
		s.nacks = 0
	}
	s.mu.Unlock()

	names := func(idx []int) []string {
		var out []string
		for _, i := range idx {
			out = append(out, adsNames[i])
		}
		return out
	}
	var nack *statuspb.Status
	if op.nack {
		nack = &statuspb.Status{Code: int32(codes.InvalidArgument), Message: "fuzzed NACK"}
	}
	var err error
	if s.delta {
		req := &discoveryv3.DeltaDiscoveryRequest{
			Node: node, TypeUrl: typeURL, ResponseNonce: nonce, ErrorDetail: nack,
			ResourceNamesSubscribe: names(op.names), ResourceNamesUnsubscribe: names(op.unsub),
		}
		if len(initial) > 0 {
			req.InitialResourceVersions = initial
		}
		err = s.dlt.Send(req)
	} else {
		err = s.sotw.Send(&discoveryv3.DiscoveryRequest{
			Node: node, TypeUrl: typeURL, ResponseNonce: nonce, ErrorDetail: nack,
			ResourceNames: names(op.names), VersionInfo: version,
		})
	}
	if err != nil {
		// The server ended the stream; its reader has the status.
		s.stopped = true
	}
}

// read receives the responses of s until the stream ends, checking each.
func (r *adsRun) read(s *clientStream) {
	defer close(s.done)
	for {
		var typeURL, version, nonce string
		var err error
		if s.delta {
			var resp *discoveryv3.DeltaDiscoveryResponse
			if resp, err = s.dlt.Recv(); err == nil {
				r.checkDelta(s, resp)
				typeURL, version, nonce = resp.GetTypeUrl(), resp.GetSystemVersionInfo(), resp.GetNonce()
				s.mu.Lock()
				rv := s.resVersions[typeURL]
				if rv == nil {
					rv = map[string]string{}
					s.resVersions[typeURL] = rv
				}
				for _, res := range resp.GetResources() {
					rv[res.GetName()] = res.GetVersion()
				}
				for _, name := range resp.GetRemovedResources() {
					delete(rv, name)
				}
				s.mu.Unlock()
			}
		} else {
			var resp *discoveryv3.DiscoveryResponse
			if resp, err = s.sotw.Recv(); err == nil {
				r.checkSotW(s, resp)
				typeURL, version, nonce = resp.GetTypeUrl(), resp.GetVersionInfo(), resp.GetNonce()
			}
		}
		s.mu.Lock()
		s.last = time.Now()
		if err != nil {
			s.ended, s.endErr = true, err
			s.mu.Unlock()
			return
		}
		s.responses++
		if s.firstNonce == "" {
			s.firstNonce = nonce
		}
		s.lastNonce, s.nonces[typeURL], s.versions[typeURL] = nonce, nonce, version
		s.mu.Unlock()
	}
}

func (r *adsRun) checkSotW(s *clientStream, resp *discoveryv3.DiscoveryResponse) {
	own, url := r.fx.own, resp.GetTypeUrl()
	if v := resp.GetVersionInfo(); v != own.versions[url] {
		r.fail("stream %d (SotW): a %s response of version %q%s, not %s's %q", s.index, TypeName(url), v, r.fx.whoseVersion(url, v), own.name, own.versions[url])
	}
	for _, a := range resp.GetResources() {
		if _, bad := r.check(url, a); bad != "" {
			r.fail("stream %d (SotW): a %s response carries %s", s.index, TypeName(url), bad)
		}
	}
}

func (r *adsRun) checkDelta(s *clientStream, resp *discoveryv3.DeltaDiscoveryResponse) {
	own, url := r.fx.own, resp.GetTypeUrl()
	if v := resp.GetSystemVersionInfo(); v != own.versions[url] {
		r.fail("stream %d (delta): a %s response of system version %q%s, not %s's %q", s.index, TypeName(url), v, r.fx.whoseVersion(url, v), own.name, own.versions[url])
	}
	for _, res := range resp.GetResources() {
		name, bad := r.check(url, res.GetResource())
		switch v := res.GetVersion(); {
		case bad != "":
			r.fail("stream %d (delta): a %s response carries %s", s.index, TypeName(url), bad)
		case res.GetName() != name:
			r.fail("stream %d (delta): a %s response names %q the resource %q", s.index, TypeName(url), res.GetName(), name)
		case v != own.resourceVersions[url][name] && v != own.wireVersions[url][name]:
			r.fail("stream %d (delta): a %s response gives %q version %q, not %s's %q or %q", s.index, TypeName(url), name, v, own.name, own.resourceVersions[url][name], own.wireVersions[url][name])
		}
	}
}

// check tells whether a, in a response of typeURL, is a resource of the
// peer's group, and which it is.
func (r *adsRun) check(typeURL string, a *anypb.Any) (name, bad string) {
	own := r.fx.own
	if a.GetTypeUrl() != typeURL {
		return "", fmt.Sprintf("a resource of type %s", a.GetTypeUrl())
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		return "", fmt.Sprintf("a resource that does not decode: %v", err)
	}
	name = cachev3.GetResourceName(m)
	want, ok := own.resources[typeURL][name]
	if !ok || !proto.Equal(m, want) {
		return name, fmt.Sprintf("%q, which is not %s's but %s", name, own.name, r.fx.whose(typeURL, m))
	}
	return name, ""
}

// whose names the groups that have m.
func (fx *adsFixture) whose(typeURL string, m proto.Message) string {
	var groups []string
	for _, g := range fx.others {
		if have, ok := g.resources[typeURL][cachev3.GetResourceName(m)]; ok && proto.Equal(have, m) {
			groups = append(groups, g.name)
		}
	}
	if len(groups) == 0 {
		return "no group's"
	}
	return strings.Join(groups, " and ") + "'s"
}

func (fx *adsFixture) whoseVersion(typeURL, v string) string {
	for _, g := range fx.others {
		if v != "" && g.versions[typeURL] == v {
			return " (" + g.name + "'s)"
		}
	}
	return ""
}

// checkEnd holds the end of s to its model.
func (r *adsRun) checkEnd(s *clientStream) {
	s.mu.Lock()
	ended, err, responses := s.ended, s.endErr, s.responses
	s.mu.Unlock()
	kind := "SotW"
	if s.delta {
		kind = "delta"
	}
	code := status.Code(err)
	switch {
	case !ended && s.mustEnd:
		r.fail("stream %d (%s): still open after a request that must end it with %s", s.index, kind, endCodes(s))
		return
	case !ended:
		return
	case !slices.Contains(s.mayEnd, code):
		r.fail("stream %d (%s): ended with %v, want %s", s.index, kind, err, endCodes(s))
		return
	case code != codes.PermissionDenied:
		return
	case s.first == nil:
		// Refused at its first request: nothing was ever asked of a
		// group.
		if responses > 0 {
			r.fail("stream %d (%s): %d responses on a stream whose first node was refused", s.index, kind, responses)
		}
		return
	}
	after, logged, lerr := r.fx.log.sentAfterRefusal(s.first.GetId())
	switch {
	case lerr != nil:
		r.fail("stream %d (%s): %v", s.index, kind, lerr)
	case !logged:
		r.fail("stream %d (%s): refused (%v) without the server logging the refusal of another node, whose moment tells whether it sent anything after", s.index, kind, err)
	case len(after) > 0:
		r.fail("stream %d (%s): refused for naming another node, and then sent %v", s.index, kind, after)
	}
}

func endCodes(s *clientStream) string {
	if len(s.mayEnd) == 0 {
		return "no end"
	}
	return fmt.Sprint(s.mayEnd)
}

// updateADSSeeds writes adsSeeds to testdata/fuzz/FuzzADSServer.
var updateADSSeeds = flag.Bool("update-ads-seeds", false, "write adsSeeds to testdata/fuzz/FuzzADSServer")

// TestADSServerSeeds holds the seeds in testdata/fuzz/FuzzADSServer, which
// `go test` runs as FuzzADSServer's, to the inputs of adsSeeds they encode.
func TestADSServerSeeds(t *testing.T) {
	for name, in := range adsSeeds {
		if got := decodeADSInput(in.encode()); !reflect.DeepEqual(got, in) {
			t.Errorf("seed %s decodes as %+v, not as %+v: it breaks a limit of adsInput", name, got, in)
		}
		want := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", in.encode())
		path := filepath.Join("testdata", "fuzz", "FuzzADSServer", name)
		if *updateADSSeeds {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is not seed %s (%v): run go test ./xds/server -run TestADSServerSeeds -update-ads-seeds", path, name, err)
		}
	}
}

// quiet is an operation that reads stream until it is quiet.
func quiet(stream int) adsOp { return adsOp{stream: stream, wait: true} }

// resourceNames are the indexes of names in adsNames.
func resourceNames(ns ...string) []int {
	var out []int
	for _, n := range ns {
		out = append(out, nameIndex(n))
	}
	return out
}

// adsSeeds are the seeds of FuzzADSServer, by file name.
var adsSeeds = map[string]adsInput{
	// The attack of issue 16: ACK the group's secrets as another group's
	// connected pod, which the cache would answer with its secrets.
	"sotw-ack-as-other-node": {conns: 1, streams: []adsStream{{}}, ops: []adsOp{
		{node: nodeOwn, typ: typeSecret},
		quiet(0),
		{node: nodeStore, typ: typeSecret, version: versionLast, nonce: nonceLast},
	}},
	"delta-ack-as-other-node": {conns: 1, streams: []adsStream{{delta: true}}, ops: []adsOp{
		{node: nodeOwn, typ: typeSecret},
		quiet(0),
		{node: nodeWarehouse, typ: typeSecret, nonce: nonceLast},
	}},
	// Everything, as Envoy asks for it, and the ACKs.
	"sotw-wildcard-all-types": {conns: 1, streams: []adsStream{{}}, ops: []adsOp{
		{node: nodeOwn, typ: typeCluster},
		{typ: typeEndpoint},
		{typ: typeListener},
		{typ: typeRoute},
		{typ: typeSecret},
		quiet(0),
		{typ: typeCluster, version: versionLast, nonce: nonceLastOfType},
		{typ: typeSecret, version: versionLast, nonce: nonceLastOfType},
		{node: nodeFirst, typ: typeListener, version: versionOwn, nonce: nonceLastOfType},
	}},
	// Secrets by explicit wildcard, then by name, then none.
	"delta-wildcard-secrets": {conns: 1, streams: []adsStream{{delta: true}}, ops: []adsOp{
		{node: nodeOwn, typ: typeSecret, names: resourceNames("*")},
		quiet(0),
		{typ: typeSecret, nonce: nonceLast, names: resourceNames(translate.IdentitySecret), unsub: resourceNames("*")},
		quiet(0),
		{typ: typeSecret, nonce: nonceLast, unsub: resourceNames(translate.IdentitySecret, translate.TrustBundleSecret)},
	}},
	// Names only other groups have, and names that are no resource's.
	"explicit-other-groups-names": {conns: 1, streams: []adsStream{{}, {delta: true}}, ops: []adsOp{
		{node: nodeOwn, typ: typeCluster, names: resourceNames("in|14001", "out|bookwarehouse/mysql|3306", translate.AdminCluster)},
		{stream: 1, node: nodeOwn, typ: typeEndpoint, names: resourceNames("out|bookwarehouse/bookwarehouse|14001", "out|bookstore/bookstore|14001", "*")},
		{typ: typeRoute, names: resourceNames("out|bookwarehouse/bookwarehouse|9090", "identity\x00", "")},
		{stream: 1, typ: typeSecret, names: resourceNames(translate.IdentitySecret), initial: []adsInitial{
			{name: nameIndex(translate.IdentitySecret), version: versionStore},
			{name: nameIndex("in|9090"), version: versionWarehouse},
		}},
		quiet(1),
		{stream: 1, typ: typeCluster, nonce: nonceLast, names: resourceNames("in|9090", translate.PassthroughCluster)},
	}},
	// A NACK, backed off, and then the switch to another node.
	"nack-then-switch": {conns: 1, streams: []adsStream{{}}, ops: []adsOp{
		{node: nodeOwn, typ: typeListener},
		quiet(0),
		{nack: true, typ: typeListener, nonce: nonceLast},
		{node: nodeStore, typ: typeListener, version: versionStore, nonce: nonceLast},
	}},
	// Two connections, three streams: one authorized with a cluster and
	// then without, one as another pod of the identity and then as its
	// own, one whose first node is another group's.
	"streams-and-connections": {conns: 2, streams: []adsStream{{}, {delta: true, conn: 1}, {conn: 1}}, ops: []adsOp{
		{node: nodeOwnCluster, typ: typeSecret},
		{stream: 1, node: nodeAlt, typ: typeCluster},
		{stream: 2, node: nodeWarehouse, typ: typeListener},
		quiet(1),
		{typ: typeSecret, version: versionLast, nonce: nonceLast},
		{stream: 1, node: nodeOwn, typ: typeCluster, nonce: nonceLast},
		{node: nodeOwn, typ: typeSecret, version: versionLast, nonce: nonceLast},
	}},
	// An unknown type, Secret's v2 name, a stale nonce, and no type.
	"unknown-and-missing-types": {conns: 1, streams: []adsStream{{}, {delta: true}}, ops: []adsOp{
		{node: nodeOwn, typ: typeRuntime, version: versionStale},
		{stream: 1, node: nodeOwn, typ: typeV2Secret, names: resourceNames("*")},
		{typ: typeV2Secret, names: resourceNames(translate.IdentitySecret)},
		quiet(0),
		{typ: typeSecret, version: versionWarehouse, nonce: nonceFirst},
		{stream: 1, typ: typeNone, nonce: nonceLast},
		{typ: typeNone},
	}},
	// First requests without a node, without an ID, with a malformed one
	// and with a pod that does not exist.
	"first-request-nodes": {conns: 1, streams: []adsStream{{}, {delta: true}, {}}, ops: []adsOp{
		{typ: typeSecret},
		{stream: 1, node: nodeEmptyID, typ: typeSecret},
		{stream: 2, node: nodeMalformed, typ: typeSecret},
	}},
	// The stream's node with a user agent (which tells no group), then
	// with another group's metadata.
	"same-id-other-fields": {conns: 1, streams: []adsStream{{delta: true}, {}}, ops: []adsOp{
		{node: nodeOwn, typ: typeListener, names: resourceNames("*")},
		{stream: 1, node: nodeOwnMetadata, typ: typeCluster},
		quiet(0),
		{node: nodeOwnUserAgent, typ: typeListener, nonce: nonceLast},
		{stream: 1, node: nodeOwn, typ: typeCluster, version: versionLast, nonce: nonceLast},
		{node: nodeOwnMetadata, typ: typeListener, nonce: nonceLast},
	}},
}
