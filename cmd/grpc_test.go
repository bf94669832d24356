package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	splitv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha4"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/webhooks/inject"
	"github.com/open-service-mesh/osm-operator/xds/bootstrap"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/xdstest"
)

// xdsScheme resolves the xDS Service's name to the operator's loopback
// address, as cluster DNS would: gRPC then verifies the serving certificate
// cert-manager issued against that name.
const xdsScheme = "osmtest"

// TestProxylessGRPCWithCertManager runs proxyless gRPC workloads on the
// operator and cert-manager's real controllers: the bootstrap the injector
// writes, the identities cert-manager issues, the xDS server's serving
// certificate. The allowed client's calls succeed and the other's are
// PERMISSION_DENIED; when cert-manager renews the server's certificate,
// established traffic goes on and new connections get the new certificate.
func TestProxylessGRPCWithCertManager(t *testing.T) {
	ctx, k, xdsAddr := startOperator(t)
	r := manual.NewBuilderWithScheme(xdsScheme)
	r.InitialState(resolver.State{Addresses: []resolver.Address{{Addr: xdsAddr}}})
	resolver.Register(r)

	// bookstore v1 and v2 each listen on a port of their own; the root
	// Service and the version Services share port 14001.
	listeners := map[string]net.Listener{}
	targetPorts := map[string]int32{}
	for _, v := range []string{"v1", "v2"} {
		lis, err := net.Listen("tcp4", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		listeners[v], targetPorts[v] = lis, int32(lis.Addr().(*net.TCPAddr).Port)
	}
	const port = 14001
	ns := "bookstore"
	grpcPod := func(name, sa string) *corev1.Pod {
		// Injected for its own mesh: a proxyless pod dials its mesh's xDS name.
		p := plainPod(ns, name, sa)
		p.Annotations = map[string]string{mesh.ProxyKindAnnotation: string(mesh.ProxyGRPC)}
		if err := inject.Pod(p, inject.ConfigFor(&meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "books"}}, "osm-system", inject.Images{})); err != nil {
			t.Fatal(err)
		}
		return p
	}
	objs := []client.Object{
		&meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "books"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "books", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "books"}},
		grpcPod("bookbuyer-1", "bookbuyer"), grpcPod("bookthief-1", "bookthief"),
		grpcPod("bookstore-v1-1", "bookstore"), grpcPod("bookstore-v2-1", "bookstore"),
		grpcService(ns, "bookstore"), grpcService(ns, "bookstore-v1"), grpcService(ns, "bookstore-v2"),
		podEndpoints(ns, "bookstore", "v1", "bookstore-v1-1", "192.0.2.81", targetPorts["v1"]),
		podEndpoints(ns, "bookstore", "v2", "bookstore-v2-1", "192.0.2.82", targetPorts["v2"]),
		podEndpoints(ns, "bookstore-v1", "v1", "bookstore-v1-1", "192.0.2.81", targetPorts["v1"]),
		podEndpoints(ns, "bookstore-v2", "v2", "bookstore-v2-1", "192.0.2.82", targetPorts["v2"]),
		&splitv1alpha4.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "bookstore-split", Namespace: ns}, Spec: splitv1alpha4.TrafficSplitSpec{
			Service: "bookstore", Backends: []splitv1alpha4.TrafficSplitBackend{{Service: "bookstore-v1", Weight: 80}, {Service: "bookstore-v2", Weight: 20}},
		}},
		&specsv1alpha4.HTTPRouteGroup{ObjectMeta: metav1.ObjectMeta{Name: "all", Namespace: ns}, Spec: specsv1alpha4.HTTPRouteGroupSpec{Matches: []specsv1alpha4.HTTPMatch{{Name: "all", PathRegex: ".*"}}}},
		&accessv1alpha3.TrafficTarget{ObjectMeta: metav1.ObjectMeta{Name: "bookbuyer-to-bookstore", Namespace: ns}, Spec: accessv1alpha3.TrafficTargetSpec{
			Destination: accessv1alpha3.IdentityBindingSubject{Kind: "ServiceAccount", Name: "bookstore"},
			Sources:     []accessv1alpha3.IdentityBindingSubject{{Kind: "ServiceAccount", Name: "bookbuyer"}},
			Rules:       []accessv1alpha3.TrafficTargetRule{{Kind: "HTTPRouteGroup", Name: "all"}},
		}},
	}
	for _, o := range objs {
		if err := k.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}

	// Each workload gets the bootstrap the injector writes, pointed at the
	// test's name for the xDS Service, and the files of its identity volume
	// (its identity Secret's certificate and key, the mesh's trust bundle),
	// as the kubelet mounts them.
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "books"}}
	cfg := inject.ConfigFor(mi, "osm-system", inject.Images{})
	workload := func(pod *corev1.Pod) (bootstrapJSON []byte, dir string) {
		dir = t.TempDir()
		p := pod.DeepCopy()
		if !inject.Injected(p) {
			if err := inject.Pod(p, cfg); err != nil {
				t.Fatal(err)
			}
		}
		mountIdentity(t, ctx, k, p, dir)
		for _, e := range p.Spec.Containers[0].Env {
			if e.Name == inject.GRPCBootstrapEnv {
				return localGRPCBootstrap(t, []byte(e.Value), dir, "sidecar~"+ns+"~"+pod.Name), dir
			}
		}
		t.Fatalf("the injected pod %s has no %s", pod.Name, inject.GRPCBootstrapEnv)
		return nil, ""
	}

	storeDirs := map[string]string{}
	for i, v := range []string{"v1", "v2"} {
		boot, dir := workload(objs[5+i].(*corev1.Pod))
		storeDirs[v] = dir
		xdstest.GRPCServer(t, listeners[v], boot)
	}

	target := fmt.Sprintf("xds:///bookstore.%s.svc.cluster.local:%d", ns, port)
	dial := func(pod *corev1.Pod) *grpc.ClientConn {
		boot, _ := workload(pod)
		return xdstest.GRPCClient(t, target, boot)
	}
	// call makes one call and returns its code and the server certificate's
	// serial; answeredBy is the version that answered the last call.
	var answeredBy string
	call := func(conn *grpc.ClientConn) (codes.Code, string) {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var p peer.Peer
		_, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p))
		serial := ""
		answeredBy = ""
		if a, ok := p.Addr.(*net.TCPAddr); ok {
			for v, port := range targetPorts {
				if a.Port == int(port) {
					answeredBy = v
				}
			}
		}
		if info, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(info.State.PeerCertificates) > 0 {
			serial = info.State.PeerCertificates[0].SerialNumber.String()
		}
		return status.Code(err), serial
	}
	buyer, thief := dial(objs[3].(*corev1.Pod)), dial(objs[4].(*corev1.Pod))
	var before string
	testenv.Eventually(t, 60*time.Second, func() error {
		b, serial := call(buyer)
		th, _ := call(thief)
		if b != codes.OK || th != codes.PermissionDenied {
			return fmt.Errorf("bookbuyer %s, bookthief %s; want OK, PermissionDenied", b, th)
		}
		before = serial
		return nil
	})
	// TrafficSplit 80/20 over bookstore v1 and v2, once both serve (each
	// server starts serving when its own listener arrives).
	seen := map[string]bool{}
	testenv.Eventually(t, 30*time.Second, func() error {
		if code, _ := call(buyer); code == codes.OK {
			seen[answeredBy] = true
		}
		if !seen["v1"] || !seen["v2"] {
			return fmt.Errorf("answered so far: %v", seen)
		}
		return nil
	})
	counts := map[string]int{}
	for range 1000 {
		if code, _ := call(buyer); code != codes.OK {
			t.Fatalf("a call failed: %s", code)
		}
		counts[answeredBy]++
	}
	t.Logf("80/20 split over 1,000 calls: %v", counts)
	if counts["v1"] < 750 || counts["v1"] > 850 || counts["v1"]+counts["v2"] != 1000 {
		t.Errorf("v1 answered %d and v2 %d of 1,000 calls, want 800 ± 50 on v1", counts["v1"], counts["v2"])
	}

	// Each policy says it is in force, and on how many proxies: the
	// TrafficTarget on the bookbuyer and the two bookstores; the split on
	// every proxyless proxy, each of which sees the root service.
	awaitEnforced(t, ctx, k, "access.smi-spec.io/v1alpha3", "TrafficTarget", ns, "bookbuyer-to-bookstore", "3/3 proxies of 2 groups")
	awaitEnforced(t, ctx, k, "split.smi-spec.io/v1alpha4", "TrafficSplit", ns, "bookstore-split", "4/4 proxies of 3 groups")
	awaitEnforced(t, ctx, k, "specs.smi-spec.io/v1alpha4", "HTTPRouteGroup", ns, "all", "3/3 proxies of 2 groups")

	// Renew the bookstore's certificate as `cmctl renew` does; cert-manager
	// issues a new one into the Secret, and the kubelet updates the files.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cert := &cmapi.Certificate{}
		if err := k.Get(ctx, client.ObjectKey{Namespace: ns, Name: meshv1alpha1.IdentitySecretName("bookstore")}, cert); err != nil {
			return err
		}
		cert.Status.Conditions = append(cert.Status.Conditions, cmapi.CertificateCondition{
			Type: cmapi.CertificateConditionIssuing, Status: cmmeta.ConditionTrue, Reason: "ManuallyTriggered", Message: "renewed by the test",
			LastTransitionTime: ptr.To(metav1.Now()),
		})
		return k.Status().Update(ctx, cert)
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		serial := mountIdentity(t, ctx, k, objs[5].(*corev1.Pod), storeDirs["v1"])
		mountIdentity(t, ctx, k, objs[6].(*corev1.Pod), storeDirs["v2"])
		if serial == before {
			return fmt.Errorf("cert-manager has not renewed the certificate yet")
		}
		return nil
	})
	for range 40 {
		if code, _ := call(buyer); code != codes.OK {
			t.Fatalf("a call on the established connection failed after the renewal: %s", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		fresh := dial(objs[3].(*corev1.Pod))
		defer fresh.Close()
		if code, serial := call(fresh); code != codes.OK || serial == before {
			return fmt.Errorf("a new connection: %s, serial %s (before %s)", code, serial, before)
		}
		return nil
	})

	// Identities issued and renewed, proxies served: no key anywhere.
	assertNoKeysLeak(t, ctx, k)
}

// awaitEnforced waits until the SMI policy's status says Enforced=True
// with a message containing msg, Accepted=True, and its generation observed.
func awaitEnforced(t *testing.T, ctx context.Context, k client.Client, apiVersion, kind, ns, name, msg string) {
	t.Helper()
	awaitEnforcedAs(t, ctx, k, apiVersion, kind, ns, name, metav1.ConditionTrue, msg)
}

// awaitEnforcedAs waits until the SMI policy's status says Enforced=status
// (any, when empty) with a message containing msg, Accepted=True, and its
// generation observed.
func awaitEnforcedAs(t *testing.T, ctx context.Context, k client.Client, apiVersion, kind, ns, name string, status metav1.ConditionStatus, msg string) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, func() error {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(apiVersion)
		u.SetKind(kind)
		if err := k.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
			return err
		}
		var st struct {
			ObservedGeneration int64              `json:"observedGeneration"`
			Conditions         []metav1.Condition `json:"conditions"`
		}
		raw, _ := json.Marshal(u.Object["status"])
		if err := json.Unmarshal(raw, &st); err != nil {
			return err
		}
		e, a := meta.FindStatusCondition(st.Conditions, "Enforced"), meta.FindStatusCondition(st.Conditions, "Accepted")
		if e == nil || a == nil || status != "" && e.Status != status || a.Status != metav1.ConditionTrue || !strings.Contains(e.Message, msg) || st.ObservedGeneration != u.GetGeneration() || e.ObservedGeneration != u.GetGeneration() {
			return fmt.Errorf("%s %s/%s status: %s", kind, ns, name, raw)
		}
		return nil
	})
}

// localGRPCBootstrap is a proxyless workload's gRPC bootstrap as the test
// runs it: its node ID expanded to nodeID, the xDS server's host resolved
// by xdsScheme (the port and the name TLS verifies stay the bootstrap's),
// its identity files in dir, re-read every second.
func localGRPCBootstrap(t *testing.T, raw []byte, dir, nodeID string) []byte {
	t.Helper()
	var boot map[string]any
	if err := json.Unmarshal(raw, &boot); err != nil {
		t.Fatalf("the gRPC bootstrap does not parse: %v", err)
	}
	boot["node"].(map[string]any)["id"] = nodeID
	server := boot["xds_servers"].([]any)[0].(map[string]any)
	server["server_uri"] = xdsScheme + ":///" + server["server_uri"].(string)
	provider := boot["certificate_providers"].(map[string]any)["mesh"].(map[string]any)["config"].(map[string]any)
	for _, creds := range []map[string]any{server["channel_creds"].([]any)[0].(map[string]any)["config"].(map[string]any), provider} {
		for key, file := range creds {
			if f, ok := file.(string); ok && filepath.IsAbs(f) {
				creds[key] = filepath.Join(dir, filepath.Base(f))
			}
		}
	}
	provider["refresh_interval"] = "1s"
	server["channel_creds"].([]any)[0].(map[string]any)["config"].(map[string]any)["refresh_interval"] = "1s"
	out, err := json.Marshal(boot)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// mountIdentity writes the files of the injected pod's identity volume
// into dir, as the kubelet mounts it: each key of each source (the identity
// Secret's certificate and key, the mesh's trust bundle ConfigMap's ca.crt)
// at its path, each file replaced at once. It returns the certificate's
// serial.
func mountIdentity(t *testing.T, ctx context.Context, k client.Client, pod *corev1.Pod, dir string) string {
	t.Helper()
	var vol *corev1.Volume
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Name == inject.IdentityVolume {
			vol = &pod.Spec.Volumes[i]
		}
	}
	if vol == nil || vol.Projected == nil {
		t.Fatalf("pod %s has no projected identity volume: %+v", pod.Name, vol)
	}
	files := map[string][]byte{}
	testenv.Eventually(t, 90*time.Second, func() error {
		for _, src := range vol.Projected.Sources {
			key := client.ObjectKey{Namespace: pod.Namespace}
			var data map[string][]byte
			var items []corev1.KeyToPath
			switch {
			case src.Secret != nil:
				s := &corev1.Secret{}
				key.Name, items = src.Secret.Name, src.Secret.Items
				if err := k.Get(ctx, key, s); err != nil {
					return err
				}
				data = s.Data
			case src.ConfigMap != nil:
				cm := &corev1.ConfigMap{}
				key.Name, items = src.ConfigMap.Name, src.ConfigMap.Items
				if err := k.Get(ctx, key, cm); err != nil {
					return err
				}
				data = map[string][]byte{}
				for k, v := range cm.Data {
					data[k] = []byte(v)
				}
			default:
				return fmt.Errorf("a source the test does not mount: %+v", src)
			}
			for _, it := range items {
				v, ok := data[it.Key]
				if !ok {
					// The kubelet fails the mount of a missing key of a source that is not optional.
					return fmt.Errorf("%s has no key %s", key, it.Key)
				}
				files[it.Path] = v
			}
		}
		return nil
	})
	for name, v := range files {
		tmp := filepath.Join(dir, "."+name)
		if err := os.WriteFile(tmp, v, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	certs, err := x509ParsePEM(files[bootstrap.CertFile])
	if err != nil {
		t.Fatal(err)
	}
	return certs.SerialNumber.String()
}

func x509ParsePEM(data []byte) (*x509.Certificate, error) {
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("no certificate in PEM")
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
		data = rest
	}
}

func grpcService(ns, name string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: corev1.ServiceSpec{
		Ports: []corev1.ServicePort{{Name: "grpc", Port: 14001, AppProtocol: ptr.To("grpc")}},
	}}
}

// podEndpoints is an EndpointSlice of service with one pod at addr:port.
func podEndpoints(ns, service, suffix, pod, addr string, port int32) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: service + "-" + suffix, Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("grpc"), Port: ptr.To(port)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{addr}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: pod, Namespace: ns}}},
	}
}
