// Package server serves the snapshot cache over gRPC: ADS, state of the world
// and delta, with mutual TLS. A proxy gets configuration only after its client
// certificate proves the identity of the workload its node ID names.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	secretservice "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/go-logr/logr"
	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	toolscache "k8s.io/client-go/tools/cache"
	ctrlcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/cache"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// TLSSource returns the server's certificate for a handshake (chosen by the
// name the client asked for) and the trust bundle client certificates must
// chain to. It is called for every handshake, so a renewed certificate or a
// new root takes effect without a restart.
type TLSSource func(hello *tls.ClientHelloInfo) (*tls.Certificate, *x509.CertPool, error)

// Options configure a Server.
type Options struct {
	// Address to listen on, e.g. ":15128" (meshv1alpha1.DefaultXDSPort).
	Address string
	TLS     TLSSource
	// Authorizer maps a proxy's node ID and certificate to its group.
	Authorizer Authorizer
	Cache      *cache.Cache
	Nodes      *cache.Nodes
	// Observer, when set, hears of each proxy's first stream and last close.
	Observer ConnectionObserver
	// OnConfigState, when set, is called when a proxy accepts or rejects a
	// response of a version it did not hold: what it runs changed. It must
	// not block (the census publisher's Changed).
	OnConfigState func()
	// Workloads, when set, is the informer cache of the pods, MeshVMs,
	// namespaces and meshes the Authorizer reads: a change of a connected
	// proxy's workload, namespace or mesh authorizes its streams again,
	// and ends those it no longer admits.
	Workloads ctrlcache.Cache
	// MaxConnections bounds concurrent connections; 0 means 100,000.
	MaxConnections int
	Log            logr.Logger
}

// Server is the ADS server. It is a controller-runtime Runnable that runs on
// every replica, leader or not.
type Server struct {
	opts Options
	cb   *callbacks
	// ready is closed once the listener is bound; Addr is valid after it.
	ready chan struct{}
	addr  net.Addr
}

// New returns a server; Start runs it.
func New(opts Options) *Server {
	if opts.MaxConnections == 0 {
		opts.MaxConnections = 100_000
	}
	cb := newCallbacks(opts.Log, opts.Authorizer, opts.Nodes)
	cb.observer = opts.Observer
	cb.configState = opts.OnConfigState
	return &Server{opts: opts, cb: cb, ready: make(chan struct{})}
}

// NeedLeaderElection is false: every replica serves xDS.
func (s *Server) NeedLeaderElection() bool { return false }

// Addr waits until the server listens and returns its address.
func (s *Server) Addr(ctx context.Context) (net.Addr, error) {
	select {
	case <-s.ready:
		return s.addr, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Proxies returns the status of every connected proxy.
func (s *Server) Proxies() []ProxyStatus { return s.cb.Proxies() }

// Start serves until ctx ends, then stops gracefully.
func (s *Server) Start(ctx context.Context) error {
	lis, err := net.Listen("tcp", s.opts.Address)
	if err != nil {
		return fmt.Errorf("xDS server listening on %s: %w", s.opts.Address, err)
	}
	s.addr = lis.Addr()
	close(s.ready)
	lis = netutil.LimitListener(lis, s.opts.MaxConnections)

	gs := grpc.NewServer(
		grpc.Creds(closableTLS{credentials.NewTLS(s.tlsConfig())}),
		grpc.MaxConcurrentStreams(64),
		// A proxy's connection is idle but for small requests and ACKs,
		// and there are thousands: grpc-go's 32 KiB read buffer per
		// connection was half of the server's memory per proxy. Write
		// buffers go back to a pool after each flush.
		grpc.ReadBufferSize(4<<10),
		grpc.SharedWriteBuffer(true),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	xds := serverv3.NewServer(ctx, s.opts.Cache, s.cb)
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(gs, xds)
	// The per-type services too, for clients that do not use ADS.
	clusterservice.RegisterClusterDiscoveryServiceServer(gs, xds)
	endpointservice.RegisterEndpointDiscoveryServiceServer(gs, xds)
	listenerservice.RegisterListenerDiscoveryServiceServer(gs, xds)
	routeservice.RegisterRouteDiscoveryServiceServer(gs, xds)
	secretservice.RegisterSecretDiscoveryServiceServer(gs, xds)

	if s.opts.Workloads != nil {
		if err := s.watchWorkloads(ctx); err != nil {
			return err
		}
	}

	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(lis) }()
	s.opts.Log.Info("Serving xDS", "address", s.addr.String())
	select {
	case err := <-errc:
		return fmt.Errorf("xDS server: %w", err)
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		gs.Stop() // streams are long-lived: do not wait for them forever
	}
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("xDS server: %w", err)
	}
	return nil
}

// watchWorkloads rechecks the streams of a node when its pod or MeshVM is
// added, changed or deleted: a pod recreated under its name with another
// service account, or a MeshVM given another one, does not keep the streams
// of its former identity. Changes of namespaces' meshes and of meshes'
// trust recheck the streams they hold.
func (s *Server) watchWorkloads(ctx context.Context) error {
	// An update rechecks only when it changes what Authorize reads: the
	// object (its UID) or the group it makes. Pod status updates, the most
	// frequent events of a cluster, cost nothing here.
	podGroup := func(o client.Object) mesh.Group { return mesh.PodGroup(o.(*corev1.Pod)) }
	vmGroup := func(o client.Object) mesh.Group { return mesh.VMGroup(o.(*meshv1alpha1.MeshVM)) }
	for _, w := range []struct {
		obj    client.Object
		nodeID func(namespace, name string) string
		group  func(client.Object) mesh.Group
	}{{&corev1.Pod{}, mesh.PodNodeID, podGroup}, {&meshv1alpha1.MeshVM{}, mesh.VMNodeID, vmGroup}} {
		inf, err := s.opts.Workloads.GetInformer(ctx, w.obj, ctrlcache.BlockUntilSynced(false))
		if err != nil {
			return fmt.Errorf("watching %T for the xDS server: %w", w.obj, err)
		}
		recheck := func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if o, ok := obj.(client.Object); ok {
				s.cb.recheck(ctx, w.nodeID(o.GetNamespace(), o.GetName()))
			}
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) { recheck(obj) },
			UpdateFunc: func(old, obj any) {
				o, ok1 := old.(client.Object)
				n, ok2 := obj.(client.Object)
				if !ok1 || !ok2 || o.GetUID() != n.GetUID() || w.group(o) != w.group(n) {
					recheck(obj)
				}
			},
			DeleteFunc: recheck,
		}); err != nil {
			return fmt.Errorf("watching %T for the xDS server: %w", w.obj, err)
		}
	}
	// A namespace that leaves its mesh or joins another, and a mesh whose
	// trust domain or roots change, recheck the streams they hold.
	inNamespace := func(ns string) func(string) bool {
		return func(nodeID string) bool {
			_, n, _, err := mesh.ParseNodeID(nodeID)
			return err == nil && n == ns
		}
	}
	for _, w := range []struct {
		obj     client.Object
		changed func(old, obj client.Object) bool
		match   func(obj client.Object) func(string) bool
	}{
		{&corev1.Namespace{}, func(old, obj client.Object) bool {
			return old.GetLabels()[meshv1alpha1.MonitorLabel] != obj.GetLabels()[meshv1alpha1.MonitorLabel]
		}, func(obj client.Object) func(string) bool { return inNamespace(obj.GetName()) }},
		{&meshv1alpha1.MeshInstance{}, func(old, obj client.Object) bool {
			o, n := old.(*meshv1alpha1.MeshInstance), obj.(*meshv1alpha1.MeshInstance)
			return o.Spec.TrustDomain != n.Spec.TrustDomain || !equality.Semantic.DeepEqual(o.Status.TrustBundle, n.Status.TrustBundle)
		}, func(obj client.Object) func(string) bool { return inMesh(ctx, s.opts.Workloads, obj.GetName()) }},
	} {
		inf, err := s.opts.Workloads.GetInformer(ctx, w.obj, ctrlcache.BlockUntilSynced(false))
		if err != nil {
			return fmt.Errorf("watching %T for the xDS server: %w", w.obj, err)
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			UpdateFunc: func(old, obj any) {
				o, ok1 := old.(client.Object)
				n, ok2 := obj.(client.Object)
				if ok1 && ok2 && w.changed(o, n) {
					s.cb.recheckWhere(ctx, w.match(n))
				}
			},
			DeleteFunc: func(obj any) {
				if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
					obj = d.Obj
				}
				if o, ok := obj.(client.Object); ok {
					s.cb.recheckWhere(ctx, w.match(o))
				}
			},
		}); err != nil {
			return fmt.Errorf("watching %T for the xDS server: %w", w.obj, err)
		}
	}
	return nil
}

// inMesh says whether a node's workload may be of mesh name, as r has it:
// a pod or MeshVM of a namespace labelled into the mesh, or a MeshVM that
// names it. A node whose namespace or MeshVM r cannot read may be too:
// matching too much costs a recheck, too little leaves a stream its mesh
// no longer trusts.
func inMesh(ctx context.Context, r client.Reader, name string) func(nodeID string) bool {
	meshOf := map[string]string{} // namespace → its mesh, read once
	return func(nodeID string) bool {
		kind, ns, workload, err := mesh.ParseNodeID(nodeID)
		if err != nil {
			return true
		}
		m, ok := meshOf[ns]
		if !ok {
			n := &corev1.Namespace{}
			if err := r.Get(ctx, client.ObjectKey{Name: ns}, n); err != nil {
				return true
			}
			m = n.Labels[meshv1alpha1.MonitorLabel]
			meshOf[ns] = m
		}
		if m == name || kind != mesh.NodeKindVM {
			return m == name
		}
		vm := &meshv1alpha1.MeshVM{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: workload}, vm); err != nil {
			return true
		}
		return vm.Spec.Mesh == name
	}
}

// closableTLS is TLS whose server side keeps the connection in the peer's
// auth info, so that a stream whose workload changed can be ended: gRPC has
// no other way to end a stream from outside its handler.
type closableTLS struct {
	credentials.TransportCredentials
}

// connInfo is TLS auth info with the connection it came on.
type connInfo struct {
	credentials.TLSInfo
	conn net.Conn
}

func (c closableTLS) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ServerHandshake(raw)
	if err != nil {
		return nil, nil, err
	}
	tlsInfo, ok := info.(credentials.TLSInfo)
	if !ok {
		return conn, info, nil
	}
	return conn, connInfo{TLSInfo: tlsInfo, conn: conn}, nil
}

func (c closableTLS) Clone() credentials.TransportCredentials {
	return closableTLS{c.TransportCredentials.Clone()}
}

// tlsConfig requires a client certificate chaining to the current trust
// bundle, reading both certificate and bundle at every handshake.
func (s *Server) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{"h2"},
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool, err := s.opts.TLS(hello)
			if err != nil {
				return nil, fmt.Errorf("xDS server certificate: %w", err)
			}
			return &tls.Config{
				MinVersion:   tls.VersionTLS13,
				NextProtos:   []string{"h2"},
				Certificates: []tls.Certificate{*cert},
				ClientCAs:    pool,
				ClientAuth:   tls.RequireAndVerifyClientCert,
			}, nil
		},
	}
}
