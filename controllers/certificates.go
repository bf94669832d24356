package controllers

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// Labels on everything the operator creates.
const (
	managedByLabel = "app.kubernetes.io/managed-by"
	managedBy      = "osm-operator"
	meshLabel      = "mesh.openservicemesh.io/mesh"
)

// meshIssuer is the cert-manager issuer that signs a mesh's certificates:
// spec.certificates.issuerRef, or the CA ClusterIssuer the operator
// bootstraps.
func meshIssuer(mi *meshv1alpha1.MeshInstance) cmmeta.IssuerReference {
	if ref := mi.Spec.Certificates.IssuerRef; ref != nil {
		return cmmeta.IssuerReference{Name: ref.Name, Kind: ref.Kind, Group: ref.Group}
	}
	return cmmeta.IssuerReference{Name: caIssuerName(mi), Kind: cmapi.ClusterIssuerKind, Group: "cert-manager.io"}
}

func caIssuerName(mi *meshv1alpha1.MeshInstance) string   { return "osm-" + mi.Name + "-ca" }
func selfSignedName(mi *meshv1alpha1.MeshInstance) string { return "osm-" + mi.Name + "-selfsigned" }
func rootCAName(mi *meshv1alpha1.MeshInstance) string     { return "osm-" + mi.Name + "-root-ca" }

// identityCertificate is the cert-manager Certificate of a workload identity:
// its SPIFFE ID as the only SAN, issued into the Secret the xDS server reads.
func identityCertificate(mi *meshv1alpha1.MeshInstance, id mesh.Identity) (*cmapi.Certificate, error) {
	spiffe, err := url.Parse(id.SPIFFE(mi.Spec.TrustDomain))
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", id, err)
	}
	duration, err := time.ParseDuration(mi.Spec.Certificates.Duration)
	if err != nil {
		return nil, fmt.Errorf("spec.certificates.duration: %w", err)
	}
	renew, err := time.ParseDuration(mi.Spec.Certificates.RenewBefore)
	if err != nil {
		return nil, fmt.Errorf("spec.certificates.renewBefore: %w", err)
	}
	name := meshv1alpha1.IdentitySecretName(id.ServiceAccount)
	return &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: id.Namespace,
			Labels: map[string]string{managedByLabel: managedBy, meshLabel: mi.Name},
		},
		Spec: cmapi.CertificateSpec{
			SecretName:  name,
			URIs:        []string{spiffe.String()},
			Duration:    &metav1.Duration{Duration: duration},
			RenewBefore: &metav1.Duration{Duration: renew},
			PrivateKey:  privateKey(mi),
			Usages:      []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageKeyEncipherment, cmapi.UsageServerAuth, cmapi.UsageClientAuth},
			IssuerRef:   meshIssuer(mi),
			SecretTemplate: &cmapi.CertificateSecretTemplate{
				Labels: map[string]string{managedByLabel: managedBy, meshLabel: mi.Name},
			},
		},
	}, nil
}

func privateKey(mi *meshv1alpha1.MeshInstance) *cmapi.CertificatePrivateKey {
	pk := mi.Spec.Certificates.PrivateKey
	out := &cmapi.CertificatePrivateKey{RotationPolicy: cmapi.RotationPolicyAlways, Size: int(pk.Size)}
	switch pk.Algorithm {
	case meshv1alpha1.RSAKeyAlgorithm:
		out.Algorithm = cmapi.RSAKeyAlgorithm
	case meshv1alpha1.Ed25519KeyAlgorithm:
		out.Algorithm = cmapi.Ed25519KeyAlgorithm
		out.Size = 0
	default:
		out.Algorithm = cmapi.ECDSAKeyAlgorithm
	}
	return out
}

// certificateReady says whether cert-manager reports c Ready, and why not.
func certificateReady(c *cmapi.Certificate) (bool, string) {
	for _, cond := range c.Status.Conditions {
		if cond.Type == cmapi.CertificateConditionReady {
			return cond.Status == cmmeta.ConditionTrue, cond.Message
		}
	}
	return false, "not issued yet"
}

// releaseCertificates lets go of the Certificates owner owns in its
// namespace. An identity Certificate can serve a MeshMember's pods and a
// MeshVM of the same service account at once: while another owner remains,
// only owner's reference goes. The last owner deletes the Certificate and its
// Secret, which cert-manager keeps when a Certificate goes; the Certificate
// goes first, or cert-manager would issue the Secret again.
func releaseCertificates(ctx context.Context, c client.Client, owner client.Object) error {
	var certs cmapi.CertificateList
	if err := c.List(ctx, &certs, client.InNamespace(owner.GetNamespace()), client.MatchingLabels{managedByLabel: managedBy}); err != nil {
		return fmt.Errorf("listing Certificates: %w", err)
	}
	for i := range certs.Items {
		cert := &certs.Items[i]
		if !isOwnedBy(cert, owner) {
			continue
		}
		others := slices.DeleteFunc(slices.Clone(cert.OwnerReferences), func(ref metav1.OwnerReference) bool { return ref.UID == owner.GetUID() })
		if len(others) > 0 {
			before := cert.DeepCopy()
			cert.OwnerReferences = others
			if err := c.Patch(ctx, cert, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
				return fmt.Errorf("releasing Certificate %s to its other owners: %w", cert.Name, err)
			}
			continue
		}
		if err := c.Delete(ctx, cert); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting Certificate %s: %w", cert.Name, err)
		}
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: cert.Namespace, Name: cert.Spec.SecretName}}
		if err := c.Delete(ctx, s); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting Secret %s of Certificate %s: %w", s.Name, cert.Name, err)
		}
	}
	return nil
}

// isOwnedBy says whether owner is among obj's owners, controller or not.
func isOwnedBy(obj, owner metav1.Object) bool {
	for _, ref := range obj.GetOwnerReferences() {
		if ref.UID == owner.GetUID() {
			return true
		}
	}
	return false
}
