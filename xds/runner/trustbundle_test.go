package runner_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/controllers"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/internal/testpki"
	"github.com/open-service-mesh/osm-operator/xds/census"
	"github.com/open-service-mesh/osm-operator/xds/controlplane"
	"github.com/open-service-mesh/osm-operator/xds/server"
	"github.com/open-service-mesh/osm-operator/xds/translate"
	"github.com/open-service-mesh/osm-operator/xds/xdstest"
)

// trustBundleSecret is a mesh's trust bundle Secret in namespace, as the
// MeshInstance reconciler writes it (in the operator's namespace).
func trustBundleSecret(namespace, mesh string, pemData []byte) *corev1.Secret {
	labels := controllers.MeshObjectLabels(mesh)
	labels[meshv1alpha1.TrustBundleSecretLabel] = mesh
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: meshv1alpha1.TrustBundleSecretName(mesh), Labels: labels},
		Data:       map[string][]byte{meshv1alpha1.TrustBundleKey: pemData},
	}
}

// trustedBundles receives the secrets responses of s, ACKing each, and
// sends on the channel the trust bundle each carries ("" for none).
func trustedBundles(t *testing.T, s *xdstest.Stream) <-chan string {
	out := make(chan string, 16)
	go func() {
		for {
			r, err := s.Recv()
			if err != nil {
				return
			}
			_ = s.ACK(r)
			if r.GetTypeUrl() != resourcev3.SecretType {
				continue
			}
			out <- bundleOf(t, r)
		}
	}()
	return out
}

func bundleOf(t *testing.T, r *discoveryv3.DiscoveryResponse) string {
	for _, res := range r.GetResources() {
		s := &tlsv3.Secret{}
		if err := res.UnmarshalTo(s); err != nil {
			t.Error(err)
			return ""
		}
		if s.GetName() == translate.TrustBundleSecret {
			return string(s.GetValidationContext().GetTrustedCa().GetInlineBytes())
		}
	}
	return ""
}

// awaitBundle waits for a secrets response whose trust bundle is want.
func awaitBundle(t *testing.T, bundles <-chan string, want string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case got := <-bundles:
			if got == want {
				return
			}
		case <-deadline:
			t.Fatalf("the proxy never received trust bundle %q", want)
		}
	}
}

// TestProxiesTrustTheMeshsBundle: what a proxy trusts is its mesh's trust
// bundle, from the Secret the MeshInstance reconciler writes in the
// operator's namespace, not the ca.crt of its identity Secret, which an
// issuer may leave empty and anyone who may write a Secret in the
// namespace may fill. Without the mesh's bundle a proxy gets no secrets;
// a change of the bundle reaches it; a Secret of the same name and labels
// elsewhere is not the mesh's.
func TestProxiesTrustTheMeshsBundle(t *testing.T) {
	ctx := testContext(t)
	const name = "bundled"
	if err := createMeshWithoutBundle(ctx, name, "", ca); err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bundled-1", Labels: map[string]string{meshv1alpha1.MonitorLabel: name}}}
	mustCreate(t, ns)
	buyer := workload(t, ns.Name, "buyer-1", "buyer", nil) // its identity Secret's ca.crt is the root
	s, err := xdstest.OpenStream(ctx, connect(t, &buyer), nodeID(ns.Name, "buyer-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Subscribe(resourcev3.SecretType, []string{translate.IdentitySecret, translate.TrustBundleSecret}); err != nil {
		t.Fatal(err)
	}
	bundles := trustedBundles(t, s)
	// No bundle of the mesh: none made up from the identity Secret.
	wait := time.After(3 * time.Second)
	for waiting := true; waiting; {
		select {
		case got := <-bundles:
			if got != "" {
				t.Fatalf("the proxy trusts %q before its mesh has a trust bundle", got)
			}
		case <-wait:
			waiting = false
		}
	}

	bundle := trustBundleSecret(trustNamespace, name, ca.PEM)
	mustCreate(t, bundle)
	awaitBundle(t, bundles, string(ca.PEM))

	// A forged bundle in the workload's namespace changes nothing; a new
	// root in the mesh's bundle reaches the proxy.
	forger, err := testpki.NewCA("forged root")
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, trustBundleSecret(ns.Name, name, forger.PEM))
	next, err := testpki.NewCA("next root")
	if err != nil {
		t.Fatal(err)
	}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(bundle), bundle); err != nil {
		t.Fatal(err)
	}
	bundle.Data[meshv1alpha1.TrustBundleKey] = append(append([]byte{}, ca.PEM...), next.PEM...)
	if err := k8s.Update(ctx, bundle); err != nil {
		t.Fatal(err)
	}
	awaitBundle(t, bundles, string(ca.PEM)+string(next.PEM))
	select {
	case got := <-bundles:
		if got != string(ca.PEM)+string(next.PEM) {
			t.Errorf("then the proxy trusts %q", got)
		}
	case <-time.After(time.Second):
	}
}

// TestTheXDSServerTrustsTheMeshsBundle: the xDS server accepts client
// certificates under the roots of the meshes' trust bundles, not only under
// the ca.crt its serving Secrets hold, which an issuer may leave empty.
func TestTheXDSServerTrustsTheMeshsBundle(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "operator-1"}}
	mustCreate(t, ns)
	serving, err := ca.Server([]string{"localhost"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	labels := controllers.MeshObjectLabels("unpublished")
	labels[meshv1alpha1.XDSServingSecretLabel] = "unpublished"
	mustCreate(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "osm-unpublished-xds-tls", Labels: labels},
		Data:       map[string][]byte{corev1.TLSCertKey: serving.CertPEM, corev1.TLSPrivateKeyKey: serving.KeyPEM},
	})
	root, err := testpki.NewCA("unpublished root")
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := root.Workload("spiffe://cluster.local/ns/app/sa/app")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(proxy.CertPEM)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	verifies := func() error {
		_, pool, err := server.SecretTLS(informers, ns.Name)(nil)
		if err != nil {
			return err
		}
		_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		return err
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := verifies(); err == nil || strings.Contains(err.Error(), "no xDS serving certificate") {
			return fmt.Errorf("before the mesh has a bundle: %v", err)
		}
		return nil
	})
	// A mesh's bundle in another namespace is not the operator's.
	other := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere-1"}}
	elsewhere := trustBundleSecret(other.Name, "unpublished", root.PEM)
	mustCreate(t, other, elsewhere)
	testenv.Eventually(t, 10*time.Second, func() error {
		return informers.Get(context.Background(), client.ObjectKeyFromObject(elsewhere), &corev1.Secret{})
	})
	if err := verifies(); err == nil {
		t.Fatal("the xDS server trusts a bundle Secret outside the operator's namespace")
	}
	mustCreate(t, trustBundleSecret(ns.Name, "unpublished", root.PEM))
	testenv.Eventually(t, 10*time.Second, verifies)
}

// TestWhatProxiesAcknowledgedIsCounted: what a replica's census reports of
// its proxies' certificates, counted from real ADS streams: every proxy
// holding secrets it acknowledged counts; of those, the ones that
// acknowledged their group's current secrets count under the bundle those
// carry and the root their leaf chains to. A proxy that rejects its new
// secrets counts, under no bundle: a rotation waits for it;
// when the bundle gains a root, the validation context the proxy receives
// holds both (and passes Envoy's load rules, as everything published does),
// and its acknowledgement moves it to the new bundle.
func TestWhatProxiesAcknowledgedIsCounted(t *testing.T) {
	ctx := testContext(t)
	const name = "counted-trust"
	if err := createMesh(ctx, name, "", ca); err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "counted-trust-1", Labels: map[string]string{meshv1alpha1.MonitorLabel: name}}}
	mustCreate(t, ns)
	buyer := workload(t, ns.Name, "buyer-1", "buyer", nil)
	refuser := workload(t, ns.Name, "refuser-1", "refuser", nil)
	s, err := xdstest.OpenStream(ctx, connect(t, &buyer), nodeID(ns.Name, "buyer-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Subscribe(resourcev3.SecretType, []string{translate.IdentitySecret, translate.TrustBundleSecret}); err != nil {
		t.Fatal(err)
	}
	bundles := trustedBundles(t, s)
	r, err := xdstest.OpenStream(ctx, connect(t, &refuser), nodeID(ns.Name, "refuser-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Subscribe(resourcev3.SecretType, []string{translate.IdentitySecret, translate.TrustBundleSecret}); err != nil {
		t.Fatal(err)
	}
	// The refuser accepts its first secrets and rejects every later one.
	go func() {
		accepted := ""
		for {
			resp, err := r.Recv()
			if err != nil {
				return
			}
			if resp.GetTypeUrl() != resourcev3.SecretType || accepted == "" {
				if resp.GetTypeUrl() == resourcev3.SecretType {
					accepted = resp.GetVersionInfo()
				}
				_ = r.ACK(resp)
				continue
			}
			_ = r.NACK(resp, accepted, "refused by the test")
		}
	}()
	sha := func(b []byte) string {
		sum := sha256.Sum256(b)
		return hex.EncodeToString(sum[:])
	}
	counted := func(want census.MeshTrust) {
		t.Helper()
		testenv.Eventually(t, 20*time.Second, func() error {
			got := controlplane.TrustCounts(xds.Proxies(), snapshots.Trusts())[name]
			if got.Proxies != want.Proxies || !maps.Equal(got.Bundles, want.Bundles) || !maps.Equal(got.LeafRoots, want.LeafRoots) {
				return fmt.Errorf("counted %+v, want %+v", got, want)
			}
			return nil
		})
	}
	awaitBundle(t, bundles, string(ca.PEM))
	root := meshv1alpha1.Fingerprint(ca.Cert)
	counted(census.MeshTrust{Proxies: 2, Bundles: map[string]int32{sha(ca.PEM): 2}, LeafRoots: map[string]int32{root: 2}})

	next, err := testpki.NewCA("next root")
	if err != nil {
		t.Fatal(err)
	}
	bundle := &corev1.Secret{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: trustNamespace, Name: meshv1alpha1.TrustBundleSecretName(name)}, bundle); err != nil {
		t.Fatal(err)
	}
	both := append(append([]byte{}, ca.PEM...), next.PEM...)
	bundle.Data[meshv1alpha1.TrustBundleKey] = both
	if err := k8s.Update(ctx, bundle); err != nil {
		t.Fatal(err)
	}
	awaitBundle(t, bundles, string(both))
	counted(census.MeshTrust{Proxies: 2, Bundles: map[string]int32{sha(both): 1}, LeafRoots: map[string]int32{root: 1}})
}
