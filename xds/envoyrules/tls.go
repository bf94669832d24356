package envoyrules

import (
	"fmt"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// tlsRange is the TLS versions a side offers when its parameters say
// TLS_AUTO (or nothing).
type tlsRange struct {
	side     string
	min, max tlsv3.TlsParameters_TlsProtocol
}

// Envoy's defaults (source/common/tls/context_config_impl.cc and
// server_context_config_impl.cc): a client offers TLS 1.2 only, a server
// 1.2 to 1.3.
var (
	clientDefaults = tlsRange{"client", tlsv3.TlsParameters_TLSv1_2, tlsv3.TlsParameters_TLSv1_2}
	serverDefaults = tlsRange{"server", tlsv3.TlsParameters_TLSv1_2, tlsv3.TlsParameters_TLSv1_3}
)

// tlsVersions checks that the versions a TLS context allows are not empty.
func (c *Checker) tlsVersions(kind, name, where string, p *tlsv3.TlsParameters, d tlsRange, f *facts) {
	lo, hi := p.GetTlsMinimumProtocolVersion(), p.GetTlsMaximumProtocolVersion()
	if lo == tlsv3.TlsParameters_TLS_AUTO {
		lo = d.min
	}
	if hi == tlsv3.TlsParameters_TLS_AUTO {
		hi = d.max
	}
	if lo > hi {
		f.fail(kind, name, fmt.Sprintf("%s: the TLS minimum version (%s) is at most the maximum (%s, Envoy's %s default when unset)", where, lo, hi, d.side),
			"Envoy loads it and every handshake fails: no version is enabled (source/common/tls/context_impl.cc; api/envoy/extensions/transport_sockets/tls/v3/common.proto)")
	}
}

// commonTLS records the SDS secrets a TLS context loads, and checks that SAN
// matchers come with a trusted CA.
func (c *Checker) commonTLS(kind, name, where string, common *tlsv3.CommonTlsContext, f *facts) {
	for _, s := range common.GetTlsCertificateSdsSecretConfigs() {
		c.sdsConfig(kind, name, where, s, f)
	}
	check := func(vc *tlsv3.CertificateValidationContext, sds *tlsv3.SdsSecretConfig) {
		sans := len(vc.GetMatchTypedSubjectAltNames()) + len(vc.GetMatchSubjectAltNames())
		for _, m := range vc.GetMatchTypedSubjectAltNames() {
			c.stringMatcher(kind, name, m.GetMatcher(), f)
		}
		if sds != nil {
			c.sdsConfig(kind, name, where, sds, f)
			if sans > 0 {
				f.needCA = append(f.needCA, sds.GetName())
			}
			return
		}
		if sans > 0 && vc.GetTrustedCa() == nil && vc.GetCaCertificateProviderInstance() == nil {
			f.fail(kind, name, where+": SAN matchers come with a trusted CA",
				"\"SAN-based verification of peer certificates without trusted CA is insecure and not allowed\" (source/common/ssl/certificate_validation_context_config_impl.cc)")
		}
	}
	switch v := common.GetValidationContextType().(type) {
	case *tlsv3.CommonTlsContext_ValidationContext:
		check(v.ValidationContext, nil)
	case *tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig:
		check(nil, v.ValidationContextSdsSecretConfig)
	case *tlsv3.CommonTlsContext_CombinedValidationContext:
		check(v.CombinedValidationContext.GetDefaultValidationContext(), v.CombinedValidationContext.GetValidationContextSdsSecretConfig())
	}
}

func (c *Checker) sdsConfig(kind, name, where string, s *tlsv3.SdsSecretConfig, f *facts) {
	if s.GetSdsConfig() == nil {
		f.fail(kind, name, where+": SDS secret "+s.GetName()+" has a config source", "a secret by name alone must be a static one: \"Unknown static secret: "+s.GetName()+"\"")
		return
	}
	if s.GetSdsConfig().GetAds() != nil {
		f.secrets = append(f.secrets, s.GetName())
	}
}

// secret checks a served secret.
func (c *Checker) secret(s *tlsv3.Secret) *facts {
	return c.cached(s, func(f *facts) {
		switch t := s.GetType().(type) {
		case *tlsv3.Secret_TlsCertificate:
			if t.TlsCertificate.GetCertificateChain() == nil || t.TlsCertificate.GetPrivateKey() == nil {
				f.fail("secret", s.GetName(), "a TLS certificate secret has a certificate chain and a private key", "\"Server TlsCertificates must have a certificate specified\" (source/common/tls/server_context_config_impl.cc)")
			}
		case *tlsv3.Secret_ValidationContext:
			if t.ValidationContext.GetTrustedCa() == nil {
				f.fail("secret", s.GetName(), "a validation context secret has a trusted CA", "without one, no peer is verified")
			}
		default:
			f.fail("secret", s.GetName(), "secrets are TLS certificates or validation contexts", "no other kind is served by the mesh")
		}
	})
}
