package controllers

import (
	"crypto/x509"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// anchorExpiry is osm_trust_anchor_expiry_seconds: how long each CA
// certificate of a mesh's trust bundle has left, negative once expired,
// computed at each scrape. A gauge set at reconcile would stand still
// between reconciles, which may be weeks apart, and an alert on it would
// never fire; this one fires whatever the operator's conditions say.
var anchorExpiry = &anchorCollector{
	desc: prometheus.NewDesc("osm_trust_anchor_expiry_seconds",
		"Seconds until a CA certificate of the mesh's trust bundle expires (negative once it has), by mesh and SHA-256 fingerprint.",
		[]string{"mesh", "sha256"}, nil),
	notAfter: map[string]map[string]time.Time{},
}

func init() { metrics.Registry.MustRegister(anchorExpiry) }

// anchorCollector holds each mesh's bundle certificates' expiry.
type anchorCollector struct {
	desc     *prometheus.Desc
	mu       sync.Mutex
	notAfter map[string]map[string]time.Time // mesh → fingerprint → notAfter
}

func (c *anchorCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *anchorCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for mesh, certs := range c.notAfter {
		for fp, t := range certs {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, t.Sub(now).Seconds(), mesh, fp)
		}
	}
}

// anchorsValid is TrustAnchorsValid of a bundle at now, with a warning
// window: False naming the CA certificates that are expired or not valid
// yet (Expired), else those that expire within the window (ExpiresSoon).
// none says that no certificate of the bundle is valid at now: no proxy
// then accepts any peer. next is when the condition would next change by
// the clock alone (zero for never).
func anchorsValid(certs []*x509.Certificate, now time.Time, window time.Duration) (c metav1.Condition, none bool, next time.Time) {
	var expired, soon []string
	valid := 0
	later := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	first := certs[0]
	for _, cert := range certs {
		describe := fmt.Sprintf("%s (sha256 %.16s…, valid %s to %s)", cert.Subject, meshv1alpha1.Fingerprint(cert),
			cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
		later(cert.NotBefore)
		later(cert.NotAfter)
		later(cert.NotAfter.Add(-window))
		switch {
		case now.Before(cert.NotBefore) || !now.Before(cert.NotAfter):
			expired = append(expired, describe)
			continue
		case cert.NotAfter.Sub(now) <= window:
			soon = append(soon, describe)
		}
		valid++
		if cert.NotAfter.Before(first.NotAfter) {
			first = cert
		}
	}
	none = valid == 0
	switch {
	case len(expired) > 0:
		return condition(meshv1alpha1.ConditionTrustAnchorsValid, metav1.ConditionFalse, meshv1alpha1.ReasonExpired, truncate(
			"Expired or not valid yet, so proxies reject the certificates it signed: "+strings.Join(expired, "; ")+expiringToo(soon), maxConditionMessage)), none, next
	case len(soon) > 0:
		return condition(meshv1alpha1.ConditionTrustAnchorsValid, metav1.ConditionFalse, meshv1alpha1.ReasonExpiresSoon, truncate(fmt.Sprintf(
			"Expires within spec.certificates.expiryWarning (%s): %s. Renew or replace it before then: once it expires, proxies reject every certificate it signed",
			roundDuration(window), strings.Join(soon, "; ")), maxConditionMessage)), none, next
	}
	return condition(meshv1alpha1.ConditionTrustAnchorsValid, metav1.ConditionTrue, meshv1alpha1.ReasonValid, fmt.Sprintf(
		"Every CA certificate of the trust bundle is valid for longer than %s; the first to expire is %s, on %s",
		roundDuration(window), first.Subject, first.NotAfter.UTC().Format(time.RFC3339))), none, next
}

func expiringToo(soon []string) string {
	if len(soon) == 0 {
		return ""
	}
	return "; expiring soon: " + strings.Join(soon, "; ")
}

// roundDuration prints d to the minute, with days for long ones.
func roundDuration(d time.Duration) string {
	d = d.Round(time.Minute)
	if days := d / (24 * time.Hour); days >= 2 {
		return fmt.Sprintf("%dd%s", days, strings.TrimSuffix((d%(24*time.Hour)).String(), "0s"))
	}
	return strings.TrimSuffix(d.String(), "0s")
}

// setAnchorExpiry makes the mesh's series of osm_trust_anchor_expiry_seconds
// those of the bundle's certificates, dropping those of certificates that
// left it; no certificates drop the mesh's series.
func setAnchorExpiry(mesh string, certs []*x509.Certificate) {
	anchorExpiry.mu.Lock()
	defer anchorExpiry.mu.Unlock()
	if len(certs) == 0 {
		delete(anchorExpiry.notAfter, mesh)
		return
	}
	m := make(map[string]time.Time, len(certs))
	for _, c := range certs {
		m[meshv1alpha1.Fingerprint(c)] = c.NotAfter
	}
	anchorExpiry.notAfter[mesh] = m
}

// announceAnchors records a Warning Event when TrustAnchorsValid or
// TrustBundleRotated turns False or says something else, and a Normal one
// when it turns True again. Their messages hold no countdown, so they
// change only with the facts.
func announceAnchors(rec events.EventRecorder, mi *meshv1alpha1.MeshInstance, before, after []metav1.Condition) {
	for _, typ := range []string{meshv1alpha1.ConditionTrustAnchorsValid, meshv1alpha1.ConditionTrustBundleRotated, meshv1alpha1.ConditionTrustRotation} {
		announceCondition(rec, mi, typ, before, after)
	}
}

// announceCondition records the Event of announceAnchors for the condition typ.
func announceCondition(rec events.EventRecorder, mi *meshv1alpha1.MeshInstance, typ string, before, after []metav1.Condition) {
	now := meta.FindStatusCondition(after, typ)
	if rec == nil || now == nil {
		return
	}
	was := meta.FindStatusCondition(before, typ)
	// A rotation's message counts the leaves left: its Events mark its
	// start and end only, and are Normal (a rotation is no fault).
	rotation := typ == meshv1alpha1.ConditionTrustBundleRotated || typ == meshv1alpha1.ConditionTrustRotation
	if was != nil && was.Status == now.Status && was.Reason == now.Reason && (now.Status == metav1.ConditionTrue || rotation || was.Message == now.Message) {
		return
	}
	if was == nil && now.Status == metav1.ConditionTrue {
		return
	}
	kind := corev1.EventTypeWarning
	if now.Status == metav1.ConditionTrue || rotation {
		kind = corev1.EventTypeNormal
	}
	rec.Eventf(mi, nil, kind, now.Reason, "CheckTrustBundle", "%s", truncate(now.Message, maxEventNote))
}

// maxConditionMessage bounds a condition message that lists certificates,
// in bytes: the API server refuses one past 32 kB.
const maxConditionMessage = 4096
