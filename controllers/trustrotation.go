package controllers

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// maxRetiring bounds the former CA certificates a bundle keeps: a root that
// changes again and again must not grow it without end.
const maxRetiring = 4

// retiring is a former CA certificate kept in the bundle, since when, and
// how many of the mesh's leaves it still signs.
type retiring struct {
	cert         *x509.Certificate
	since, until time.Time
	remaining    int
}

// retire decides which CA certificates of the bundle proxies have
// (written), and that the mesh's issuer no longer gives (not in current),
// stay in it: those that are valid, signed one of the mesh's leaves that no
// current one signs, and became former less than maxAge ago (the mesh's
// leaf lifetime: by then each leaf they signed has expired). since holds
// when each became former, by fingerprint, from the last status; a new
// one is former from now. The newest maxRetiring are kept.
func retire(current, written []*x509.Certificate, leaves [][]*x509.Certificate, since map[string]time.Time, now time.Time, maxAge time.Duration) []retiring {
	isCurrent := map[string]bool{}
	for _, c := range current {
		isCurrent[meshv1alpha1.Fingerprint(c)] = true
	}
	currentPool := pool(current)
	var out []retiring
	for _, w := range written {
		fp := meshv1alpha1.Fingerprint(w)
		if isCurrent[fp] || !w.IsCA || now.Before(w.NotBefore) || !now.Before(w.NotAfter) {
			continue
		}
		start, ok := since[fp]
		if !ok || start.After(now) {
			start = now
		}
		if now.Sub(start) >= maxAge {
			continue
		}
		formerPool := pool([]*x509.Certificate{w})
		n := 0
		for _, chain := range leaves {
			if verifies(chain, formerPool, now) && !verifies(chain, currentPool, now) {
				n++
			}
		}
		if n > 0 {
			out = append(out, retiring{cert: w, since: start, until: start.Add(maxAge), remaining: n})
		}
	}
	slices.SortStableFunc(out, func(a, b retiring) int { return b.since.Compare(a.since) })
	return out[:min(len(out), maxRetiring)]
}

func pool(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// verifies says whether a leaf (chain[0], with the intermediates after it)
// chains to a root of roots at now, for any use.
func verifies(chain []*x509.Certificate, roots *x509.CertPool, now time.Time) bool {
	if len(chain) == 0 {
		return false
	}
	inter := pool(chain[1:])
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err == nil
}

// retiringSince reads, from a mesh's status, since when each Retiring CA
// certificate has been former.
func retiringSince(st meshv1alpha1.MeshInstanceStatus) map[string]time.Time {
	out := map[string]time.Time{}
	for _, a := range st.TrustBundle {
		if a.Role == meshv1alpha1.TrustAnchorRetiring && a.RetiringSince != nil {
			out[a.SHA256Fingerprint] = a.RetiringSince.Time
		}
	}
	return out
}

// readWritten is the bundle last written for the xDS servers: what proxies
// trust now. None before the first write.
func (r *MeshInstanceReconciler) readWritten(ctx context.Context, mi *meshv1alpha1.MeshInstance) ([]*x509.Certificate, error) {
	s := &corev1.Secret{}
	key := client.ObjectKey{Namespace: r.Namespace, Name: meshv1alpha1.TrustBundleSecretName(mi.Name)}
	if err := r.Get(ctx, key, s); apierrors.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("reading the trust bundle Secret %s: %w", key, err)
	}
	if !metav1.IsControlledBy(s, mi) {
		return nil, nil // not the mesh's: nothing of it is kept
	}
	return caCertificates(s.Data[meshv1alpha1.TrustBundleKey]), nil
}

// readLeaves are the certificate chains of the mesh's leaves: its identity
// Secrets and the xDS serving Secret.
func (r *MeshInstanceReconciler) readLeaves(ctx context.Context, mi *meshv1alpha1.MeshInstance) ([][]*x509.Certificate, error) {
	var secrets corev1.SecretList
	if err := r.List(ctx, &secrets, client.MatchingLabels(MeshObjectLabels(mi.Name)), client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing the mesh's identity Secrets: %w", err)
	}
	var out [][]*x509.Certificate
	add := func(s *corev1.Secret) {
		// A CA's Secret (the bootstrapped root's) holds no leaf.
		if chain := certificates(s.Data[corev1.TLSCertKey]); len(chain) > 0 && !chain[0].IsCA {
			out = append(out, chain)
		}
	}
	for i := range secrets.Items {
		add(&secrets.Items[i])
	}
	serving := &corev1.Secret{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: servingSecretName(mi)}, serving); err == nil {
		add(serving)
	} else if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("reading the xDS serving Secret: %w", err)
	}
	return out, nil
}

// rotated is TrustBundleRotated of the former CA certificates kept.
func rotated(kept []retiring) metav1.Condition {
	if len(kept) == 0 {
		return condition(meshv1alpha1.ConditionTrustBundleRotated, metav1.ConditionTrue, meshv1alpha1.ReasonCurrentOnly,
			"The trust bundle holds only the current CA certificates of the mesh's issuer")
	}
	var parts []string
	for _, k := range kept {
		parts = append(parts, fmt.Sprintf("%s (sha256 %.16s…) still signs %d of the mesh's leaves; it leaves the bundle once none does, at the latest %s",
			k.cert.Subject, meshv1alpha1.Fingerprint(k.cert), k.remaining, k.until.UTC().Format(time.RFC3339)))
	}
	return condition(meshv1alpha1.ConditionTrustBundleRotated, metav1.ConditionFalse, meshv1alpha1.ReasonRetiringFormerRoot, truncate(
		"The mesh's issuer has a new CA certificate; the former one stays trusted next to it so that leaves of both keep working: "+strings.Join(parts, "; "), maxConditionMessage))
}

// certificates are the certificates of PEM data, in order (a leaf's chain,
// a bundle); anything else is left out.
func certificates(data []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return out
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if cert, err := x509.ParseCertificate(block.Bytes); err == nil {
			out = append(out, cert)
		}
	}
}

// keepFormer adds to b the former CA certificates proxies must still
// trust (retire), reading what was written and the mesh's leaves.
func (r *MeshInstanceReconciler) keepFormer(ctx context.Context, mi *meshv1alpha1.MeshInstance, now time.Time, b *bundle) error {
	written, err := r.readWritten(ctx, mi)
	if err != nil {
		return err
	}
	// Almost always the bundle is the issuer's as it was: no leaf is read.
	if !slices.ContainsFunc(written, func(w *x509.Certificate) bool {
		return !slices.ContainsFunc(b.certs, func(c *x509.Certificate) bool { return c.Equal(w) })
	}) {
		return nil
	}
	leaves, err := r.readLeaves(ctx, mi)
	if err != nil {
		return err
	}
	b.retiring = retire(b.certs, written, leaves, retiringSince(mi.Status), now, leafLifetime(mi))
	return nil
}

// leafLifetime is the longest a leaf of the mesh lives: the approver signs
// none for longer than spec.certificates.duration.
func leafLifetime(mi *meshv1alpha1.MeshInstance) time.Duration {
	if d, err := time.ParseDuration(mi.Spec.Certificates.Duration); err == nil && d > 0 {
		return d
	}
	return 24 * time.Hour
}
