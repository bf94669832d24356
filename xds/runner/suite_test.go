package runner_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/stdr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrlcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/controllers"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/internal/testpki"
	"github.com/open-service-mesh/osm-operator/xds/cache"
	"github.com/open-service-mesh/osm-operator/xds/controlplane"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/runner"
	"github.com/open-service-mesh/osm-operator/xds/server"
)

// The package's tests share one real API server and one control plane: the
// informer cache, the runner, the snapshot cache and the xDS server, started
// as the manager starts them. Each test works in namespaces of its own.
var (
	env       *testenv.Env
	k8s       client.Client
	ca        *testpki.CA
	xds       *server.Server
	xdsRunner *runner.Runner
	snapshots *cache.Cache
	nodes     *cache.Nodes
	addr      string
	// informers is the cache the server and the runner read.
	informers ctrlcache.Cache
	// servingCert is the xDS servers' certificate.
	servingCert *tls.Certificate
)

const meshName = "osm"

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctrllog.SetLogger(stdr.New(nil).V(1))
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	// Stop the control plane's watches before the API server, which otherwise
	// waits for them to drain.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := startControlPlane(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

func startControlPlane(ctx context.Context) error {
	scheme := mesh.NewScheme()
	var err error
	if k8s, err = client.New(env.Config, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	if ca, err = testpki.NewCA("mesh root"); err != nil {
		return err
	}
	serving, err := ca.Server([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	servingTLS, err := serving.TLS()
	if err != nil {
		return err
	}
	servingCert = &servingTLS
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: trustNamespace}}); err != nil {
		return err
	}
	log := stdr.New(nil)
	rep := startReplica(ctx, "replica-test", servingCert, log)
	xds, xdsRunner, snapshots, nodes, informers = rep.server, rep.runner, rep.snapshots, rep.nodes, rep.informers
	a, err := xds.Addr(ctx)
	if err != nil {
		return err
	}
	addr = a.String()
	return createMesh(ctx, meshName, "", ca)
}

// trustNamespace stands for the operator's namespace: the mesh trust
// bundle Secrets are there.
const trustNamespace = "osm-system"

// createMesh creates a MeshInstance whose status trusts root, and its trust
// bundle Secret, as its reconciler writes them once the mesh's CA is ready:
// the xDS server admits only certificates that chain to a root of the
// workload's mesh, and proxies trust the mesh's bundle.
func createMesh(ctx context.Context, name, trustDomain string, root *testpki.CA) error {
	if err := createMeshWithoutBundle(ctx, name, trustDomain, root); err != nil {
		return err
	}
	return k8s.Create(ctx, trustBundleSecret(trustNamespace, name, root.PEM))
}

// createMeshWithoutBundle is createMesh with no trust bundle Secret.
func createMeshWithoutBundle(ctx context.Context, name, trustDomain string, root *testpki.CA) error {
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: meshv1alpha1.MeshInstanceSpec{TrustDomain: trustDomain}}
	if err := k8s.Create(ctx, mi); err != nil {
		return err
	}
	mi.Status.TrustBundle = []meshv1alpha1.TrustAnchor{meshv1alpha1.TrustAnchorOf(root.Cert)}
	return k8s.Status().Update(ctx, mi)
}

// replica is the xDS control plane of one operator replica: an informer
// cache, the runner and the server (on a port of its own).
type replica struct {
	server    *server.Server
	runner    *runner.Runner
	snapshots *cache.Cache
	nodes     *cache.Nodes
	informers ctrlcache.Cache
}

// startReplica starts a replica until ctx ends, wired as the operator wires
// one (xds/controlplane) over an informer cache with the manager's options;
// it publishes no census Lease.
func startReplica(ctx context.Context, name string, serving *tls.Certificate, log logr.Logger) replica {
	opts := controllers.CacheOptions("")
	opts.Scheme = mesh.NewScheme()
	inf, err := ctrlcache.New(env.Config, opts)
	if err != nil {
		panic(err)
	}
	go func() { _ = inf.Start(ctx) }()
	cp := controlplane.New(controlplane.Options{
		Cache:   inf,
		Client:  k8s,
		Address: "127.0.0.1:0",
		TLS: func(*tls.ClientHelloInfo) (*tls.Certificate, *x509.CertPool, error) {
			return serving, ca.Pool(), nil
		},
		Replica:        name,
		TrustNamespace: trustNamespace,
		Log:            log,
	})
	go func() {
		if err := cp.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	return replica{server: cp.Server, runner: cp.Runner, snapshots: cp.Snapshots, nodes: cp.Nodes, informers: inf}
}

var seq atomic.Int32

// memberNamespace creates a namespace labelled into the mesh.
func memberNamespace(t testing.TB) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   fmt.Sprintf("xds-%d", seq.Add(1)),
		Labels: map[string]string{meshv1alpha1.MonitorLabel: meshName},
	}}
	mustCreate(t, ns)
	return ns.Name
}

func mustCreate(t testing.TB, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := k8s.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}
