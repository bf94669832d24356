package controllers

import (
	"crypto/x509"
	"fmt"
	"strings"
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
// certificate of a mesh's trust bundle has left, negative once expired.
// An alert on it fires whatever the operator's conditions say.
var anchorExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "osm_trust_anchor_expiry_seconds",
	Help: "Seconds until a CA certificate of the mesh's trust bundle expires (negative once it has), by mesh and SHA-256 fingerprint.",
}, []string{"mesh", "sha256"})

func init() { metrics.Registry.MustRegister(anchorExpiry) }

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

// setAnchorExpiry sets the mesh's series of osm_trust_anchor_expiry_seconds
// to the bundle's certificates at now, dropping those of certificates
// that left it.
func setAnchorExpiry(mesh string, certs []*x509.Certificate, now time.Time) {
	anchorExpiry.DeletePartialMatch(prometheus.Labels{"mesh": mesh})
	for _, c := range certs {
		anchorExpiry.WithLabelValues(mesh, meshv1alpha1.Fingerprint(c)).Set(c.NotAfter.Sub(now).Seconds())
	}
}

// announceAnchors records a Warning Event when TrustAnchorsValid or
// TrustBundleRotated turns False or says something else, and a Normal one
// when it turns True again. Their messages hold no countdown, so they
// change only with the facts.
func announceAnchors(rec events.EventRecorder, mi *meshv1alpha1.MeshInstance, before, after []metav1.Condition) {
	for _, typ := range []string{meshv1alpha1.ConditionTrustAnchorsValid, meshv1alpha1.ConditionTrustBundleRotated} {
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
	rotation := typ == meshv1alpha1.ConditionTrustBundleRotated
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
