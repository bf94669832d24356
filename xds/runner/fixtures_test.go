package runner_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/controllers"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/internal/testpki"
	"github.com/open-service-mesh/osm-operator/webhooks/inject"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/xdstest"
)

// workload creates a service account, a pod running as it and the identity
// Secret of the service account, and returns the pod's certificate.
func workload(t testing.TB, ns, pod, sa string, annotations map[string]string) testpki.KeyPair {
	t.Helper()
	kp, err := ca.Workload(mesh.Identity{Namespace: ns, ServiceAccount: sa}.SPIFFE("cluster.local"))
	if err != nil {
		t.Fatal(err)
	}
	sec := &corev1.Secret{
		// Labelled as cert-manager labels it, from the Certificate's template.
		ObjectMeta: metav1.ObjectMeta{Name: meshv1alpha1.IdentitySecretName(sa), Namespace: ns, Labels: controllers.MeshObjectLabels(meshName)},
		Data:       map[string][]byte{"tls.crt": kp.CertPEM, "tls.key": kp.KeyPEM, "ca.crt": ca.PEM},
	}
	for _, o := range []client.Object{&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: ns}}, sec} {
		if err := k8s.Create(context.Background(), o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(sec), sec); err != nil {
		t.Fatal(err)
	}
	kp = testpki.KeyPair{CertPEM: sec.Data["tls.crt"], KeyPEM: sec.Data["tls.key"]}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: ns, Annotations: annotations, Labels: map[string]string{"app": sa}},
		Spec: corev1.PodSpec{
			ServiceAccountName: sa,
			Containers:         []corev1.Container{{Name: "app", Image: "app"}},
		},
	}
	injected(t, p)
	mustCreate(t, p)
	// Proxies connect once their pod is in the server's cache, and the
	// services they call may come after: the order that caught a group not
	// seeing a new service.
	testenv.Eventually(t, 10*time.Second, func() error {
		return informers.Get(context.Background(), client.ObjectKeyFromObject(p), &corev1.Pod{})
	})
	return kp
}

// injected gives p what the injector gives it (a sidecar, or a proxyless
// gRPC pod's bootstrap): a pod is meshed by its spec (mesh.HasProxy).
func injected(t testing.TB, p *corev1.Pod) {
	t.Helper()
	cfg := inject.Config{Mesh: meshName, XDSHost: "osm-xds.osm-system.svc", XDSPort: 15128, XDSServerName: "osm-xds.osm-system.svc", InitImage: inject.DefaultInitImage}
	if err := inject.Pod(p, cfg); err != nil {
		t.Fatal(err)
	}
}

// uninjected creates a pod of the service account that the injector left
// alone (created before its namespace joined the mesh): it has no proxy.
// Its status has the IP ip, as the kubelet would write it: the endpoint
// of a pod without a proxy must be its own address.
func uninjected(t testing.TB, ns, pod, sa, ip string) {
	t.Helper()
	if err := k8s.Create(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: ns, Labels: map[string]string{"app": sa}},
		Spec:       corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{Name: "app", Image: "app"}}},
	}
	mustCreate(t, p)
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
	if err := k8s.Status().Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		got := &corev1.Pod{}
		if err := informers.Get(context.Background(), client.ObjectKeyFromObject(p), got); err != nil {
			return err
		}
		if got.Status.PodIP != ip {
			return fmt.Errorf("pod %s has no IP yet in the cache", p.Name)
		}
		return nil
	})
}

// service creates a Service with one port and returns it with its cluster IP.
func service(t testing.TB, ns, name, portName string, port int32, appProtocol string) *corev1.Service {
	t.Helper()
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: portName, Port: port}}},
	}
	if appProtocol != "" {
		s.Spec.Ports[0].AppProtocol = ptr.To(appProtocol)
	}
	mustCreate(t, s)
	return s
}

// endpointSlice creates the slice of a service: one endpoint per pod, at addr.
func endpointSlice(t testing.TB, ns, svc, portName string, port int32, pods map[string]string) *discoveryv1.EndpointSlice {
	t.Helper()
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: svc + "-1", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(portName), Port: ptr.To(port)}},
	}
	for pod, addr := range pods {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{addr},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: pod, Namespace: ns},
		})
	}
	mustCreate(t, es)
	return es
}

// allow creates an SMI TrafficTarget letting src call dst on every HTTP route.
func allow(t testing.TB, ns, src, dst string) *accessv1alpha3.TrafficTarget {
	t.Helper()
	routes := &specsv1alpha4.HTTPRouteGroup{
		ObjectMeta: metav1.ObjectMeta{Name: dst + "-all", Namespace: ns},
		Spec:       specsv1alpha4.HTTPRouteGroupSpec{Matches: []specsv1alpha4.HTTPMatch{{Name: "all", PathRegex: ".*"}}},
	}
	tt := &accessv1alpha3.TrafficTarget{
		ObjectMeta: metav1.ObjectMeta{Name: src + "-to-" + dst, Namespace: ns},
		Spec: accessv1alpha3.TrafficTargetSpec{
			Destination: accessv1alpha3.IdentityBindingSubject{Kind: "ServiceAccount", Name: dst, Namespace: ns},
			Sources:     []accessv1alpha3.IdentityBindingSubject{{Kind: "ServiceAccount", Name: src, Namespace: ns}},
			Rules:       []accessv1alpha3.TrafficTargetRule{{Kind: "HTTPRouteGroup", Name: routes.Name}},
		},
	}
	mustCreate(t, routes, tt)
	return tt
}

// connect dials the xDS server as a proxy holding kp.
func connect(t testing.TB, kp *testpki.KeyPair) *grpc.ClientConn {
	t.Helper()
	var cert *tls.Certificate
	if kp != nil {
		c, err := kp.TLS()
		if err != nil {
			t.Fatal(err)
		}
		cert = &c
	}
	conn, err := xdstest.Dial(addr, "localhost", cert, ca.Pool())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// awaitSotW reads responses of typeURL, ACKing each, until one satisfies ok.
func awaitSotW(t testing.TB, s *xdstest.Stream, ok func(*discoveryv3.DiscoveryResponse) bool) *discoveryv3.DiscoveryResponse {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		r, err := s.Recv()
		if err != nil {
			t.Fatalf("receiving: %v", err)
		}
		if err := s.ACK(r); err != nil {
			t.Fatal(err)
		}
		if ok(r) {
			return r
		}
	}
	t.Fatal("no matching response in time")
	return nil
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func nodeID(ns, pod string) string { return fmt.Sprintf("sidecar~%s~%s", ns, pod) }

// shop is the mesh most tests start from, in a namespace of its own: a
// buyer allowed to call the store Service (port 80, backed by store-1 at
// 10.1.0.5:8080). It returns the namespace, the buyer's key pair and the
// store's EndpointSlice.
func shop(t testing.TB) (string, testpki.KeyPair, *discoveryv1.EndpointSlice) {
	t.Helper()
	return shopIn(t, workloadsFirst)
}

// order is an order in which a GitOps tool may apply a mesh's objects.
type order struct {
	name string
	// policyFirst applies the policy, then the Service, then its
	// endpoints, then the pods, each synced on its own; otherwise the
	// pods come first and the policy last, as a person would type them.
	policyFirst bool
}

var (
	workloadsFirst = order{name: "workloads first"}
	policyFirst    = order{name: "policy first", policyFirst: true}
	// orders are both: a fixture test runs in each.
	orders = []order{workloadsFirst, policyFirst}
)

// forEachOrder runs test in each order, as a subtest named after it.
func forEachOrder(t *testing.T, test func(t *testing.T, o order)) {
	for _, o := range orders {
		t.Run(o.name, func(t *testing.T) { test(t, o) })
	}
}

// shopIn is shop applied in order o.
func shopIn(t testing.TB, o order) (string, testpki.KeyPair, *discoveryv1.EndpointSlice) {
	t.Helper()
	ns := memberNamespace(t)
	if !o.policyFirst {
		buyer := workload(t, ns, "buyer-1", "buyer", nil)
		workload(t, ns, "store-1", "store", nil)
		service(t, ns, "store", "http", 80, "http")
		es := endpointSlice(t, ns, "store", "http", 8080, map[string]string{"store-1": "10.1.0.5"})
		allow(t, ns, "buyer", "store")
		return ns, buyer, es
	}
	// The runner coalesces changes for up to half a second: each step
	// waits out a sync of its own, as when they are applied apart.
	settle := func() { time.Sleep(time.Second) }
	allow(t, ns, "buyer", "store")
	settle()
	service(t, ns, "store", "http", 80, "http")
	settle()
	es := endpointSlice(t, ns, "store", "http", 8080, map[string]string{"store-1": "10.1.0.5"})
	settle()
	buyer := workload(t, ns, "buyer-1", "buyer", nil)
	settle()
	workload(t, ns, "store-1", "store", nil)
	settle()
	return ns, buyer, es
}
