package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	ctrlcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/open-service-mesh/osm-operator/controllers"
	"github.com/open-service-mesh/osm-operator/internal/testpki"
	"github.com/open-service-mesh/osm-operator/xds/cache"
	"github.com/open-service-mesh/osm-operator/xds/controlplane"
	"github.com/open-service-mesh/osm-operator/xds/server"
)

// controlPlane is the operator's xDS control plane as every replica runs it
// (xds/controlplane, the wiring cmd/xds.go uses), over an informer cache
// with the manager's options. With -enforced (the default) the census
// publisher runs too (its Lease in trustNamespace, the operator's), and so
// does the leader's EnforcedWriter, which reads it: writes and logs lists
// what both write, and the errors they log. Without, neither runs, as
// before the Enforced status.
type controlPlane struct {
	snapshots *cache.Cache
	server    *server.Server
	xds       *controlplane.ControlPlane
	// writes and logged are nil without -enforced.
	writes *writeLog
	logged *errorLog
	stop   context.CancelFunc
	done   chan struct{}
	// synced is closed when the informers the runner reads have synced,
	// at syncedAt.
	synced   chan struct{}
	syncedAt time.Time
}

// serverTLS writes the xDS server's certificate where server.FileTLS reads it.
func serverTLS(dir string, ca *testpki.CA) error {
	kp, err := ca.Server([]string{serverName}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	for name, b := range map[string][]byte{"tls.crt": kp.CertPEM, "tls.key": kp.KeyPEM, "ca.crt": ca.PEM} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

const serverName = "bench.osm-operator-xds.osm-system.svc"

// trustNamespace stands for the operator's namespace, where the mesh's
// trust bundle Secret is.
const trustNamespace = "osm-system"

func startControlPlane(cfg *rest.Config, scheme *runtime.Scheme, address, certDir string, log logr.Logger, enforced bool) (*controlPlane, error) {
	opts := controllers.CacheOptions("")
	opts.Scheme = scheme
	informers, err := ctrlcache.New(cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("creating the informer cache: %w", err)
	}
	k8s, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	var writes *writeLog
	var logged *errorLog
	var cpClient client.Client = k8s
	censusNamespace := ""
	if enforced {
		writes, logged = &writeLog{}, &errorLog{}
		log = logr.New(errorSink{next: log.GetSink(), log: logged})
		cpClient, censusNamespace = &countingClient{Client: k8s, log: writes}, trustNamespace
	}
	ctx, cancel := context.WithCancel(context.Background())
	xds := controlplane.New(controlplane.Options{
		Cache: informers, Client: cpClient, Address: address, TLS: server.FileTLS(certDir), Replica: "bench", TrustNamespace: trustNamespace,
		CensusNamespace: censusNamespace, Log: log,
	})
	cp := &controlPlane{snapshots: xds.Snapshots, server: xds.Server, xds: xds, writes: writes, logged: logged,
		stop: cancel, done: make(chan struct{}), synced: make(chan struct{})}
	var writer *controllers.EnforcedWriter
	if enforced {
		// The manager's client: it reads from the informer cache and writes
		// to the API server. An SMI policy's status is read from the API.
		cached, err := client.New(cfg, client.Options{Scheme: scheme, Cache: &client.CacheOptions{Reader: informers}})
		if err != nil {
			cancel()
			return nil, err
		}
		writer = &controllers.EnforcedWriter{
			Client: &countingClient{Client: cached, log: writes}, APIReader: k8s, Namespace: trustNamespace, Source: xds,
			Log: log.WithName("enforced"),
		}
	}
	parts := 2
	errs := make(chan error, 3)
	go func() { errs <- informers.Start(ctx) }()
	go func() { errs <- xds.Start(ctx) }()
	if writer != nil {
		// No manager and no election: this replica leads from its start.
		parts++
		go func() { errs <- writer.Start(ctx) }()
	}
	go func() {
		// The runner asks for these informers as it starts; asking again
		// only waits for the same ones.
		for _, obj := range []client.Object{&corev1.Pod{}, &corev1.Service{}, &discoveryv1.EndpointSlice{}, &corev1.Secret{}} {
			if _, err := informers.GetInformer(ctx, obj); err != nil {
				return
			}
		}
		if informers.WaitForCacheSync(ctx) {
			cp.syncedAt = time.Now()
			close(cp.synced)
		}
	}()
	go func() {
		defer close(cp.done)
		for range parts {
			if err := <-errs; err != nil {
				log.Error(err, "Control plane component stopped")
			}
		}
	}()
	return cp, nil
}

// Stop stops the control plane and waits for it.
func (cp *controlPlane) Stop() {
	cp.stop()
	<-cp.done
}
