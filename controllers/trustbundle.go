package controllers

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// bundle is a mesh's trust bundle as the reconciler found it: its CA
// certificates, or why it is not known, with the reason of
// TrustBundleKnown either way.
type bundle struct {
	certs           []*x509.Certificate
	reason, message string
	// next are the CA certificates of the issuer a rotation moves to,
	// trusted before it signs (trustphases.go).
	next []*x509.Certificate
	// retiring are former CA certificates kept next to certs (retire).
	retiring []retiring
}

func (b bundle) known() bool { return len(b.certs) > 0 }

// all are the certificates proxies trust: the current ones, the next ones,
// then the former ones kept.
func (b bundle) all() []*x509.Certificate {
	out := slices.Concat(b.certs, b.next)
	for _, r := range b.retiring {
		out = append(out, r.cert)
	}
	return out
}

// specBundle reads spec.certificates.trustBundle: CA certificates and
// nothing else, since every proxy of the mesh will trust them. Nil when the
// spec gives none.
func specBundle(mi *meshv1alpha1.MeshInstance) ([]*x509.Certificate, error) {
	src := mi.Spec.Certificates.TrustBundle
	if src == nil {
		return nil, nil
	}
	certs, err := strictCACertificates([]byte(src.PEM))
	if err != nil {
		return nil, fmt.Errorf("spec.certificates.trustBundle.pem: %w", err)
	}
	return certs, nil
}

// strictCACertificates parses PEM data that must hold CA certificates
// only: any other block, text that is not PEM, or a certificate that is not
// a CA is an error, named by its position, never by its content.
func strictCACertificates(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for i := 1; ; i++ {
		block, rest := pem.Decode(data)
		if block == nil {
			if len(bytes.TrimSpace(data)) > 0 {
				return nil, fmt.Errorf("block %d is not PEM", i)
			}
			break
		}
		data = rest
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("block %d is a %s, and only CA certificates belong in a trust bundle", i, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d does not parse: %w", i, err)
		}
		if !cert.IsCA || !cert.BasicConstraintsValid {
			return nil, fmt.Errorf("certificate %d (%s) is not a CA certificate", i, cert.Subject)
		}
		out = append(out, cert)
	}
	if len(out) == 0 {
		return nil, errors.New("holds no certificate")
	}
	return out, nil
}

// caCertificates are the CA certificates of PEM data an issuer or
// cert-manager wrote; anything else in it is left out.
func caCertificates(data []byte) []*x509.Certificate {
	return slices.DeleteFunc(certificates(data), func(c *x509.Certificate) bool { return !c.IsCA })
}

// readBundle finds the mesh's trust bundle: the spec's, else the
// bootstrapped root, else the ca.crt that the mesh's issuer put into the
// xDS serving Secret, in the operator's namespace (not an identity
// Secret's, which anyone who may write a Secret in some namespace could
// forge with the mesh's labels, and so choose the roots proxies trust).
func (r *MeshInstanceReconciler) readBundle(ctx context.Context, mi *meshv1alpha1.MeshInstance, fromSpec []*x509.Certificate) (bundle, error) {
	if len(fromSpec) > 0 {
		return bundle{certs: fromSpec, reason: meshv1alpha1.ReasonFromSpec, message: "The trust bundle is spec.certificates.trustBundle"}, nil
	}
	if mi.Spec.Certificates.IssuerRef == nil {
		key := client.ObjectKey{Namespace: r.ClusterResourceNamespace, Name: rootCAName(mi)}
		s := &corev1.Secret{}
		if err := r.Get(ctx, key, s); apierrors.IsNotFound(err) {
			return bundle{reason: meshv1alpha1.ReasonCertificatePending, message: "the mesh's root CA is not issued yet"}, nil
		} else if err != nil {
			return bundle{}, fmt.Errorf("reading the root CA Secret %s: %w", key, err)
		}
		return bundle{certs: caCertificates(s.Data[corev1.TLSCertKey]), reason: meshv1alpha1.ReasonBootstrapped,
			message: "The trust bundle is the mesh's bootstrapped root CA"}, nil
	}
	key := client.ObjectKey{Namespace: r.Namespace, Name: servingSecretName(mi)}
	s := &corev1.Secret{}
	if err := r.Get(ctx, key, s); apierrors.IsNotFound(err) {
		return bundle{reason: meshv1alpha1.ReasonCertificatePending, message: "the xDS serving Secret is not written yet"}, nil
	} else if err != nil {
		return bundle{}, fmt.Errorf("reading the xDS serving Secret %s: %w", key, err)
	}
	ref := meshIssuer(mi)
	if certs := caCertificates(s.Data[meshv1alpha1.TrustBundleKey]); len(certs) > 0 {
		return bundle{certs: certs, reason: meshv1alpha1.ReasonFromIssuer,
			message: fmt.Sprintf("The trust bundle is the ca.crt that %s %s published", ref.Kind, ref.Name)}, nil
	}
	return bundle{reason: meshv1alpha1.ReasonIssuerPublishesNoCA,
		message: fmt.Sprintf("%s %s signed the xDS serving certificate (Secret %s) with no CA certificate in ca.crt, as ACME and some other issuers do: "+
			"proxies get no trust bundle; give the mesh's roots in spec.certificates.trustBundle", ref.Kind, ref.Name, key)}, nil
}

// bundlePEM is the bundle as proxies get it: its certificates, PEM encoded,
// in order.
func bundlePEM(certs []*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// writeBundle writes the mesh's trust bundle into its Secret of the
// operator's namespace, which the xDS servers serve proxies from; the mesh
// owns it.
func (r *MeshInstanceReconciler) writeBundle(ctx context.Context, mi *meshv1alpha1.MeshInstance, certs []*x509.Certificate) error {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.Namespace, Name: meshv1alpha1.TrustBundleSecretName(mi.Name)}}
	_, err := controllerutil.CreateOrPatch(ctx, r.Client, s, func() error {
		labels := MeshObjectLabels(mi.Name)
		labels[meshv1alpha1.TrustBundleSecretLabel] = mi.Name
		s.Labels = labels
		s.Type = corev1.SecretTypeOpaque
		s.Data = map[string][]byte{meshv1alpha1.TrustBundleKey: bundlePEM(certs)}
		return controllerutil.SetControllerReference(mi, s, r.Scheme())
	})
	if err != nil {
		return fmt.Errorf("writing the trust bundle Secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	return nil
}

// anchors summarizes the certificates of a bundle for status.trustBundle,
// with their roles.
func anchors(b bundle) []meshv1alpha1.TrustAnchor {
	out := make([]meshv1alpha1.TrustAnchor, 0, len(b.certs)+len(b.next)+len(b.retiring))
	for _, c := range b.certs {
		a := meshv1alpha1.TrustAnchorOf(c)
		a.Role = meshv1alpha1.TrustAnchorCurrent
		out = append(out, a)
	}
	for _, c := range b.next {
		a := meshv1alpha1.TrustAnchorOf(c)
		a.Role = meshv1alpha1.TrustAnchorNext
		out = append(out, a)
	}
	for _, r := range b.retiring {
		a := meshv1alpha1.TrustAnchorOf(r.cert)
		a.Role, a.RetiringSince = meshv1alpha1.TrustAnchorRetiring, &metav1.Time{Time: r.since}
		out = append(out, a)
	}
	return out
}
