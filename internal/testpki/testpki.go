// Package testpki issues real X.509 certificates for tests: a CA, workload
// certificates with SPIFFE IDs, and server certificates.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"time"
)

// CA is a certificate authority.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// PEM is the CA certificate, PEM encoded.
	PEM []byte
}

// NewCA creates a self-signed ECDSA P-256 CA, valid for a day.
func NewCA(name string) (*CA, error) {
	return NewCAValid(name, time.Now().Add(-time.Minute), time.Now().Add(24*time.Hour))
}

// NewCAValid creates a self-signed ECDSA P-256 CA valid from notBefore to
// notAfter: one expired, or not valid yet, for the tests of those.
func NewCAValid(name string, notBefore, notAfter time.Time) (*CA, error) {
	return newCA(name, notBefore, notAfter, nil)
}

// newCA creates an ECDSA P-256 CA signed by parent, or by itself when
// parent is nil.
func newCA(name string, notBefore, notAfter time.Time, parent *CA) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	issuer, signer := tmpl, key
	if parent != nil {
		issuer, signer = parent.Cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, signer)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// Pool is a pool holding the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// KeyPair is a certificate and its key, PEM encoded.
type KeyPair struct{ CertPEM, KeyPEM []byte }

// TLS parses the pair for crypto/tls.
func (kp KeyPair) TLS() (tls.Certificate, error) { return tls.X509KeyPair(kp.CertPEM, kp.KeyPEM) }

// Workload issues a client and server certificate for a SPIFFE ID such as
// spiffe://cluster.local/ns/bookstore/sa/bookstore.
func (ca *CA) Workload(spiffeID string) (KeyPair, error) {
	u, err := url.Parse(spiffeID)
	if err != nil {
		return KeyPair{}, fmt.Errorf("parsing SPIFFE ID: %w", err)
	}
	return ca.issue(&x509.Certificate{URIs: []*url.URL{u}})
}

// WorkloadUntil is Workload with a certificate that expires at notAfter.
func (ca *CA) WorkloadUntil(spiffeID string, notAfter time.Time) (KeyPair, error) {
	u, err := url.Parse(spiffeID)
	if err != nil {
		return KeyPair{}, fmt.Errorf("parsing SPIFFE ID: %w", err)
	}
	return ca.issue(&x509.Certificate{URIs: []*url.URL{u}, NotAfter: notAfter})
}

// Server issues a server certificate for host names and IP addresses.
func (ca *CA) Server(dnsNames []string, ips []net.IP) (KeyPair, error) {
	return ca.issue(&x509.Certificate{DNSNames: dnsNames, IPAddresses: ips})
}

func (ca *CA) issue(tmpl *x509.Certificate) (KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return KeyPair{}, err
	}
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = time.Now().Add(-time.Minute)
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(time.Hour)
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return KeyPair{}, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return KeyPair{}, err
	}
	return KeyPair{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}

// KeyPEM is the CA's private key, PEM encoded, for issuers that sign with it.
func (ca *CA) KeyPEM() []byte {
	der, err := x509.MarshalECPrivateKey(ca.key)
	if err != nil {
		panic(err) // a P-256 key always marshals
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

// Intermediate creates a CA that ca signs, valid until notAfter.
func (ca *CA) Intermediate(name string, notAfter time.Time) (*CA, error) {
	return newCA(name, time.Now().Add(-time.Minute), notAfter, ca)
}
