package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// FileTLS is a TLSSource reading tls.crt, tls.key and ca.crt from dir: a
// mounted cert-manager Secret. It re-reads them when they change, so renewed
// certificates and new roots are served without a restart.
func FileTLS(dir string) TLSSource {
	f := &fileTLS{dir: dir}
	return f.get
}

type fileTLS struct {
	dir string

	mu      sync.Mutex
	modTime time.Time
	cert    *tls.Certificate
	pool    *x509.CertPool
}

func (f *fileTLS) get(*tls.ClientHelloInfo) (*tls.Certificate, *x509.CertPool, error) {
	paths := []string{filepath.Join(f.dir, "tls.crt"), filepath.Join(f.dir, "tls.key"), filepath.Join(f.dir, "ca.crt")}
	var latest time.Time
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, nil, fmt.Errorf("reading xDS TLS material: %w", err)
		}
		if st.ModTime().After(latest) {
			latest = st.ModTime()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cert != nil && latest.Equal(f.modTime) {
		return f.cert, f.pool, nil
	}
	cert, err := tls.LoadX509KeyPair(paths[0], paths[1])
	if err != nil {
		return nil, nil, fmt.Errorf("loading the xDS server certificate from %s: %w", f.dir, err)
	}
	ca, err := os.ReadFile(paths[2])
	if err != nil {
		return nil, nil, fmt.Errorf("reading the mesh trust bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, nil, errors.New("the mesh trust bundle " + paths[2] + " holds no PEM certificate")
	}
	f.cert, f.pool, f.modTime = &cert, pool, latest
	return f.cert, f.pool, nil
}
