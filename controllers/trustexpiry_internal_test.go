package controllers

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testpki"
)

// TestAnchorsValidFollowsTheClock: a bundle of a root (valid a day) and an
// intermediate it signed (valid half a day) is valid, then expiring, then
// partly expired, then wholly: the condition names the certificates in
// question, says when none is valid (no proxy accepts any peer then), and
// says when it would next change.
func TestAnchorsValidFollowsTheClock(t *testing.T) {
	root, err := testpki.NewCA("test root")
	if err != nil {
		t.Fatal(err)
	}
	t0 := root.Cert.NotBefore.Add(time.Minute)
	inter, err := root.Intermediate("test intermediate", t0.Add(12*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	certs := []*x509.Certificate{root.Cert, inter.Cert}
	for _, tc := range []struct {
		name         string
		now          time.Time
		window       time.Duration
		status       metav1.ConditionStatus
		reason       string
		names, skips []string
		none         bool
		next         time.Time
	}{
		{"valid", t0, time.Hour, metav1.ConditionTrue, meshv1alpha1.ReasonValid, []string{"first to expire is CN=test intermediate"}, nil, false, inter.Cert.NotAfter.Add(-time.Hour)},
		{"intermediate expiring", t0, 13 * time.Hour, metav1.ConditionFalse, meshv1alpha1.ReasonExpiresSoon, []string{"CN=test intermediate"}, []string{"CN=test root"}, false, root.Cert.NotAfter.Add(-13 * time.Hour)},
		{"intermediate expired", t0.Add(13 * time.Hour), 12 * time.Hour, metav1.ConditionFalse, meshv1alpha1.ReasonExpired, []string{"CN=test intermediate", "expiring soon: CN=test root"}, nil, false, root.Cert.NotAfter},
		{"all expired", t0.Add(25 * time.Hour), time.Hour, metav1.ConditionFalse, meshv1alpha1.ReasonExpired, []string{"CN=test root", "CN=test intermediate"}, nil, true, time.Time{}},
		{"not valid yet", t0.Add(-time.Hour), time.Hour, metav1.ConditionFalse, meshv1alpha1.ReasonExpired, []string{"not valid yet", "CN=test root"}, nil, true, root.Cert.NotBefore},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, none, next := anchorsValid(certs, tc.now, tc.window)
			if c.Type != meshv1alpha1.ConditionTrustAnchorsValid || c.Status != tc.status || c.Reason != tc.reason {
				t.Errorf("condition %s %s %s, want %s %s", c.Type, c.Status, c.Reason, tc.status, tc.reason)
			}
			for _, s := range tc.names {
				if !strings.Contains(c.Message, s) {
					t.Errorf("message %q does not name %q", c.Message, s)
				}
			}
			for _, s := range tc.skips {
				if strings.Contains(c.Message, s) {
					t.Errorf("message %q names %q", c.Message, s)
				}
			}
			if none != tc.none {
				t.Errorf("none valid = %v, want %v", none, tc.none)
			}
			if !next.Equal(tc.next) {
				t.Errorf("next change at %v, want %v", next, tc.next)
			}
		})
	}
	if a, b := meshv1alpha1.TrustAnchorOf(root.Cert), meshv1alpha1.TrustAnchorOf(inter.Cert); a.Kind != meshv1alpha1.TrustAnchorRoot || b.Kind != meshv1alpha1.TrustAnchorIntermediate {
		t.Errorf("kinds %s and %s, want Root and Intermediate", a.Kind, b.Kind)
	}
}

// TestAnchorExpiryCountsDownAtEachScrape: the gauge is computed when
// scraped, not when the mesh last reconciled (which may be weeks ago): a
// certificate that expired since reads negative, and a mesh whose bundle
// is gone has no series.
func TestAnchorExpiryCountsDownAtEachScrape(t *testing.T) {
	root, err := testpki.NewCA("scrape root")
	if err != nil {
		t.Fatal(err)
	}
	gone, err := testpki.NewCAValid("gone root", time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	setAnchorExpiry("scrape", []*x509.Certificate{root.Cert, gone.Cert})
	got := map[string]float64{}
	ch := make(chan prometheus.Metric, 8)
	anchorExpiry.Collect(ch)
	close(ch)
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		labels := map[string]string{}
		for _, l := range pb.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["mesh"] == "scrape" {
			got[labels["sha256"]] = pb.GetGauge().GetValue()
		}
	}
	if v := got[meshv1alpha1.Fingerprint(root.Cert)]; v < 23*3600 || v > 24*3600 {
		t.Errorf("the root's seconds to expiry %f, want about a day", v)
	}
	if v := got[meshv1alpha1.Fingerprint(gone.Cert)]; v > -3500 || v < -3700 {
		t.Errorf("the expired root's seconds to expiry %f, want about -3600", v)
	}
	setAnchorExpiry("scrape", nil)
	ch = make(chan prometheus.Metric, 8)
	anchorExpiry.Collect(ch)
	close(ch)
	for m := range ch {
		var pb dto.Metric
		_ = m.Write(&pb)
		for _, l := range pb.GetLabel() {
			if l.GetName() == "mesh" && l.GetValue() == "scrape" {
				t.Error("a series of a mesh without a bundle remains")
			}
		}
	}
}
