package controllers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// The ingress gateway's certificate (spec.certificates.ingressGateway): a
// client certificate the mesh's issuer signs for an ingress controller
// outside the mesh, which presents it to the https backends of
// IngressBackends. The approver signs it only as this Certificate makes it.

// roleLabel tells the mesh's Certificates of a role apart: the ingress
// gateway's, which the mesh deletes when its spec no longer asks for it.
const (
	roleLabel          = "mesh.openservicemesh.io/role"
	roleIngressGateway = "ingress-gateway"
)

// ingressCertificateName is the name of the mesh's ingress gateway
// Certificate, in the namespace of its Secret.
func ingressCertificateName(mi *meshv1alpha1.MeshInstance) string {
	return "osm-" + mi.Name + "-ingress-gateway"
}

// ingressUsages are the key usages of the ingress gateway's certificate:
// a client's, never a server's, so that it cannot serve as a backend.
var ingressUsages = []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageClientAuth}

// ingressLifetime is the lifetime of the ingress gateway's certificate: its
// validityDuration, else the mesh's duration.
func ingressLifetime(mi *meshv1alpha1.MeshInstance) (*metav1.Duration, error) {
	ig := mi.Spec.Certificates.IngressGateway
	if ig == nil || ig.ValidityDuration == "" {
		d, _, err := lifetimeOf(mi)
		return d, err
	}
	d, err := time.ParseDuration(ig.ValidityDuration)
	if err != nil || d <= 0 {
		return nil, fmt.Errorf("spec.certificates.ingressGateway.validityDuration: %q is no positive duration", ig.ValidityDuration)
	}
	return &metav1.Duration{Duration: d}, nil
}

// ingressCertificate is the spec of the mesh's ingress gateway Certificate.
func ingressCertificate(mi *meshv1alpha1.MeshInstance) (cmapi.CertificateSpec, error) {
	ig := mi.Spec.Certificates.IngressGateway
	d, err := ingressLifetime(mi)
	if err != nil {
		return cmapi.CertificateSpec{}, err
	}
	labels := MeshObjectLabels(mi.Name)
	labels[roleLabel] = roleIngressGateway
	return cmapi.CertificateSpec{
		SecretName: ig.Secret.Name,
		DNSNames:   slices.Sorted(slices.Values(ig.SubjectAltNames)),
		Usages:     ingressUsages,
		Duration:   d,
		PrivateKey: privateKey(mi),
		IssuerRef:  leafIssuer(mi),
		SecretTemplate: &cmapi.CertificateSecretTemplate{
			Labels: labels,
		},
	}, nil
}

// reconcileIngressCertificate writes the ingress gateway Certificate the
// mesh's spec asks for, deletes those it no longer does (another namespace,
// or none) with their Secrets, and returns the one written, nil when none
// is asked for. specErr says why the spec's cannot be made.
func (r *MeshInstanceReconciler) reconcileIngressCertificate(ctx context.Context, mi *meshv1alpha1.MeshInstance) (cert *cmapi.Certificate, specErr, err error) {
	ig := mi.Spec.Certificates.IngressGateway
	if !mi.DeletionTimestamp.IsZero() {
		ig = nil
	}
	if err := r.deleteIngressCertificates(ctx, mi, ig); err != nil {
		return nil, nil, err
	}
	if ig == nil {
		return nil, nil, nil
	}
	spec, specErr := ingressCertificate(mi)
	if specErr != nil {
		return nil, specErr, nil
	}
	// cert-manager would write over whatever the Secret holds.
	if why, err := r.secretInUse(ctx, mi, ig.Secret); err != nil || why != "" {
		return nil, errSecretInUse(why), err
	}
	cert = &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: ig.Secret.Namespace, Name: ingressCertificateName(mi)}}
	_, err = controllerutil.CreateOrPatch(ctx, r.Client, cert, func() error {
		cert.Labels = spec.SecretTemplate.Labels
		cert.Spec = spec
		return controllerutil.SetControllerReference(mi, cert, r.Scheme())
	})
	if err != nil {
		return nil, nil, failedWrite(fmt.Errorf("ensuring the ingress gateway Certificate %s/%s: %w", cert.Namespace, cert.Name, err))
	}
	return cert, nil, nil
}

// deleteIngressCertificates deletes the mesh's ingress gateway
// Certificates other than the one ig asks for, and their Secrets:
// cert-manager leaves a Secret when its Certificate goes, and a client
// certificate of the mesh must not outlive the setting that made it.
func (r *MeshInstanceReconciler) deleteIngressCertificates(ctx context.Context, mi *meshv1alpha1.MeshInstance, ig *meshv1alpha1.IngressGatewayCertificate) error {
	var certs cmapi.CertificateList
	if err := r.List(ctx, &certs, client.MatchingLabels{meshLabel: mi.Name, roleLabel: roleIngressGateway}); err != nil {
		return fmt.Errorf("listing the ingress gateway Certificates: %w", err)
	}
	for i := range certs.Items {
		c := &certs.Items[i]
		if !metav1.IsControlledBy(c, mi) {
			continue // not the operator's: the approver denies it
		}
		if ig != nil && c.Namespace == ig.Secret.Namespace && c.Name == ingressCertificateName(mi) && c.Spec.SecretName == ig.Secret.Name {
			continue
		}
		if err := r.Delete(ctx, c); client.IgnoreNotFound(err) != nil {
			return failedWrite(fmt.Errorf("deleting the ingress gateway Certificate %s/%s: %w", c.Namespace, c.Name, err))
		}
		// Only a Secret this Certificate wrote (the cache holds the
		// operator's alone), and only that one.
		s := &corev1.Secret{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: c.Spec.SecretName}, s); apierrors.IsNotFound(err) {
			continue
		} else if err != nil {
			return fmt.Errorf("reading the ingress gateway Secret %s/%s: %w", c.Namespace, c.Spec.SecretName, err)
		}
		if s.Annotations[cmapi.CertificateNameKey] != c.Name {
			continue
		}
		if err := r.Delete(ctx, s, client.Preconditions{UID: &s.UID}); client.IgnoreNotFound(err) != nil {
			return failedWrite(fmt.Errorf("deleting the ingress gateway Secret %s/%s: %w", s.Namespace, s.Name, err))
		}
	}
	return nil
}

// ingressCertificateReady is IngressCertificateReady of the ingress
// gateway Certificate cert, or of specErr.
func ingressCertificateReady(cert *cmapi.Certificate, specErr error) metav1.Condition {
	if specErr != nil {
		return condition(meshv1alpha1.ConditionIngressCertificateReady, metav1.ConditionFalse, meshv1alpha1.ReasonInvalidSpec, specErr.Error())
	}
	if ok, msg := certificateReady(cert); !ok {
		return condition(meshv1alpha1.ConditionIngressCertificateReady, metav1.ConditionFalse, meshv1alpha1.ReasonCertificatePending,
			fmt.Sprintf("the ingress gateway certificate %s/%s: %s", cert.Namespace, cert.Spec.SecretName, msg))
	}
	return condition(meshv1alpha1.ConditionIngressCertificateReady, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded,
		fmt.Sprintf("The ingress gateway certificate for %v is in Secret %s/%s", cert.Spec.DNSNames, cert.Namespace, cert.Spec.SecretName))
}

// ingressNames are the DNS names of the mesh's ingress gateway
// certificate; none when its spec asks for none.
func ingressNames(mi *meshv1alpha1.MeshInstance) []string {
	if ig := mi.Spec.Certificates.IngressGateway; ig != nil {
		return ig.SubjectAltNames
	}
	return nil
}

// reviewIngress approves the ingress gateway's certificate as the mesh's
// own Certificate requests it, and nothing else that names its names: the
// request of that Certificate, in its namespace, for exactly the names of
// the spec, as a client only, and no longer than its lifetime. Anyone who
// may create Certificates elsewhere, or another Certificate there, would
// otherwise pass as the ingress gateway to every IngressBackend naming it.
func (r *ApproverReconciler) reviewIngress(ctx context.Context, cr *cmapi.CertificateRequest, csr request, mi *meshv1alpha1.MeshInstance, denied func(string, ...any) (verdict, error)) (verdict, error) {
	ig := mi.Spec.Certificates.IngressGateway
	name := ingressCertificateName(mi)
	if cr.Namespace != ig.Secret.Namespace || cr.Annotations[cmapi.CertificateNameKey] != name {
		return denied("the ingress gateway's names %v are requested only by Certificate %s/%s", ig.SubjectAltNames, ig.Secret.Namespace, name)
	}
	if len(csr.uris)+len(csr.ips)+len(csr.emails) > 0 {
		return denied("the ingress gateway's certificate names DNS names only")
	}
	want := slices.Sorted(slices.Values(ig.SubjectAltNames))
	if got := slices.Sorted(slices.Values(csr.dnsNames)); !slices.Equal(slices.Compact(got), slices.Compact(want)) {
		return denied("the ingress gateway's certificate names exactly %v, not %v", want, got)
	}
	if why := csr.plainLeaf(cr, ingressUsages); why != "" {
		return denied("%s", why)
	}
	// No usages would leave it to the signer: a certificate without
	// extended key usages serves any purpose, a server's too.
	if csr.serverAuth || !slices.Contains(cr.Spec.Usages, cmapi.UsageClientAuth) {
		return denied("the ingress gateway's certificate is a client's: usages %v", ingressUsages)
	}
	cert := &cmapi.Certificate{}
	if err := r.Reader.Get(ctx, client.ObjectKey{Namespace: cr.Namespace, Name: name}, cert); apierrors.IsNotFound(err) {
		return denied("Certificate %s/%s does not exist", cr.Namespace, name)
	} else if err != nil {
		return verdict{}, fmt.Errorf("reading Certificate %s/%s: %w", cr.Namespace, name, err)
	}
	if !metav1.IsControlledBy(cert, mi) || cert.Spec.SecretName != ig.Secret.Name {
		return denied("Certificate %s/%s is not the mesh's ingress gateway certificate (into Secret %s)", cr.Namespace, name, ig.Secret.Name)
	}
	limit, err := ingressLifetime(mi)
	if err != nil {
		return denied("%v", err)
	}
	return verdict{decision: approve, limit: limit, message: fmt.Sprintf(
		"Approved by mesh %s: the ingress gateway's client certificate for %v", mi.Name, want)}, nil
}

// secretInUse says why the Secret ref names holds something else than the
// mesh's ingress gateway certificate, or "" when it is that, or none. It
// reads past the cache, which holds only the Secrets the operator made.
func (r *MeshInstanceReconciler) secretInUse(ctx context.Context, mi *meshv1alpha1.MeshInstance, ref meshv1alpha1.SecretReference) (string, error) {
	reader := cmp.Or[client.Reader](r.APIReader, r.Client)
	var list corev1.SecretList
	if err := reader.List(ctx, &list, client.InNamespace(ref.Namespace), client.MatchingFields{"metadata.name": ref.Name}); err != nil {
		return "", fmt.Errorf("reading Secret %s/%s: %w", ref.Namespace, ref.Name, err)
	}
	for _, s := range list.Items {
		if s.Name != ref.Name {
			continue
		}
		if owner := s.Annotations[cmapi.CertificateNameKey]; owner != ingressCertificateName(mi) {
			return fmt.Sprintf("Secret %s/%s exists and is not the ingress gateway certificate's (its cert-manager Certificate: %q): "+
				"name another in spec.certificates.ingressGateway.secret, or delete it", ref.Namespace, ref.Name, owner), nil
		}
	}
	return "", nil
}

// errSecretInUse is the spec error of a Secret in use, nil for "".
func errSecretInUse(why string) error {
	if why == "" {
		return nil
	}
	return errors.New(why)
}
