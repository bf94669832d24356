package v1alpha1

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"time"

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
	kind := TrustAnchorIntermediate
	if selfSigned(cert) {
		kind = TrustAnchorRoot
	}
	return TrustAnchor{
		Subject: cert.Subject.String(), Kind: kind, SHA256Fingerprint: Fingerprint(cert),
		NotBefore: metav1.NewTime(cert.NotBefore), NotAfter: metav1.NewTime(cert.NotAfter),
	}
}

// selfSigned says whether the certificate names itself as its issuer and
// its own key verifies its signature: a root.
func selfSigned(cert *x509.Certificate) bool {
	return bytes.Equal(cert.RawIssuer, cert.RawSubject) && cert.CheckSignatureFrom(cert) == nil
}

// DefaultExpiryWarning is how long before a CA certificate of the bundle
// expires that the mesh warns, when spec.certificates.expiryWarning is
// empty (the CRD defaults it).
const DefaultExpiryWarning = 30 * 24 * time.Hour

// EffectiveExpiryWarning is spec.certificates.expiryWarning, defaulted; an
// unparsable or non-positive value is the default too (the CRD's pattern
// refuses the former).
func (m *MeshInstance) EffectiveExpiryWarning() time.Duration {
	if d, err := time.ParseDuration(m.Spec.Certificates.ExpiryWarning); err == nil && d > 0 {
		return d
	}
	return DefaultExpiryWarning
}
