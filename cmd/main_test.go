package main

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/go-logr/logr"
	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/internal/testenv/certmanager"
	"github.com/open-service-mesh/osm-operator/webhooks/inject"
	"github.com/open-service-mesh/osm-operator/xds/xdstest"
)

// TestOperatorServesAMesh runs the operator as main runs it, against a real
// API server with cert-manager's controllers, applies a small mesh as a user
// would, and connects a proxy with the certificate cert-manager issued for
// it: the proxy verifies the xDS server's certificate (signed by the mesh's
// issuer, chosen by SNI) and receives the cluster its SMI policy allows.
func TestOperatorServesAMesh(t *testing.T) {
	ctx, k, xdsAddr := startOperator(t)
	ns := "shop"
	objs := []client.Object{
		&meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "demo"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "demo", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "demo"}},
		testPod(ns, "buyer-1", "buyer"), testPod(ns, "store-1", "store"),
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "store", Namespace: ns}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
		&discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: "store-1", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: "store"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.1.0.5"}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "store-1", Namespace: ns}}},
		},
		&specsv1alpha4.HTTPRouteGroup{ObjectMeta: metav1.ObjectMeta{Name: "all", Namespace: ns}, Spec: specsv1alpha4.HTTPRouteGroupSpec{Matches: []specsv1alpha4.HTTPMatch{{Name: "all", PathRegex: ".*"}}}},
		&accessv1alpha3.TrafficTarget{ObjectMeta: metav1.ObjectMeta{Name: "buyer-to-store", Namespace: ns}, Spec: accessv1alpha3.TrafficTargetSpec{
			Destination: accessv1alpha3.IdentityBindingSubject{Kind: "ServiceAccount", Name: "store"},
			Sources:     []accessv1alpha3.IdentityBindingSubject{{Kind: "ServiceAccount", Name: "buyer"}},
			Rules:       []accessv1alpha3.TrafficTargetRule{{Kind: "HTTPRouteGroup", Name: "all"}},
		}},
	}
	for _, o := range objs {
		if err := k.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}

	// The buyer's proxy holds what the pod would mount: its identity Secret.
	dial := buyerDialer(t, ctx, k, xdsAddr, ns)
	var clusters []string
	var held *grpc.ClientConn // the proxy's connection, once it got its config
	var stream *xdstest.Stream
	var response *discoveryv3.DiscoveryResponse
	testenv.Eventually(t, 90*time.Second, func() error {
		conn, err := dial()
		if err != nil {
			return err
		}
		defer func() {
			if held != conn {
				conn.Close()
			}
		}()
		s, err := xdstest.OpenStream(ctx, conn, buyerNode(ns))
		if err != nil {
			return err
		}
		if err := s.Subscribe(resourcev3.ClusterType, nil); err != nil {
			return err
		}
		r, err := s.Recv()
		if err != nil {
			return err
		}
		clusters = nil
		for _, a := range r.GetResources() {
			c := &clusterv3.Cluster{}
			if err := a.UnmarshalTo(c); err != nil {
				return err
			}
			clusters = append(clusters, c.GetName())
		}
		if !slices.Contains(clusters, "out|"+ns+"/store|80") {
			return fmt.Errorf("clusters %v", clusters)
		}
		held, stream, response = conn, s, r
		return nil
	})

	// The TrafficTarget says how many of the proxies it configures run it:
	// the buyer's proxy rejects its clusters, then accepts them (the store
	// has none connected).
	if err := stream.NACK(response, "", "cluster out|shop/store|80: refused by the test"); err != nil {
		t.Fatal(err)
	}
	awaitEnforcedAs(t, ctx, k, "access.smi-spec.io/v1alpha3", "TrafficTarget", ns, "buyer-to-store", metav1.ConditionFalse,
		"0/1 proxies of 2 groups (envoy/shop/buyer, envoy/shop/store); 1 rejected their config: envoy/shop/buyer: Cluster: cluster out|shop/store|80: refused by the test")
	if err := stream.ACK(response); err != nil {
		t.Fatal(err)
	}
	awaitEnforced(t, ctx, k, "access.smi-spec.io/v1alpha3", "TrafficTarget", ns, "buyer-to-store", "1/1 proxies of 2 groups")

	// The connected proxy is counted by its member and its mesh, and no
	// longer once it has gone.
	connected := func(want int32) error {
		mm := &meshv1alpha1.MeshMember{}
		mi := &meshv1alpha1.MeshInstance{}
		if err := k.Get(ctx, client.ObjectKey{Namespace: ns, Name: "demo"}, mm); err != nil {
			return err
		}
		if err := k.Get(ctx, client.ObjectKey{Name: "demo"}, mi); err != nil {
			return err
		}
		if mm.Status.ProxiesConnected != want || mi.Status.ConnectedProxies != want {
			return fmt.Errorf("MeshMember counts %d connected proxies, MeshInstance %d; want %d", mm.Status.ProxiesConnected, mi.Status.ConnectedProxies, want)
		}
		return nil
	}
	testenv.Eventually(t, 30*time.Second, func() error { return connected(1) })
	held.Close()
	testenv.Eventually(t, 30*time.Second, func() error { return connected(0) })

	// The namespace leaves the mesh: its TrafficTarget no longer says it
	// is enforced.
	if err := k.Delete(ctx, &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "demo", Namespace: ns}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("access.smi-spec.io/v1alpha3")
		u.SetKind("TrafficTarget")
		if err := k.Get(ctx, client.ObjectKey{Namespace: ns, Name: "buyer-to-store"}, u); err != nil {
			return err
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			if c, ok := c.(map[string]any); ok && c["type"] == "Enforced" && c["status"] == "Unknown" && c["reason"] == "NotInMesh" {
				return nil
			}
		}
		return fmt.Errorf("the TrafficTarget of a namespace that left the mesh: %v", conds)
	})

	assertNoKeysLeak(t, ctx, k)
}

// startOperator starts a real API server with cert-manager's controllers and
// runs the operator as main runs it; it returns a context that lives as long
// as the test, a client and the xDS server's address. The operator must stop
// cleanly when the test ends.
func startOperator(t *testing.T) (context.Context, client.Client, string) {
	o := startOperatorWith(t, false)
	return o.ctx, o.k, o.xdsAddr
}

// operator is a running test operator and what a test can do to it.
type operator struct {
	ctx     context.Context
	k       client.Client
	xdsAddr string
	cm      *certManager
	// link carries the operator's connections to the API server, when
	// asked for: cutting it is an API server outage for the operator alone.
	link *tcpLink
	env  *testenv.Env
}

// runOperator runs an operator (a replica, with leaderElect) as main runs
// it, against cfg, until ctx ends or stop is called; it returns the xDS
// server's address. The operator must stop cleanly.
func runOperator(t *testing.T, ctx context.Context, cfg *rest.Config, leaderElect bool) (xdsAddr string, stop func()) {
	t.Helper()
	xdsAddr = freeAddr(t)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, cfg, testOptions(xdsAddr, leaderElect))
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("the operator stopped with %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return xdsAddr, stop
}

// testOptions are the options a test operator runs with: main's, but
// for the ports the test picks and several operators in one process.
func testOptions(xdsAddr string, leaderElect bool) options {
	return options{metricsAddr: "0", probeAddr: "0", testing: true, leaderElect: leaderElect, xds: xdsOptions{
		address: xdsAddr, namespace: "osm-system", certManagerNamespace: certmanager.ClusterResourceNamespace,
	}}
}

// certManager is cert-manager's controllers in the test, which a test can
// stop and start again.
type certManager struct {
	env  *testenv.Env
	ctx  context.Context
	stop context.CancelFunc
}

func (cm *certManager) Start(t *testing.T) {
	t.Helper()
	ctx, stop := context.WithCancel(cm.ctx)
	if err := certmanager.Start(ctx, cm.env.Environment); err != nil {
		stop()
		t.Fatal(err)
	}
	cm.stop = stop
}

func (cm *certManager) Stop() { cm.stop() }

// startOperatorWith is startOperator, also returning cert-manager and, with
// throughLink, the link the operator reaches the API server by.
func startOperatorWith(t *testing.T, throughLink bool) operator {
	t.Helper()
	o := startCluster(t)
	cfg := o.env.Config
	if throughLink {
		u, err := url.Parse(cfg.Host)
		if err != nil || u.Host == "" {
			t.Fatalf("the API server's address %q: %v", cfg.Host, err)
		}
		o.link = newTCPLink(t, u.Host)
		cfg = rest.CopyConfig(cfg)
		cfg.Host = u.Scheme + "://" + o.link.addr
	}
	o.xdsAddr, _ = runOperator(t, o.ctx, cfg, false)
	return o
}

// startCluster starts a real API server with cert-manager's controllers,
// and no operator yet.
func startCluster(t *testing.T) operator { return startClusterWith(t, testenv.Options{}) }

// startClusterWith is startCluster with options for the API server.
func startClusterWith(t *testing.T, opts testenv.Options) operator {
	t.Helper()
	// Everything the operators of this package's tests log, at every
	// verbosity, for assertNoKeysLeak. controller-runtime takes the first
	// logger it is given for good, so there is one log for all of them.
	// The operator's own cap on verbosity (withoutBodies) applies, as in main.
	captureLogs.Do(func() {
		ctrllog.SetLogger(withoutBodies(zap.New(zap.WriteTo(operatorLog), zap.Level(zapcore.Level(-10)))))
	})
	klog.SetLogger(logr.Discard())
	env, err := testenv.StartWith(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	k := withServiceAccounts(wc)
	if err := k.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "osm-system"}}); err != nil {
		t.Fatal(err)
	}
	cm := &certManager{env: env, ctx: ctx}
	cm.Start(t)
	return operator{ctx: ctx, k: k, cm: cm, env: env}
}

// withServiceAccounts is c creating a pod's service account with the pod
// when it is missing. A cluster refuses a pod whose service account does not
// exist (the ServiceAccount admission plugin, which the test API server
// leaves out), and the operator approves identities only for service
// accounts that exist; the tests' pods name their accounts and no more.
func withServiceAccounts(c client.WithWatch) client.WithWatch {
	return interceptor.NewClient(c, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if p, ok := obj.(*corev1.Pod); ok && p.Spec.ServiceAccountName != "" {
				sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Spec.ServiceAccountName}}
				if err := c.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
					return err
				}
			}
			return c.Create(ctx, obj, opts...)
		},
	})
}

// testPod is a pod as the injector admits it, with its sidecar (or, when
// annotated as proxyless gRPC, its bootstrap): a pod is meshed by its spec
// (mesh.HasProxy). No webhook runs in the test API server.
func testPod(ns, name, sa string, annotations ...string) *corev1.Pod {
	p := plainPod(ns, name, sa)
	for i := 0; i+1 < len(annotations); i += 2 {
		metav1.SetMetaDataAnnotation(&p.ObjectMeta, annotations[i], annotations[i+1])
	}
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}
	if err := inject.Pod(p, inject.ConfigFor(mi, "osm-system", inject.Images{})); err != nil {
		panic(err)
	}
	return p
}

// plainPod is a pod the injector left alone: it has no proxy.
func plainPod(ns, name, sa string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{Name: "app", Image: "app"}}},
	}
}
