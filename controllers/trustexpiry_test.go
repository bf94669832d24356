package controllers_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/controllers"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/internal/testenv/certmanager"
	"github.com/open-service-mesh/osm-operator/internal/testpki"
	"github.com/open-service-mesh/osm-operator/xds/census"
)

// TestTrustAnchorExpiryIsWatched: the mesh's bootstrapped root, issued by
// cert-manager for ten years, expires within a warning window longer than
// that: TrustAnchorsValid turns False (ExpiresSoon) naming it, a Warning
// Event says so, the metric counts its seconds to expiry, and the mesh
// stays Ready (a warning, not an outage). status.trustBundle says it is a
// root and when it became valid. A shorter window clears the warning.
func TestTrustAnchorExpiryIsWatched(t *testing.T) {
	ctx := context.Background()
	mi := &meshv1alpha1.MeshInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "expiring"},
		Spec:       meshv1alpha1.MeshInstanceSpec{Certificates: meshv1alpha1.Certificates{ExpiryWarning: "87700h"}},
	}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), mi) })
	anchorsAre := func(status metav1.ConditionStatus, reason, msg string) {
		t.Helper()
		testenv.Eventually(t, 60*time.Second, func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
				return err
			}
			c := condition(t, mi, func() []metav1.Condition { return mi.Status.Conditions }, meshv1alpha1.ConditionTrustAnchorsValid)
			if c == nil || c.Status != status || c.Reason != reason || !strings.Contains(c.Message, msg) {
				return fmt.Errorf("TrustAnchorsValid %+v, want %s %s containing %q", c, status, reason, msg)
			}
			return ready(mi.Status.Conditions)
		})
	}
	anchorsAre(metav1.ConditionFalse, meshv1alpha1.ReasonExpiresSoon, "CN=expiring mesh root CA")
	if tb := mi.Status.TrustBundle; len(tb) != 1 || tb[0].Kind != meshv1alpha1.TrustAnchorRoot || tb[0].NotBefore.IsZero() || !tb[0].NotBefore.Before(&tb[0].NotAfter) {
		t.Errorf("status.trustBundle %+v, want one root with its validity", tb)
	}
	notAfter := mi.Status.TrustBundle[0].NotAfter.Time
	eventIs := func(typ, reason string) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, func() error {
			var l eventsv1.EventList
			if err := k8s.List(ctx, &l); err != nil {
				return err
			}
			for _, e := range l.Items {
				if e.Regarding.Kind == "MeshInstance" && e.Regarding.Name == mi.Name && e.Type == typ && e.Reason == reason {
					return nil
				}
			}
			return fmt.Errorf("no %s Event %s on the mesh", typ, reason)
		})
	}
	eventIs(corev1.EventTypeWarning, meshv1alpha1.ReasonExpiresSoon)
	testenv.Eventually(t, 10*time.Second, func() error {
		got, err := anchorExpirySeconds(mi.Name, mi.Status.TrustBundle[0].SHA256Fingerprint)
		if err != nil {
			return err
		}
		if want := time.Until(notAfter).Seconds(); got > want+60 || got < want-600 {
			return fmt.Errorf("osm_trust_anchor_expiry_seconds %f, want about %f", got, want)
		}
		return nil
	})

	testenv.Eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
			return err
		}
		mi.Spec.Certificates.ExpiryWarning = "720h"
		return k8s.Update(ctx, mi)
	})
	anchorsAre(metav1.ConditionTrue, meshv1alpha1.ReasonValid, "valid for longer than 30d")
	eventIs(corev1.EventTypeNormal, meshv1alpha1.ReasonValid)
}

// anchorExpirySeconds reads the operator's gauge for one certificate of a
// mesh's bundle.
func anchorExpirySeconds(mesh, fingerprint string) (float64, error) {
	families, err := metrics.Registry.Gather()
	if err != nil {
		return 0, err
	}
	for _, f := range families {
		if f.GetName() != "osm_trust_anchor_expiry_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["mesh"] == mesh && labels["sha256"] == fingerprint {
				return m.GetGauge().GetValue(), nil
			}
		}
	}
	return 0, fmt.Errorf("no osm_trust_anchor_expiry_seconds for mesh %s, sha256 %s", mesh, fingerprint)
}

// TestAnExpiredBundleIsNoBundle: a trust bundle given in the spec whose
// only CA certificate has expired leaves proxies accepting no peer: the
// mesh says so, not Ready (NoValidAnchor), with TrustAnchorsValid Expired.
func TestAnExpiredBundleIsNoBundle(t *testing.T) {
	ctx := context.Background()
	old, err := testpki.NewCAValid("long gone root", time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	mi := &meshv1alpha1.MeshInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "expired-bundle"},
		Spec: meshv1alpha1.MeshInstanceSpec{Certificates: meshv1alpha1.Certificates{
			TrustBundle: &meshv1alpha1.TrustBundleSource{PEM: string(old.PEM)},
		}},
	}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), mi) })
	testenv.Eventually(t, 60*time.Second, func() error {
		conds := func() []metav1.Condition { return mi.Status.Conditions }
		a := condition(t, mi, conds, meshv1alpha1.ConditionTrustAnchorsValid)
		r := condition(t, mi, conds, meshv1alpha1.ConditionReady)
		if a == nil || a.Status != metav1.ConditionFalse || a.Reason != meshv1alpha1.ReasonExpired || !strings.Contains(a.Message, "CN=long gone root") {
			return fmt.Errorf("TrustAnchorsValid %+v, want False Expired naming the root", a)
		}
		if r == nil || r.Status != metav1.ConditionFalse || r.Reason != meshv1alpha1.ReasonNoValidAnchor {
			return fmt.Errorf("Ready %+v, want False NoValidAnchor", r)
		}
		return nil
	})
}

// TestAnIssuerChangeRotatesInPhases: changing issuerRef to an issuer of
// another root runs the rotation's phases, each gated on what the mesh
// observes through the replicas' census and the API server. Announcing:
// the new root is Next in the bundle and in the namespace's ConfigMap while
// the leaves are still the former issuer's, until the connected proxy has
// acknowledged the bundle holding both. Signing: the identity moves to the
// new issuer; a leaf of the former root still in the mesh keeps the phase.
// Retiring: the former root stays until the proxy holds a leaf of the new
// one. Then only the new root is trusted, and the new issuer signs.
func TestAnIssuerChangeRotatesInPhases(t *testing.T) {
	ctx := context.Background()
	roots := caIssuers(t, "rotate-one", "rotate-two")
	mi := &meshv1alpha1.MeshInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "rotating"},
		Spec: meshv1alpha1.MeshInstanceSpec{Certificates: meshv1alpha1.Certificates{
			IssuerRef: &meshv1alpha1.IssuerReference{Name: "rotate-one", Kind: "ClusterIssuer"},
			Rotation:  meshv1alpha1.TrustRotationSpec{Settle: "1s"},
		}},
	}
	ns := newNamespace(t, nil)
	vm := &meshv1alpha1.MeshVM{
		ObjectMeta: metav1.ObjectMeta{Name: "ledger-vm", Namespace: ns},
		Spec: meshv1alpha1.MeshVMSpec{
			Mesh: mi.Name, ServiceAccountName: "ledger", Addresses: []string{"192.0.2.21"},
			Ports: []meshv1alpha1.VMPort{{Name: "http", Port: 8080, Protocol: meshv1alpha1.ProtocolHTTP}},
		},
	}
	for _, o := range []client.Object{mi, meshedPod(mi.Name, ns, "app-1", "app"), vm,
		&meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: mi.Name}}} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), mi) })
	// vmTrusts waits for the VM's bootstrap files (its Secret) to trust
	// exactly the roots named.
	vmTrusts := func(names ...string) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(vm), vm); err != nil {
				return err
			}
			if vm.Status.BootstrapSecretName == "" {
				return fmt.Errorf("no bootstrap Secret yet")
			}
			boot := &corev1.Secret{}
			if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: vm.Status.BootstrapSecretName}, boot); err != nil {
				return err
			}
			var got []string
			for _, c := range certificatesOf(boot.Data[controllers.CAKey]) {
				got = append(got, meshv1alpha1.Fingerprint(c))
			}
			var want []string
			for _, n := range names {
				want = append(want, meshv1alpha1.Fingerprint(roots[n].Cert))
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				return fmt.Errorf("the VM's bootstrap trusts %v, want %v", got, want)
			}
			return nil
		})
	}
	// One sidecar of the mesh, connected to an xDS replica, which reports
	// what it acknowledged as a replica does.
	var trust atomic.Pointer[census.MeshTrust]
	trust.Store(&census.MeshTrust{Proxies: 1})
	p := census.NewPublisher(census.Options{
		Client: k8s, Namespace: operatorNamespace, Replica: "replica-rotation",
		Count:        func() census.Counts { return census.Counts{ns: 1} },
		Trust:        func() census.Trust { return census.Trust{mi.Name: *trust.Load()} },
		Renew:        200 * time.Millisecond,
		FieldManager: meshv1alpha1.FieldManager, Log: logr.Discard(),
	})
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = p.Start(pctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	fp := func(name string) string { return meshv1alpha1.Fingerprint(roots[name].Cert) }
	// state waits for the bundle's roles (in status, the Secret proxies are
	// served and the namespace's ConfigMap), the rotation's phase ("" for
	// none) and a TrustRotationComplete message naming msg.
	state := func(want map[string]meshv1alpha1.TrustAnchorRole, phase meshv1alpha1.RotationPhase, msg string) {
		t.Helper()
		testenv.Eventually(t, 60*time.Second, func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
				return err
			}
			got := map[string]meshv1alpha1.TrustAnchorRole{}
			for _, a := range mi.Status.TrustBundle {
				got[a.SHA256Fingerprint] = a.Role
			}
			if !maps.Equal(got, want) {
				return fmt.Errorf("trust bundle %+v, want %v", mi.Status.TrustBundle, want)
			}
			var now meshv1alpha1.RotationPhase
			if mi.Status.Rotation != nil {
				now = mi.Status.Rotation.Phase
			}
			c := condition(t, mi, func() []metav1.Condition { return mi.Status.Conditions }, meshv1alpha1.ConditionTrustRotation)
			if now != phase || c == nil || !strings.Contains(c.Message, msg) {
				return fmt.Errorf("rotation %+v, condition %+v; want phase %q, a message naming %q", mi.Status.Rotation, c, phase, msg)
			}
			s := &corev1.Secret{}
			if err := k8s.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: meshv1alpha1.TrustBundleSecretName(mi.Name)}, s); err != nil {
				return err
			}
			if n := strings.Count(string(s.Data[meshv1alpha1.TrustBundleKey]), "BEGIN CERTIFICATE"); n != len(want) {
				return fmt.Errorf("the bundle Secret proxies are served holds %d certificates, want %d", n, len(want))
			}
			// What pods mount (a proxyless application's provider files).
			cm := &corev1.ConfigMap{}
			if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: meshv1alpha1.TrustBundleConfigMapName(mi.Name)}, cm); err != nil {
				return err
			}
			if n := strings.Count(cm.Data[meshv1alpha1.TrustBundleKey], "BEGIN CERTIFICATE"); n != len(want) {
				return fmt.Errorf("the namespace's bundle ConfigMap holds %d certificates, want %d", n, len(want))
			}
			return ready(mi.Status.Conditions)
		})
	}
	identityIsOf := func(name string) {
		t.Helper()
		testenv.Eventually(t, 60*time.Second, func() error {
			s := &corev1.Secret{}
			if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: meshv1alpha1.IdentitySecretName("app")}, s); err != nil {
				return err
			}
			if !strings.Contains(string(s.Data["ca.crt"]), strings.TrimSpace(string(roots[name].PEM))) {
				return fmt.Errorf("the identity Secret is not issued by %s", name)
			}
			return nil
		})
	}
	state(map[string]meshv1alpha1.TrustAnchorRole{fp("rotate-one"): meshv1alpha1.TrustAnchorCurrent}, "", "No change")
	identityIsOf("rotate-one")

	// A leaf of the first root that is not re-issued yet.
	kp, err := roots["rotate-one"].Workload("spiffe://cluster.local/ns/" + ns + "/sa/held")
	if err != nil {
		t.Fatal(err)
	}
	held := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "held", Namespace: ns, Labels: controllers.MeshObjectLabels(mi.Name)},
		Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": kp.CertPEM, "tls.key": kp.KeyPEM}}
	if err := k8s.Create(ctx, held); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
			return err
		}
		mi.Spec.Certificates.IssuerRef.Name = "rotate-two"
		return k8s.Update(ctx, mi)
	})
	both := map[string]meshv1alpha1.TrustAnchorRole{fp("rotate-one"): meshv1alpha1.TrustAnchorCurrent, fp("rotate-two"): meshv1alpha1.TrustAnchorNext}
	state(both, meshv1alpha1.RotationAnnouncing, "1 of 1 connected proxies have not acknowledged the bundle")
	vmTrusts("rotate-one", "rotate-two")
	// Held there while the proxy has not acknowledged it, however long:
	// the identity is still the former issuer's.
	time.Sleep(3 * time.Second)
	state(both, meshv1alpha1.RotationAnnouncing, "1 of 1 connected proxies")
	identityIsOf("rotate-one")

	// The proxy acknowledges the bundle it is served.
	s := &corev1.Secret{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: meshv1alpha1.TrustBundleSecretName(mi.Name)}, s); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(s.Data[meshv1alpha1.TrustBundleKey])
	trust.Store(&census.MeshTrust{Proxies: 1, Bundles: map[string]int32{hex.EncodeToString(sum[:]): 1}, LeafRoots: map[string]int32{fp("rotate-one"): 1}})
	swapped := map[string]meshv1alpha1.TrustAnchorRole{fp("rotate-two"): meshv1alpha1.TrustAnchorCurrent, fp("rotate-one"): meshv1alpha1.TrustAnchorRetiring}
	state(swapped, meshv1alpha1.RotationSigning, "0 identity Certificates still name ClusterIssuer rotate-one, and 1 leaves")
	identityIsOf("rotate-two")
	eventAbout(t, "MeshInstance", mi.Name, meshv1alpha1.ReasonSigning, "phase Signing")

	if err := k8s.Delete(ctx, held); err != nil {
		t.Fatal(err)
	}
	state(swapped, meshv1alpha1.RotationRetiring, "1 of 1 connected proxies have not acknowledged a leaf of the new CA certificates")
	trust.Store(&census.MeshTrust{Proxies: 1, Bundles: map[string]int32{"x": 1}, LeafRoots: map[string]int32{fp("rotate-two"): 1}})
	state(map[string]meshv1alpha1.TrustAnchorRole{fp("rotate-two"): meshv1alpha1.TrustAnchorCurrent}, "", "No change")
	vmTrusts("rotate-two")
	if si := mi.Status.SigningIssuer; si == nil || si.Name != "rotate-two" {
		t.Errorf("signing issuer %+v, want rotate-two", si)
	}
	eventAbout(t, "MeshInstance", mi.Name, meshv1alpha1.ReasonNoRotation, "No change")
	// The probe is gone with the rotation.
	testenv.Eventually(t, 10*time.Second, func() error {
		err := k8s.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: "osm-" + mi.Name + "-xds-next"}, &cmapi.Certificate{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("the probe Certificate: %v", err)
		}
		return nil
	})
}

// TestARenewedBootstrappedRootRotatesByItself: cert-manager renews the
// mesh's bootstrapped root (here asked to, as cmctl renew does), with a
// new key. The leaves the old root signed stay valid until their own
// renewal, so the old root stays in the bundle, Retiring, next to the new
// one; once the workload's and the xDS server's leaves are renewed under
// the new root, the old root leaves.
func TestARenewedBootstrappedRootRotatesByItself(t *testing.T) {
	ctx := context.Background()
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "renewing"}}
	ns := newNamespace(t, nil)
	for _, o := range []client.Object{mi, meshedPod(mi.Name, ns, "app-1", "app"),
		&meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: mi.Name}}} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), mi) })
	roles := func() (map[string]meshv1alpha1.TrustAnchorRole, error) {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
			return nil, err
		}
		out := map[string]meshv1alpha1.TrustAnchorRole{}
		for _, a := range mi.Status.TrustBundle {
			out[a.SHA256Fingerprint] = a.Role
		}
		return out, nil
	}
	var first string
	testenv.Eventually(t, 60*time.Second, func() error {
		got, err := roles()
		if err != nil {
			return err
		}
		if len(got) != 1 {
			return fmt.Errorf("trust bundle %+v, want the bootstrapped root", mi.Status.TrustBundle)
		}
		first = mi.Status.TrustBundle[0].SHA256Fingerprint
		// The workload's leaf exists, signed by that root.
		s := &corev1.Secret{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: meshv1alpha1.IdentitySecretName("app")}, s); err != nil {
			return err
		}
		return ready(mi.Status.Conditions)
	})
	renew := func(key client.ObjectKey) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, func() error {
			c := &cmapi.Certificate{}
			if err := k8s.Get(ctx, key, c); err != nil {
				return err
			}
			c.Status.Conditions = append(c.Status.Conditions, cmapi.CertificateCondition{
				Type: cmapi.CertificateConditionIssuing, Status: "True", Reason: "ManuallyTriggered", Message: "renewal asked for by the test",
			})
			return k8s.Status().Update(ctx, c)
		})
	}
	renew(client.ObjectKey{Namespace: certmanager.ClusterResourceNamespace, Name: "osm-" + mi.Name + "-root-ca"})
	testenv.Eventually(t, 60*time.Second, func() error {
		got, err := roles()
		if err != nil {
			return err
		}
		if len(got) != 2 || got[first] != meshv1alpha1.TrustAnchorRetiring {
			return fmt.Errorf("trust bundle %+v, want the renewed root Current and the first Retiring", mi.Status.TrustBundle)
		}
		c := condition(t, mi, func() []metav1.Condition { return mi.Status.Conditions }, meshv1alpha1.ConditionTrustBundleRotated)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != meshv1alpha1.ReasonRetiringFormerRoot {
			return fmt.Errorf("TrustBundleRotated %+v, want False RetiringFormerRoot", c)
		}
		return ready(mi.Status.Conditions)
	})
	// The leaves the old root signed: the workload's and the xDS server's.
	renew(client.ObjectKey{Namespace: ns, Name: meshv1alpha1.IdentitySecretName("app")})
	renew(client.ObjectKey{Namespace: operatorNamespace, Name: "osm-" + mi.Name + "-xds"})
	testenv.Eventually(t, 60*time.Second, func() error {
		got, err := roles()
		if err != nil {
			return err
		}
		if len(got) != 1 || got[first] != "" {
			return fmt.Errorf("trust bundle %+v, want the renewed root alone", mi.Status.TrustBundle)
		}
		return ready(mi.Status.Conditions)
	})
}

// TestARaisedRootGenerationRotatesInPhases: raising
// spec.certificates.rootGeneration gives the mesh a new self-signed root,
// reached through the rotation's phases: the identity is re-issued by the
// new generation's issuer, the old root leaves the bundle, and the old
// generation's issuer and root are deleted.
func TestARaisedRootGenerationRotatesInPhases(t *testing.T) {
	ctx := context.Background()
	mi := &meshv1alpha1.MeshInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "regenerating"},
		Spec:       meshv1alpha1.MeshInstanceSpec{Certificates: meshv1alpha1.Certificates{Rotation: meshv1alpha1.TrustRotationSpec{Settle: "1s"}}},
	}
	ns := newNamespace(t, nil)
	for _, o := range []client.Object{mi, meshedPod(mi.Name, ns, "app-1", "app"),
		&meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: mi.Name}}} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), mi) })
	identityRoot := func() (string, error) {
		s := &corev1.Secret{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: meshv1alpha1.IdentitySecretName("app")}, s); err != nil {
			return "", err
		}
		certs := certificatesOf(s.Data["ca.crt"])
		if len(certs) != 1 {
			return "", fmt.Errorf("the identity's ca.crt holds %d certificates", len(certs))
		}
		return meshv1alpha1.Fingerprint(certs[0]), nil
	}
	var first string
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
			return err
		}
		if len(mi.Status.TrustBundle) != 1 || mi.Status.SigningIssuer == nil || mi.Status.SigningIssuer.Name != "osm-regenerating-ca" {
			return fmt.Errorf("bundle %+v, signing issuer %+v", mi.Status.TrustBundle, mi.Status.SigningIssuer)
		}
		first = mi.Status.TrustBundle[0].SHA256Fingerprint
		got, err := identityRoot()
		if err == nil && got != first {
			err = fmt.Errorf("the identity is not of the bundle's root")
		}
		return err
	})
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
			return err
		}
		mi.Spec.Certificates.RootGeneration = 1
		return k8s.Update(ctx, mi)
	})
	var phases []meshv1alpha1.RotationPhase
	testenv.Eventually(t, 90*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
			return err
		}
		if rot := mi.Status.Rotation; rot != nil {
			if len(phases) == 0 || phases[len(phases)-1] != rot.Phase {
				phases = append(phases, rot.Phase)
			}
			if rot.To.Name != "osm-regenerating-ca-g1" || rot.From.Name != "osm-regenerating-ca" {
				t.Fatalf("a rotation from %s to %s", rot.From.Name, rot.To.Name)
			}
			return fmt.Errorf("phase %s: %s", rot.Phase, rot.Waiting)
		}
		if si := mi.Status.SigningIssuer; si == nil || si.Name != "osm-regenerating-ca-g1" {
			return fmt.Errorf("signing issuer %+v", si)
		}
		if len(mi.Status.TrustBundle) != 1 || mi.Status.TrustBundle[0].SHA256Fingerprint == first {
			return fmt.Errorf("bundle %+v, want one new root", mi.Status.TrustBundle)
		}
		if got, err := identityRoot(); err != nil || got != mi.Status.TrustBundle[0].SHA256Fingerprint {
			return fmt.Errorf("the identity is not of the new root yet (%v)", err)
		}
		return ready(mi.Status.Conditions)
	})
	t.Logf("phases seen: %v", phases)
	eventAbout(t, "MeshInstance", mi.Name, meshv1alpha1.ReasonRetiring, "phase Retiring")
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, o := range []client.Object{
			&cmapi.ClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: "osm-regenerating-ca"}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: certmanager.ClusterResourceNamespace, Name: "osm-regenerating-root-ca"}},
		} {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(o), o); !apierrors.IsNotFound(err) {
				return fmt.Errorf("the former generation's %s: %v", o.GetName(), err)
			}
		}
		return nil
	})
}

// certificatesOf parses the certificates of PEM data.
func certificatesOf(data []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		if block, data = pem.Decode(data); block == nil {
			return out
		}
		if c, err := x509.ParseCertificate(block.Bytes); err == nil {
			out = append(out, c)
		}
	}
}

// TestABootstrappedRootRenewsItselfInPhases: once the mesh's bootstrapped
// root is in its last weeks (the clock its renewal is judged by moved
// there), the mesh raises status.rootGeneration by itself and rotates to a
// new root through the phases, with nothing asked in the spec; the former
// generation is deleted after.
func TestABootstrappedRootRenewsItselfInPhases(t *testing.T) {
	ctx := context.Background()
	mi := &meshv1alpha1.MeshInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "self-renewing"},
		Spec:       meshv1alpha1.MeshInstanceSpec{Certificates: meshv1alpha1.Certificates{Rotation: meshv1alpha1.TrustRotationSpec{Settle: "1s"}}},
	}
	ns := newNamespace(t, nil)
	for _, o := range []client.Object{mi, meshedPod(mi.Name, ns, "app-1", "app"),
		&meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: mi.Name}}} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), mi) })
	var first string
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
			return err
		}
		if len(mi.Status.TrustBundle) != 1 || mi.Status.SigningIssuer == nil {
			return fmt.Errorf("bundle %+v, signing issuer %+v", mi.Status.TrustBundle, mi.Status.SigningIssuer)
		}
		first = mi.Status.TrustBundle[0].SHA256Fingerprint
		return ready(mi.Status.Conditions)
	})
	// Thirty days before the root's end, inside twice the 30-day warning.
	rootClockAhead.Store(mi.Name, mi.Status.TrustBundle[0].NotAfter.Sub(time.Now())-30*24*time.Hour)
	t.Cleanup(func() { rootClockAhead.Delete(mi.Name) })
	testenv.Eventually(t, 30*time.Second, func() error {
		// Any change has the mesh looked at again.
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
			return err
		}
		if mi.Status.RootGeneration == 1 {
			return nil
		}
		if mi.Annotations == nil {
			mi.Annotations = map[string]string{}
		}
		mi.Annotations["test/poke"] = time.Now().String()
		_ = k8s.Update(ctx, mi)
		return fmt.Errorf("root generation %d, rotation %+v", mi.Status.RootGeneration, mi.Status.Rotation)
	})
	// The new root is fresh: its own renewal is years away.
	rootClockAhead.Delete(mi.Name)
	testenv.Eventually(t, 90*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
			return err
		}
		if rot := mi.Status.Rotation; rot != nil {
			return fmt.Errorf("phase %s: %s", rot.Phase, rot.Waiting)
		}
		if si := mi.Status.SigningIssuer; si == nil || si.Name != "osm-self-renewing-ca-g1" {
			return fmt.Errorf("signing issuer %+v", si)
		}
		if len(mi.Status.TrustBundle) != 1 || mi.Status.TrustBundle[0].SHA256Fingerprint == first {
			return fmt.Errorf("bundle %+v, want one new root", mi.Status.TrustBundle)
		}
		if mi.Spec.Certificates.RootGeneration != 0 {
			return fmt.Errorf("the spec was changed: rootGeneration %d", mi.Spec.Certificates.RootGeneration)
		}
		return ready(mi.Status.Conditions)
	})
	eventAbout(t, "MeshInstance", mi.Name, meshv1alpha1.ReasonAnnouncing, "Rotating from ClusterIssuer osm-self-renewing-ca to ClusterIssuer osm-self-renewing-ca-g1")
	testenv.Eventually(t, 30*time.Second, func() error {
		err := k8s.Get(ctx, client.ObjectKey{Name: "osm-self-renewing-ca"}, &cmapi.ClusterIssuer{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("the former generation's issuer: %v", err)
		}
		return nil
	})
}

// TestAnotherIssuerWhileAnnouncingIsAnnouncedInstead: a second change of
// issuerRef while the first is still announcing (held here) announces the
// second issuer instead: the first's root leaves the bundle (it signed
// nothing), and the rotation ends on the second.
func TestAnotherIssuerWhileAnnouncingIsAnnouncedInstead(t *testing.T) {
	ctx := context.Background()
	roots := caIssuers(t, "retarget-a", "retarget-b")
	mi := &meshv1alpha1.MeshInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "retargeting"},
		Spec:       meshv1alpha1.MeshInstanceSpec{Certificates: meshv1alpha1.Certificates{Rotation: meshv1alpha1.TrustRotationSpec{Settle: "1s", Hold: true}}},
	}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), mi) })
	edit := func(f func(c *meshv1alpha1.Certificates)) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
				return err
			}
			f(&mi.Spec.Certificates)
			return k8s.Update(ctx, mi)
		})
	}
	// next waits for the rotation announcing issuer with its root Next.
	next := func(issuer string) {
		t.Helper()
		testenv.Eventually(t, 60*time.Second, func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
				return err
			}
			rot := mi.Status.Rotation
			if rot == nil || rot.Phase != meshv1alpha1.RotationAnnouncing || rot.To.Name != issuer {
				return fmt.Errorf("rotation %+v, want announcing %s", rot, issuer)
			}
			var nexts []string
			for _, a := range mi.Status.TrustBundle {
				if a.Role == meshv1alpha1.TrustAnchorNext {
					nexts = append(nexts, a.SHA256Fingerprint)
				}
			}
			if want := meshv1alpha1.Fingerprint(roots[issuer].Cert); len(nexts) != 1 || nexts[0] != want || len(mi.Status.TrustBundle) != 2 {
				return fmt.Errorf("bundle %+v, want the bootstrapped root and %s's", mi.Status.TrustBundle, issuer)
			}
			return nil
		})
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
			return err
		}
		if len(mi.Status.TrustBundle) != 1 {
			return fmt.Errorf("bundle %+v", mi.Status.TrustBundle)
		}
		return nil
	})
	edit(func(c *meshv1alpha1.Certificates) {
		c.IssuerRef = &meshv1alpha1.IssuerReference{Name: "retarget-a", Kind: "ClusterIssuer"}
	})
	next("retarget-a")
	edit(func(c *meshv1alpha1.Certificates) {
		c.IssuerRef = &meshv1alpha1.IssuerReference{Name: "retarget-b", Kind: "ClusterIssuer"}
	})
	next("retarget-b")
	edit(func(c *meshv1alpha1.Certificates) { c.Rotation.Hold = false })
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
			return err
		}
		if mi.Status.Rotation != nil || mi.Status.SigningIssuer == nil || mi.Status.SigningIssuer.Name != "retarget-b" {
			return fmt.Errorf("rotation %+v, signing issuer %+v", mi.Status.Rotation, mi.Status.SigningIssuer)
		}
		if len(mi.Status.TrustBundle) != 1 || mi.Status.TrustBundle[0].SHA256Fingerprint != meshv1alpha1.Fingerprint(roots["retarget-b"].Cert) {
			return fmt.Errorf("bundle %+v, want retarget-b's root alone", mi.Status.TrustBundle)
		}
		return nil
	})
}

// caIssuers creates, for each name, a CA ClusterIssuer of that name over a
// root of its own, and returns the roots by name.
func caIssuers(t *testing.T, names ...string) map[string]*testpki.CA {
	t.Helper()
	roots := map[string]*testpki.CA{}
	for _, name := range names {
		ca, err := testpki.NewCA(name + " root")
		if err != nil {
			t.Fatal(err)
		}
		roots[name] = ca
		for _, o := range []client.Object{
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: certmanager.ClusterResourceNamespace}, Type: corev1.SecretTypeTLS,
				Data: map[string][]byte{"tls.crt": ca.PEM, "tls.key": ca.KeyPEM()}},
			&cmapi.ClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{CA: &cmapi.CAIssuer{SecretName: name}}}},
		} {
			if err := k8s.Create(context.Background(), o); err != nil {
				t.Fatal(err)
			}
		}
	}
	return roots
}
