package server

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
)

// The serving certificate is the one that names the server name exactly: a
// wildcard or a name of another mesh's never answers, and a name that two
// certificates list gets neither.
func TestCertificateForPicksByExactName(t *testing.T) {
	cert := func(names ...string) *tls.Certificate {
		return &tls.Certificate{Leaf: &x509.Certificate{DNSNames: names}}
	}
	wild, alpha, beta := cert("*.osm-system.svc"), cert("osm-xds-alpha.osm-system.svc", "alpha.osm-operator-xds.osm-system.svc"), cert("osm-xds-beta.osm-system.svc")
	// A second mesh's certificate listing beta's name, sorted first.
	squatter := cert("osm-xds-delta.osm-system.svc", "osm-xds-beta.osm-system.svc")
	certs := []*tls.Certificate{squatter, wild, alpha, beta}
	for name, want := range map[string]*tls.Certificate{
		"osm-xds-beta.osm-system.svc":           nil,
		"osm-xds-delta.osm-system.svc":          squatter,
		"OSM-XDS-Alpha.osm-system.svc":          alpha,
		"alpha.osm-operator-xds.osm-system.svc": alpha,
		"osm-operator-xds.osm-system.svc":       nil,
		"osm-xds-gamma.osm-system.svc":          nil,
	} {
		if got := certificateFor(certs, name); got != want {
			t.Errorf("certificateFor(%q) = %v, want %v", name, got, want)
		}
	}
}
