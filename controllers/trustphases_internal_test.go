package controllers

import (
	"crypto/x509"
	"slices"
	"strings"
	"testing"
	"time"

	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testpki"
	"github.com/open-service-mesh/osm-operator/xds/census"
)

// TestARotationMovesOnlyOnWhatItObserves walks a rotation through its
// phases: each waits for its own facts (the new CA certificates, the
// ConfigMaps, every proxy's acknowledgement, the settle time, the leaves,
// hold), and says what it waits for.
func TestARotationMovesOnlyOnWhatItObserves(t *testing.T) {
	oldCA, err := testpki.NewCA("old")
	if err != nil {
		t.Fatal(err)
	}
	newCA, err := testpki.NewCA("new")
	if err != nil {
		t.Fatal(err)
	}
	from := cmmeta.IssuerReference{Name: "old", Kind: "ClusterIssuer"}
	to := cmmeta.IssuerReference{Name: "new", Kind: "ClusterIssuer"}
	t0 := time.Now()
	settle := time.Minute
	rot := begin(from, to, []string{meshv1alpha1.Fingerprint(oldCA.Cert)}, t0)
	newFP := meshv1alpha1.Fingerprint(newCA.Cert)

	ready := rotationFacts{
		from: []*x509.Certificate{oldCA.Cert}, to: []*x509.Certificate{newCA.Cert}, published: true, bundleSHA: "both",
		proxies: census.MeshTrust{Proxies: 3, Bundles: map[string]int32{"both": 3}},
	}
	type check struct {
		name    string
		facts   func(f rotationFacts) rotationFacts
		at      time.Duration
		hold    bool
		phase   meshv1alpha1.RotationPhase // "" means complete
		waiting string
	}
	announce := []check{
		{"no new CA yet", func(f rotationFacts) rotationFacts { f.to = nil; return f }, 2 * settle, false, meshv1alpha1.RotationAnnouncing, "has not signed"},
		{"ConfigMaps behind", func(f rotationFacts) rotationFacts { f.published = false; return f }, 2 * settle, false, meshv1alpha1.RotationAnnouncing, "ConfigMap"},
		{"a proxy behind", func(f rotationFacts) rotationFacts {
			f.proxies.Bundles = map[string]int32{"both": 2, "old": 1}
			return f
		}, 2 * settle, false, meshv1alpha1.RotationAnnouncing, "1 of 3 connected proxies"},
		{"a census from before the bundle", func(f rotationFacts) rotationFacts { f.asOf = t0.Add(-time.Second); return f }, 2 * settle, false, meshv1alpha1.RotationAnnouncing, "every xDS replica to report"},
		{"a census since", func(f rotationFacts) rotationFacts { f.asOf = t0.Add(time.Second); return f }, settle / 2, false, meshv1alpha1.RotationAnnouncing, "settles"},
		{"settling", nil, settle / 2, false, meshv1alpha1.RotationAnnouncing, "settles"},
		{"held", nil, 2 * settle, true, meshv1alpha1.RotationAnnouncing, "held"},
		{"all there", nil, 2 * settle, false, meshv1alpha1.RotationSigning, ""},
	}
	var next *meshv1alpha1.TrustRotation
	for _, c := range announce {
		f := ready
		if c.facts != nil {
			f = c.facts(f)
		}
		next = step(*rot, f, t0.Add(c.at), settle, c.hold)
		if next == nil || next.Phase != c.phase || !strings.Contains(next.Waiting, c.waiting) {
			t.Fatalf("%s: got %+v, want phase %s waiting for %q", c.name, next, c.phase, c.waiting)
		}
	}
	if !next.PhaseSince.Time.Equal(t0.Add(2 * settle)) {
		t.Errorf("phase Signing began %v, want when it was entered", next.PhaseSince)
	}

	signing := *next
	t1 := signing.PhaseSince.Time
	for _, c := range []check{
		{"identities on the former issuer", func(f rotationFacts) rotationFacts { f.onFrom, f.oldLeaves = 4, 5; return f }, 0, false, meshv1alpha1.RotationSigning, "4 identity Certificates"},
		{"held", nil, 0, true, meshv1alpha1.RotationSigning, "held"},
		{"every leaf moved", nil, 0, false, meshv1alpha1.RotationRetiring, ""},
	} {
		f := ready
		if c.facts != nil {
			f = c.facts(f)
		}
		next = step(signing, f, t1.Add(c.at), settle, c.hold)
		if next == nil || next.Phase != c.phase || !strings.Contains(next.Waiting, c.waiting) {
			t.Fatalf("%s: got %+v, want phase %s waiting for %q", c.name, next, c.phase, c.waiting)
		}
	}
	if next.LeavesRemaining != 0 {
		t.Errorf("leaves remaining %d", next.LeavesRemaining)
	}

	retiring := *next
	t2 := retiring.PhaseSince.Time
	onNew := func(n int32) func(f rotationFacts) rotationFacts {
		return func(f rotationFacts) rotationFacts {
			f.proxies.LeafRoots = map[string]int32{newFP: n, meshv1alpha1.Fingerprint(oldCA.Cert): 3 - n}
			return f
		}
	}
	for _, c := range []check{
		{"a proxy on an old leaf", onNew(2), 2 * settle, false, meshv1alpha1.RotationRetiring, "1 of 3 connected proxies"},
		{"a leaf renewed by the old issuer", func(f rotationFacts) rotationFacts { f = onNew(3)(f); f.oldLeaves = 1; return f }, 2 * settle, false, meshv1alpha1.RotationRetiring, "1 leaves"},
		{"a census from before the phase", func(f rotationFacts) rotationFacts { f = onNew(3)(f); f.asOf = t2.Add(-time.Second); return f }, 2 * settle, false, meshv1alpha1.RotationRetiring, "every xDS replica"},
		{"settling", onNew(3), settle / 2, false, meshv1alpha1.RotationRetiring, "settle"},
		{"held", onNew(3), 2 * settle, true, meshv1alpha1.RotationRetiring, "held"},
		{"done", onNew(3), 2 * settle, false, "", ""},
	} {
		f := ready
		if c.facts != nil {
			f = c.facts(f)
		}
		next = step(retiring, f, t2.Add(c.at), settle, c.hold)
		switch {
		case c.phase == "" && next != nil:
			t.Fatalf("%s: got %+v, want the rotation complete", c.name, next)
		case c.phase != "" && (next == nil || next.Phase != c.phase || !strings.Contains(next.Waiting, c.waiting)):
			t.Fatalf("%s: got %+v, want phase %s waiting for %q", c.name, next, c.phase, c.waiting)
		}
	}
}

// TestRollingBackKeepsBothIssuersTrusted: rolled back while announcing,
// the rotation is gone (nothing was signed by the new issuer); rolled back
// while signing, a rotation back to the former issuer starts in its
// Signing phase with the anchors swapped, so that both stay trusted until
// every leaf is the former issuer's again.
func TestRollingBackKeepsBothIssuersTrusted(t *testing.T) {
	now := time.Now()
	rot := begin(cmmeta.IssuerReference{Name: "old", Kind: "ClusterIssuer"}, cmmeta.IssuerReference{Name: "new", Kind: "ClusterIssuer"}, []string{"a"}, now)
	rot.ToAnchors = []string{"b"}
	if back := rollBack(rot, now); back != nil {
		t.Fatalf("rolled back while announcing: %+v, want none", back)
	}
	rot.Phase = meshv1alpha1.RotationSigning
	back := rollBack(rot, now.Add(time.Minute))
	if back == nil || back.Phase != meshv1alpha1.RotationSigning || back.From.Name != "new" || back.To.Name != "old" || !back.RolledBack ||
		back.FromAnchors[0] != "b" || back.ToAnchors[0] != "a" {
		t.Fatalf("rolled back while signing: %+v", back)
	}
	// Its bundle holds both: the former issuer's current, the new one's retiring.
	oldCA, _ := testpki.NewCA("old")
	newCA, _ := testpki.NewCA("new")
	b := rotationBundle(back, rotationFacts{from: []*x509.Certificate{newCA.Cert}, to: []*x509.Certificate{oldCA.Cert}}, &meshv1alpha1.MeshInstance{})
	roles := map[string]meshv1alpha1.TrustAnchorRole{}
	for _, a := range anchors(b) {
		roles[a.Subject] = a.Role
	}
	if roles["CN=old"] != meshv1alpha1.TrustAnchorCurrent || roles["CN=new"] != meshv1alpha1.TrustAnchorRetiring || len(b.all()) != 2 {
		t.Errorf("the rolled back bundle's roles: %v", roles)
	}
	if c := rotationCondition(back, false); c.Status != metav1.ConditionFalse || !strings.HasPrefix(c.Message, "Rolling back from ClusterIssuer new to ClusterIssuer old") {
		t.Errorf("condition: %+v", c)
	}
}

// TestTheApproverAcceptsBothIssuersOfARotationOnly: during a rotation the
// mesh reviews requests to the issuer it leaves and the one it moves to;
// after it, the former is no longer the mesh's.
func TestTheApproverAcceptsBothIssuersOfARotationOnly(t *testing.T) {
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "m"}}
	mi.Spec.Certificates.IssuerRef = &meshv1alpha1.IssuerReference{Name: "corp", Kind: "ClusterIssuer", Group: "cert-manager.io"}
	own := cmmeta.IssuerReference{Name: caIssuerName(mi), Kind: "ClusterIssuer"}
	corp := cmmeta.IssuerReference{Name: "corp", Kind: "ClusterIssuer"}
	mi.Status.Rotation = begin(own, corp, []string{"a"}, time.Now())
	if roleOf(mi, own) != ownCA || roleOf(mi, corp) != sharedIssuer {
		t.Fatalf("during the rotation: own %v, corp %v", roleOf(mi, own), roleOf(mi, corp))
	}
	if got := leafIssuer(mi); !sameIssuer(got, own) {
		t.Errorf("announcing, leaves are signed by %v, want the former issuer", got)
	}
	mi.Status.Rotation.Phase = meshv1alpha1.RotationSigning
	if got := identityIssuer(mi, own); !sameIssuer(got, own) {
		t.Errorf("signing, an identity on the former issuer moved by itself to %v", got)
	}
	if got := identityIssuer(mi, cmmeta.IssuerReference{}); !sameIssuer(got, corp) {
		t.Errorf("signing, a new identity gets %v, want the new issuer", got)
	}
	mi.Status.Rotation, mi.Status.SigningIssuer = nil, ptrTo(apiRef(corp))
	if roleOf(mi, own) != notTheMesh {
		t.Errorf("after the rotation the former issuer is still the mesh's: %v", roleOf(mi, own))
	}
}

// TestABootstrappedRootRenewsAheadOfItsWarning: a root is due for its
// renewal as a new generation within twice the expiry warning of its end,
// or in the last third of its life when that is later; cert-manager's own
// renewal in place comes after either.
func TestABootstrappedRootRenewsAheadOfItsWarning(t *testing.T) {
	now := time.Now()
	const day = 24 * time.Hour
	root := func(lived, left time.Duration) [2]time.Time { return [2]time.Time{now.Add(-lived), now.Add(left)} }
	for _, c := range []struct {
		name    string
		root    [2]time.Time
		warning time.Duration
		due     bool
	}{
		{"ten years, fresh", root(0, 3650*day), 30 * day, false},
		{"ten years, 61 days left", root(3589*day, 61*day), 30 * day, false},
		{"ten years, 59 days left", root(3591*day, 59*day), 30 * day, true},
		{"a warning longer than the root's life: the last third", root(0, 3650*day), 20 * 365 * day, false},
		{"a warning longer than the root's life, in the last third", root(2500*day, 1150*day), 20 * 365 * day, true},
		{"expired", root(3651*day, -day), 30 * day, true},
	} {
		if got := renewDue(c.root[0], c.root[1], now, c.warning); got != c.due {
			t.Errorf("%s: due %v, want %v", c.name, got, c.due)
		}
	}
	mi := &meshv1alpha1.MeshInstance{}
	mi.Spec.Certificates.ExpiryWarning = "720h"
	if fallbackRenewal(mi) >= 2*30*day {
		t.Errorf("cert-manager renews in place %v before the end, before the mesh would", fallbackRenewal(mi))
	}
}

// TestRootGenerationsAreNamedApart: each generation of the bootstrapped
// root has an issuer of its own; a name that only looks like one (another
// mesh's, a namespaced Issuer, a malformed suffix) is not the mesh's.
func TestRootGenerationsAreNamedApart(t *testing.T) {
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "m"}}
	cluster := func(name string) cmmeta.IssuerReference {
		return cmmeta.IssuerReference{Name: name, Kind: "ClusterIssuer", Group: "cert-manager.io"}
	}
	for _, c := range []struct {
		ref cmmeta.IssuerReference
		gen int32
		ok  bool
	}{
		{cluster("osm-m-ca"), 0, true},
		{cluster("osm-m-ca-g1"), 1, true},
		{cluster("osm-m-ca-g12"), 12, true},
		{cluster("osm-m-ca-g0"), 0, false},
		{cluster("osm-m-ca-g01"), 0, false},
		{cluster("osm-m-ca-gx"), 0, false},
		{cluster("osm-m-ca-g1-ca"), 0, false}, // mesh "m-ca-g1"'s
		{cmmeta.IssuerReference{Name: "osm-m-ca", Kind: "Issuer"}, 0, false},
		{cmmeta.IssuerReference{Name: "osm-m-ca-g2", Kind: "ClusterIssuer", Group: "example.com"}, 0, false},
	} {
		g, ok := bootstrappedGeneration(mi, c.ref)
		if g != c.gen || ok != c.ok {
			t.Errorf("%+v: generation %d %v, want %d %v", c.ref, g, ok, c.gen, c.ok)
		}
	}
	// Rotating from generation 0 to 1, the self-signed issuer may sign
	// both roots, and nothing else.
	mi.Spec.Certificates.RootGeneration = 1
	mi.Status.SigningIssuer = ptrTo(apiRef(cluster("osm-m-ca")))
	mi.Status.Rotation = begin(cluster("osm-m-ca"), cluster("osm-m-ca-g1"), []string{"a"}, time.Now())
	roots, ok := ownRoots(mi)
	if !ok || !slices.Equal(roots, []string{"osm-m-root-ca-g1", "osm-m-root-ca"}) && !slices.Equal(roots, []string{"osm-m-root-ca", "osm-m-root-ca-g1"}) {
		t.Errorf("own roots during the rotation: %v", roots)
	}
	if roleOf(mi, cluster("osm-m-ca")) != ownCA || roleOf(mi, cluster("osm-m-ca-g1")) != ownCA || roleOf(mi, cluster("osm-m-ca-g2")) != notTheMesh {
		t.Errorf("roles: g0 %v, g1 %v, g2 %v", roleOf(mi, cluster("osm-m-ca")), roleOf(mi, cluster("osm-m-ca-g1")), roleOf(mi, cluster("osm-m-ca-g2")))
	}
}
