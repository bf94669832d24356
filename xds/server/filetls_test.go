package server

import (
	"bytes"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-service-mesh/osm-operator/internal/testpki"
)

// TestFileTLSPicksUpRenewedCertificates: a renewed Secret, as kubelet writes
// it into the mount, is served at the next handshake without a restart.
func TestFileTLSPicksUpRenewedCertificates(t *testing.T) {
	dir := t.TempDir()
	ca, err := testpki.NewCA("root")
	if err != nil {
		t.Fatal(err)
	}
	write := func(kp testpki.KeyPair, at time.Time) {
		for name, data := range map[string][]byte{"tls.crt": kp.CertPEM, "tls.key": kp.KeyPEM, "ca.crt": ca.PEM} {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(p, at, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	first, _ := ca.Server([]string{"xds"}, nil)
	second, _ := ca.Server([]string{"xds"}, nil)
	src := FileTLS(dir)

	write(first, time.Now().Add(-time.Hour))
	c1, pool, err := src(nil)
	if err != nil {
		t.Fatal(err)
	}
	if pool == nil || !bytes.Contains(first.CertPEM, pemOf(t, c1.Certificate[0])) {
		t.Fatal("the first certificate was not served")
	}
	write(second, time.Now())
	c2, _, err := src(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(second.CertPEM, pemOf(t, c2.Certificate[0])) {
		t.Fatal("the renewed certificate was not picked up")
	}

	broken := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(broken, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(broken, time.Now().Add(time.Hour), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := src(nil); err == nil {
		t.Fatal("a broken trust bundle was accepted")
	}
}

func pemOf(t *testing.T, der []byte) []byte {
	t.Helper()
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return bytes.TrimSpace(b)
}
