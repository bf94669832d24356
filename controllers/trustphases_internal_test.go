package controllers

import (
	"crypto/x509"
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
