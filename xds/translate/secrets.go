package translate

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// secrets are the group's identity certificate and the mesh trust bundle.
func (t *translator) secrets(c *Certificates) {
	if c == nil || len(c.CertChain) == 0 || len(c.PrivateKey) == 0 || len(c.TrustBundle) == 0 {
		return
	}
	inline := func(b []byte) *corev3.DataSource {
		return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b}}
	}
	t.out.Secrets = []*tlsv3.Secret{
		{Name: IdentitySecret, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: inline(c.CertChain),
			PrivateKey:       inline(c.PrivateKey),
		}}},
		{Name: TrustBundleSecret, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: inline(c.TrustBundle),
		}}},
	}
}
