package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"github.com/go-logr/logr"
	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	splitv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha4"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/internal/testpki"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
)

// harness holds the API server with the synthetic mesh in it, and what the
// scenarios change.
type harness struct {
	o       options
	log     logr.Logger
	env     *testenv.Env
	k8s     client.Client
	ca      *testpki.CA
	certDir string
	// groups is the number of proxy groups the mesh has.
	groups int
	// proxies are every proxy the mesh can have, pods by pod index first so
	// that a fleet of n holds whole rounds of every service.
	proxies    []fleetProxy
	identities map[string]keyPair
	// slices and targets are the objects the scenarios change, as created.
	slices  []*discoveryv1.EndpointSlice
	targets map[string]*accessv1alpha3.TrafficTarget
	splits  []*splitv1alpha4.TrafficSplit
	objects int
	// routes are the HTTPRoutes of the mesh (none on a split root).
	routes int
	// moved counts endpoint moves, for fresh addresses; lastTarget is the
	// TrafficTarget the last policy change added a source to.
	moved      int
	lastTarget *accessv1alpha3.TrafficTarget
}

func newHarness(ctx context.Context, o options, log logr.Logger) (*harness, error) {
	in := meshtest.Synthetic(o.size)
	m, problems := mesh.Build(in)
	if len(problems) > 0 {
		return nil, fmt.Errorf("the synthetic mesh has problems, first: %w", problems[0])
	}
	h := &harness{o: o, log: log, groups: len(m.Groups), targets: map[string]*accessv1alpha3.TrafficTarget{}, identities: map[string]keyPair{}}
	for _, n := range o.proxies {
		if n > len(in.Pods)+len(in.VMs) {
			return nil, fmt.Errorf("a fleet of %d proxies is larger than the mesh's %d pods and VMs", n, len(in.Pods)+len(in.VMs))
		}
	}
	progress("starting the API server")
	var err error
	// Room for 1,000s of Services.
	if h.env, err = testenv.StartWith(testenv.Options{ServiceClusterIPRange: "10.96.0.0/12"}); err != nil {
		return nil, err
	}
	// From here on errors return h too, so that the caller stops the API server.
	cfg := *h.env.Config
	cfg.QPS, cfg.Burst = -1, 0 // the loader is not throttled
	if h.k8s, err = client.New(&cfg, client.Options{Scheme: h.env.Scheme}); err != nil {
		return h, err
	}
	if h.ca, err = testpki.NewCA("bench root"); err != nil {
		return h, err
	}
	if h.certDir, err = os.MkdirTemp("", "osm-scale-"); err != nil {
		return h, err
	}
	if err := serverTLS(h.certDir, h.ca); err != nil {
		return h, err
	}
	objs := meshtest.Objects(in)
	secrets, err := h.issueIdentities(in)
	if err != nil {
		return h, err
	}
	objs = append(objs, secrets...)
	h.objects, h.routes = len(objs), len(in.HTTPRoutes)
	progress("creating %d objects: %d services, %d pods, %d EndpointSlices, %d TrafficTargets, %d TrafficSplits, %d MeshVMs, %d IngressBackends, %d Egresses, %d HTTPRoutes, %d ResiliencePolicies, %d identity Secrets",
		len(objs), len(in.Services), len(in.Pods), len(in.EndpointSlices), len(in.TrafficTargets), len(in.TrafficSplits), len(in.VMs),
		len(in.IngressBackends), len(in.Egresses), len(in.HTTPRoutes), len(in.ResiliencePolicies), len(secrets))
	if err := h.create(ctx, objs); err != nil {
		return h, err
	}
	// As the mesh's reconciler would once its CA is ready: the xDS server
	// admits only certificates that chain to a root of the proxy's mesh.
	in.Mesh.Status.TrustBundle = []meshv1alpha1.TrustAnchor{meshv1alpha1.TrustAnchorOf(h.ca.Cert)}
	if err := h.k8s.Status().Update(ctx, in.Mesh); err != nil {
		return h, fmt.Errorf("writing the mesh's trust bundle: %w", err)
	}
	// And the bundle Secret proxies are served, in the operator's namespace.
	bundle := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: trustNamespace, Name: meshv1alpha1.TrustBundleSecretName(in.Mesh.Name),
			Labels: map[string]string{"app.kubernetes.io/managed-by": "osm-operator", meshv1alpha1.TrustBundleSecretLabel: in.Mesh.Name},
		},
		Data: map[string][]byte{meshv1alpha1.TrustBundleKey: h.ca.PEM},
	}
	for _, o := range []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: trustNamespace}}, bundle} {
		if err := h.k8s.Create(ctx, o); err != nil {
			return h, fmt.Errorf("writing the mesh's trust bundle Secret: %w", err)
		}
	}
	h.slices = in.EndpointSlices
	h.splits = in.TrafficSplits
	for _, tt := range in.TrafficTargets {
		h.targets[tt.Namespace+"/"+tt.Name] = tt
	}
	h.fleetOrder(in)
	return h, nil
}

// issueIdentities makes a key pair and an identity Secret (as cert-manager
// writes it) for every service account of the mesh.
func (h *harness) issueIdentities(in mesh.Inputs) ([]client.Object, error) {
	ids := map[mesh.Identity]bool{}
	for _, p := range in.Pods {
		ids[mesh.Identity{Namespace: p.Namespace, ServiceAccount: p.Spec.ServiceAccountName}] = true
	}
	for _, vm := range in.VMs {
		ids[mesh.Identity{Namespace: vm.Namespace, ServiceAccount: vm.Spec.ServiceAccountName}] = true
	}
	var out []client.Object
	for id := range ids {
		kp, err := h.ca.Workload(fmt.Sprintf("spiffe://cluster.local/ns/%s/sa/%s", id.Namespace, id.ServiceAccount))
		if err != nil {
			return nil, err
		}
		h.identities[id.String()] = keyPair{Cert: kp.CertPEM, Key: kp.KeyPEM}
		out = append(out, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name: meshv1alpha1.IdentitySecretName(id.ServiceAccount), Namespace: id.Namespace,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "osm-operator"},
			},
			Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{"tls.crt": kp.CertPEM, "tls.key": kp.KeyPEM, "ca.crt": h.ca.PEM},
		})
	}
	return out, nil
}

// create creates the objects, the mesh and namespaces first, the rest with
// parallel writers.
func (h *harness) create(ctx context.Context, objs []client.Object) error {
	first := 0
	for first < len(objs) {
		if _, ok := objs[first].(*corev1.Namespace); !ok && first > 0 {
			break
		}
		if err := h.k8s.Create(ctx, objs[first]); err != nil {
			return fmt.Errorf("creating %T %s: %w", objs[first], objs[first].GetName(), err)
		}
		first++
	}
	work := make(chan client.Object)
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for o := range work {
				if err := h.k8s.Create(ctx, o); err != nil {
					err = fmt.Errorf("creating %T %s/%s: %w", o, o.GetNamespace(), o.GetName(), err)
					failed.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	for _, o := range objs[first:] {
		if failed.Load() != nil {
			break
		}
		work <- o
	}
	close(work)
	wg.Wait()
	if err := failed.Load(); err != nil {
		return *err
	}
	return nil
}

// fleetOrder lists the proxies: VMs, then round p of every service's pods.
func (h *harness) fleetOrder(in mesh.Inputs) {
	add := func(kind, ns, name, sa string) {
		id := mesh.Identity{Namespace: ns, ServiceAccount: sa}
		i := len(h.proxies)
		// Spread delta proxies evenly: proxy i is delta when the running
		// share of delta proxies falls behind the fraction.
		delta := int(float64(i+1)*h.o.deltaFraction) > int(float64(i)*h.o.deltaFraction)
		h.proxies = append(h.proxies, fleetProxy{
			NodeID: kind + "~" + ns + "~" + name, Identity: id.String(),
			Group: mesh.Group{Kind: mesh.ProxyEnvoy, Identity: id}.String(), Delta: delta,
		})
	}
	for _, vm := range in.VMs {
		add("vm", vm.Namespace, vm.Name, vm.Spec.ServiceAccountName)
	}
	sz := h.o.size
	for p := range sz.PodsPerService {
		for s := range sz.Services {
			pod := in.Pods[s*sz.PodsPerService+p]
			add("sidecar", pod.Namespace, pod.Name, pod.Spec.ServiceAccountName)
		}
	}
}

func (h *harness) describe() MeshSize {
	sz := h.o.size
	return MeshSize{
		Services: sz.Services, Endpoints: sz.Services*sz.PodsPerService + sz.VMs, Identities: len(h.identities),
		Groups: h.groups, Splits: sz.Splits, VMs: sz.VMs, IngressBackends: sz.IngressBackends, Egresses: sz.Egresses,
		HTTPRoutes: h.routes, ResiliencePolicies: sz.ResiliencePolicies,
		Permissive: sz.Permissive, Scoped: sz.Scoped, Objects: h.objects,
		DeltaFraction: h.o.deltaFraction,
	}
}

// freeAddress is a loopback address no one listens on.
func freeAddress() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (h *harness) Close() {
	if h.certDir != "" {
		_ = os.RemoveAll(h.certDir)
	}
	if h.env != nil {
		_ = h.env.Stop()
	}
}
