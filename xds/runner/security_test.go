package runner_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"testing"
	"time"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/xdstest"
)

// The xDS server speaks TLS 1.3 only: a client that offers at most TLS 1.2
// is refused in the handshake, before any certificate is looked at.
func TestServerSpeaksTLS13Only(t *testing.T) {
	ns := memberNamespace(t)
	kp := workload(t, ns, "buyer-1", "buyer", nil)
	cert, err := kp.TLS()
	if err != nil {
		t.Fatal(err)
	}
	dial := func(maxVersion uint16) (uint16, error) {
		d := &net.Dialer{Timeout: 5 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{
			RootCAs: ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{cert},
			MaxVersion: maxVersion, NextProtos: []string{"h2"},
		})
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.ConnectionState().Version, nil
	}
	if _, err := dial(tls.VersionTLS12); err == nil {
		t.Error("a TLS 1.2 client completed a handshake")
	}
	if v, err := dial(tls.VersionTLS13); err != nil || v != tls.VersionTLS13 {
		t.Errorf("TLS 1.3 client: version %x, %v", v, err)
	}
}

// A proxy receives its own identity's certificate and the trust bundle, and
// nothing else, even when it asks for every secret there is (a delta
// wildcard) and for another identity's secret by the name that other proxy
// would use: a group's snapshot holds only its identity's secrets.
func TestProxyNeverReceivesAnotherIdentitysSecrets(t *testing.T) {
	forEachOrder(t, testProxyNeverReceivesAnotherIdentitysSecrets)
}

func testProxyNeverReceivesAnotherIdentitysSecrets(t *testing.T, o order) {
	ctx := testContext(t)
	ns, buyer, _ := shopIn(t, o)

	d, err := xdstest.OpenDeltaStream(ctx, connect(t, &buyer), nodeID(ns, "buyer-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Subscribe(resourcev3.SecretType, []string{"*", "osm-identity-store", ns + "/store"}); err != nil {
		t.Fatal(err)
	}
	want := mesh.Identity{Namespace: ns, ServiceAccount: "buyer"}.SPIFFE("cluster.local")
	var r *discoveryv3.DeltaDiscoveryResponse
	for r == nil || len(r.GetResources()) == 0 {
		if r, err = d.Recv(); err != nil {
			t.Fatal(err)
		}
		if err := d.ACK(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, res := range r.GetResources() {
		s := &tlsv3.Secret{}
		if err := res.GetResource().UnmarshalTo(s); err != nil {
			t.Fatal(err)
		}
		chain := s.GetTlsCertificate().GetCertificateChain().GetInlineBytes()
		if chain == nil {
			if s.GetValidationContext() == nil {
				t.Errorf("secret %s is neither this proxy's certificate nor the trust bundle", s.GetName())
			}
			continue
		}
		block, _ := pem.Decode(chain)
		if block == nil {
			t.Fatalf("secret %s: no PEM certificate", s.GetName())
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.URIs) != 1 || c.URIs[0].String() != want {
			t.Errorf("secret %s holds the certificate of %v, want %s", s.GetName(), c.URIs, want)
		}
	}
}
