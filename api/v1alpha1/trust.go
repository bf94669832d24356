package v1alpha1

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultTrustDomain is the trust domain of a mesh whose spec names none
// (the CRD defaults it; objects built in code may leave it empty).
const DefaultTrustDomain = "cluster.local"

// EffectiveTrustDomain is the mesh's trust domain, defaulted.
func (m *MeshInstance) EffectiveTrustDomain() string {
	if m.Spec.TrustDomain == "" {
		return DefaultTrustDomain
	}
	return m.Spec.TrustDomain
}

// Fingerprint is a certificate's SHA-256 fingerprint, hex encoded, as a
// TrustAnchor holds it.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// TrustAnchorOf summarizes a CA certificate for status.trustBundle.
func TrustAnchorOf(cert *x509.Certificate) TrustAnchor {
	return TrustAnchor{Subject: cert.Subject.String(), SHA256Fingerprint: Fingerprint(cert), NotAfter: metav1.NewTime(cert.NotAfter)}
}
