package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// SecretTLS is a TLSSource over the serving Secrets in namespace, read from
// the informer cache: it answers each proxy with the certificate of the name
// it asked for (its mesh's), and trusts the roots of every mesh: the ca.crt
// of the serving Secrets and the meshes' trust bundle Secrets of namespace
// (an issuer may publish no CA; the mesh's spec then gives its roots).
// Renewed Secrets are used from the next handshake on.
func SecretTLS(r client.Reader, namespace string) TLSSource {
	s := &secretTLS{reader: r, namespace: namespace}
	return s.get
}

type secretTLS struct {
	reader    client.Reader
	namespace string

	mu      sync.Mutex
	version string // the Secrets' resource versions, joined
	certs   []*tls.Certificate
	pool    *x509.CertPool
}

func (s *secretTLS) get(hello *tls.ClientHelloInfo) (*tls.Certificate, *x509.CertPool, error) {
	ctx := context.Background()
	if hello != nil && hello.Context() != nil {
		ctx = hello.Context()
	}
	var list corev1.SecretList
	if err := s.reader.List(ctx, &list, client.InNamespace(s.namespace), client.HasLabels{meshv1alpha1.XDSServingSecretLabel}); err != nil {
		return nil, nil, fmt.Errorf("listing xDS serving Secrets: %w", err)
	}
	var bundles corev1.SecretList
	if err := s.reader.List(ctx, &bundles, client.InNamespace(s.namespace), client.HasLabels{meshv1alpha1.TrustBundleSecretLabel}); err != nil {
		return nil, nil, fmt.Errorf("listing trust bundle Secrets: %w", err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	sort.Slice(bundles.Items, func(i, j int) bool { return bundles.Items[i].Name < bundles.Items[j].Name })
	var versions []string
	for _, sec := range append(slices.Clone(list.Items), bundles.Items...) {
		versions = append(versions, sec.Name+"@"+sec.ResourceVersion)
	}
	version := strings.Join(versions, ",")

	s.mu.Lock()
	defer s.mu.Unlock()
	if version != s.version || s.pool == nil {
		s.certs, s.pool = nil, x509.NewCertPool()
		var errs []error
		for _, sec := range list.Items {
			cert, err := tls.X509KeyPair(sec.Data["tls.crt"], sec.Data["tls.key"])
			if err != nil {
				errs = append(errs, fmt.Errorf("Secret %s: %w", sec.Name, err))
				continue
			}
			if cert.Leaf == nil {
				cert.Leaf, _ = x509.ParseCertificate(cert.Certificate[0])
			}
			s.certs = append(s.certs, &cert)
			s.pool.AppendCertsFromPEM(sec.Data["ca.crt"])
		}
		for _, sec := range bundles.Items {
			s.pool.AppendCertsFromPEM(sec.Data[meshv1alpha1.TrustBundleKey])
		}
		s.version = version
		if len(s.certs) == 0 {
			s.pool = nil
			return nil, nil, errors.Join(append(errs, fmt.Errorf("no xDS serving certificate in namespace %s yet", s.namespace))...)
		}
	}
	if hello == nil || hello.ServerName == "" {
		return s.certs[0], s.pool, nil
	}
	if c := certificateFor(s.certs, hello.ServerName); c != nil {
		return c, s.pool, nil
	}
	return nil, nil, fmt.Errorf("no xDS serving certificate names %q: a proxy asks for its mesh's name (see bootstrap.XDSServerName)", hello.ServerName)
}

// certificateFor is the certificate among certs that names serverName
// exactly (DNS names are case-blind), or nil. Each mesh's certificate names
// the mesh's own names only, so the name a proxy asks for finds its mesh's;
// a match by wildcard or by a name every mesh's certificate lists would
// answer one mesh's proxies with another's certificate, which they refuse.
// A name that two certificates list is no mesh's: neither answers it.
func certificateFor(certs []*tls.Certificate, serverName string) *tls.Certificate {
	var found *tls.Certificate
	for _, c := range certs {
		if c.Leaf == nil {
			continue
		}
		if slices.ContainsFunc(c.Leaf.DNSNames, func(n string) bool { return strings.EqualFold(n, serverName) }) {
			if found != nil {
				return nil
			}
			found = c
		}
	}
	return found
}
