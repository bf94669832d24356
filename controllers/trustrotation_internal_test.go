package controllers

import (
	"crypto/x509"
	"testing"
	"time"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testpki"
)

// TestRetireKeepsAFormerRootWhileItsLeavesRemain: after the issuer's root
// changes, the former root stays in the bundle while a leaf of the mesh
// chains to it and to no current root, for at most the leaf lifetime; an
// expired former root, one no leaf needs, or one past the lifetime goes; a
// leaf of some other CA keeps nothing; a root that changes again and again
// keeps the newest few.
func TestRetireKeepsAFormerRootWhileItsLeavesRemain(t *testing.T) {
	ca := func(name string) *testpki.CA {
		c, err := testpki.NewCA(name)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	leaf := func(c *testpki.CA) []*x509.Certificate {
		kp, err := c.Workload("spiffe://cluster.local/ns/shop/sa/web")
		if err != nil {
			t.Fatal(err)
		}
		return certificates(kp.CertPEM)
	}
	oldRoot, newRoot, stranger := ca("old root"), ca("new root"), ca("stranger")
	now := time.Now()
	current := []*x509.Certificate{newRoot.Cert}
	written := []*x509.Certificate{oldRoot.Cert}
	const day = 24 * time.Hour
	fp := meshv1alpha1.Fingerprint(oldRoot.Cert)

	kept := retire(current, written, [][]*x509.Certificate{leaf(oldRoot), leaf(newRoot), leaf(oldRoot), leaf(stranger)}, nil, now, day)
	if len(kept) != 1 || kept[0].cert != oldRoot.Cert || kept[0].remaining != 2 || !kept[0].since.Equal(now) || !kept[0].until.Equal(now.Add(day)) {
		t.Fatalf("kept %+v, want the old root for its 2 leaves, former from now until a day later", kept)
	}
	if kept := retire(current, written, [][]*x509.Certificate{leaf(oldRoot)}, map[string]time.Time{fp: now.Add(-time.Hour)}, now, day); len(kept) != 1 || !kept[0].since.Equal(now.Add(-time.Hour)) {
		t.Errorf("kept %+v, want the old root former since an hour ago, as the status said", kept)
	}
	for name, got := range map[string][]retiring{
		"no leaf of it left":   retire(current, written, [][]*x509.Certificate{leaf(newRoot), leaf(stranger)}, nil, now, day),
		"past the lifetime":    retire(current, written, [][]*x509.Certificate{leaf(oldRoot)}, map[string]time.Time{fp: now.Add(-day)}, now, day),
		"expired":              retire(current, written, [][]*x509.Certificate{leaf(oldRoot)}, nil, oldRoot.Cert.NotAfter, day),
		"still current":        retire(append(current, oldRoot.Cert), written, [][]*x509.Certificate{leaf(oldRoot)}, nil, now, day),
		"nothing written":      retire(current, nil, [][]*x509.Certificate{leaf(oldRoot)}, nil, now, day),
		"a leaf of both roots": retire(append(current, oldRoot.Cert), []*x509.Certificate{oldRoot.Cert, newRoot.Cert}, [][]*x509.Certificate{leaf(newRoot)}, nil, now, day),
	} {
		if len(got) != 0 {
			t.Errorf("%s: kept %+v, want none", name, got)
		}
	}

	var many []*x509.Certificate
	var leaves [][]*x509.Certificate
	since := map[string]time.Time{}
	for i := range maxRetiring + 2 {
		r := ca("root " + string(rune('a'+i)))
		many = append(many, r.Cert)
		leaves = append(leaves, leaf(r))
		since[meshv1alpha1.Fingerprint(r.Cert)] = now.Add(-time.Duration(i) * time.Minute)
	}
	kept = retire(current, many, leaves, since, now, day)
	if len(kept) != maxRetiring || kept[0].cert != many[0] || kept[maxRetiring-1].cert != many[maxRetiring-1] {
		t.Errorf("kept %d former roots, want the %d newest", len(kept), maxRetiring)
	}
}
