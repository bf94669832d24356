package controllers

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/webhooks/inject"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// Labels on everything the operator creates.
const (
	managedByLabel = "app.kubernetes.io/managed-by"
	managedBy      = "osm-operator"
	meshLabel      = "mesh.openservicemesh.io/mesh"
)

// MeshObjectLabels are the labels of what the operator creates for a mesh,
// its certificates and their Secrets among them. The operator's informer
// cache holds only the Secrets that carry them (CacheOptions).
func MeshObjectLabels(mesh string) map[string]string {
	return map[string]string{managedByLabel: managedBy, meshLabel: mesh}
}

// meshIssuer is the cert-manager issuer that signs a mesh's certificates:
// spec.certificates.issuerRef, or the CA ClusterIssuer the operator
// bootstraps.
func meshIssuer(mi *meshv1alpha1.MeshInstance) cmmeta.IssuerReference {
	if ref := mi.Spec.Certificates.IssuerRef; ref != nil {
		return cmmeta.IssuerReference{Name: ref.Name, Kind: ref.Kind, Group: ref.Group}
	}
	return cmmeta.IssuerReference{Name: caIssuerName(mi), Kind: cmapi.ClusterIssuerKind, Group: "cert-manager.io"}
}

func selfSignedName(mi *meshv1alpha1.MeshInstance) string { return "osm-" + mi.Name + "-selfsigned" }

// The bootstrapped root comes in generations: a new one is a new root
// Certificate and CA ClusterIssuer, which the mesh rotates to through the
// phases of a rotation (trustphases.go), the first without a suffix.

// rootGeneration is the generation of the bootstrapped root the mesh uses
// or moves to.
func rootGeneration(mi *meshv1alpha1.MeshInstance) int32 {
	return max(mi.Spec.Certificates.RootGeneration, mi.Status.RootGeneration)
}

func generationSuffix(g int32) string {
	if g == 0 {
		return ""
	}
	return fmt.Sprintf("-g%d", g)
}

// caIssuerName is the CA ClusterIssuer of the mesh's bootstrapped root;
// caIssuerNameOf that of generation g.
func caIssuerName(mi *meshv1alpha1.MeshInstance) string {
	return caIssuerNameOf(mi, rootGeneration(mi))
}

func caIssuerNameOf(mi *meshv1alpha1.MeshInstance, g int32) string {
	return "osm-" + mi.Name + "-ca" + generationSuffix(g)
}

// rootCAName is the root CA Certificate and Secret of the mesh's
// bootstrapped root; rootCANameOf those of generation g.
func rootCAName(mi *meshv1alpha1.MeshInstance) string { return rootCANameOf(mi, rootGeneration(mi)) }

func rootCANameOf(mi *meshv1alpha1.MeshInstance, g int32) string {
	return "osm-" + mi.Name + "-root-ca" + generationSuffix(g)
}

// bootstrappedGeneration says whether ref is a CA ClusterIssuer the mesh
// bootstrapped, and of which generation.
func bootstrappedGeneration(mi *meshv1alpha1.MeshInstance, ref cmmeta.IssuerReference) (int32, bool) {
	base := caIssuerNameOf(mi, 0)
	if !sameIssuer(ref, cmmeta.IssuerReference{Name: ref.Name, Kind: cmapi.ClusterIssuerKind}) || !strings.HasPrefix(ref.Name, base) {
		return 0, false
	}
	rest := strings.TrimPrefix(ref.Name, base)
	if rest == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(strings.TrimPrefix(rest, "-g"), 10, 32)
	if !strings.HasPrefix(rest, "-g") || err != nil || n <= 0 || rest != generationSuffix(int32(n)) {
		return 0, false
	}
	return int32(n), true
}

// servingCertificateName is the mesh's xDS serving Certificate, in the
// operator's namespace; servingSecretName its Secret.
func servingCertificateName(mi *meshv1alpha1.MeshInstance) string { return "osm-" + mi.Name + "-xds" }

func servingSecretName(mi *meshv1alpha1.MeshInstance) string { return "osm-" + mi.Name + "-xds-tls" }

// identityCertificate is the cert-manager Certificate of a workload identity:
// its SPIFFE ID as the only SAN, issued into the Secret the xDS server reads.
func identityCertificate(mi *meshv1alpha1.MeshInstance, id mesh.Identity) (*cmapi.Certificate, error) {
	spiffe, err := url.Parse(id.SPIFFE(mi.EffectiveTrustDomain()))
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", id, err)
	}
	duration, renew, err := lifetimeOf(mi)
	if err != nil {
		return nil, err
	}
	name := meshv1alpha1.IdentitySecretName(id.ServiceAccount)
	return &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: id.Namespace,
			Labels: MeshObjectLabels(mi.Name),
		},
		Spec: cmapi.CertificateSpec{
			SecretName:  name,
			URIs:        []string{spiffe.String()},
			Duration:    duration,
			RenewBefore: renew,
			PrivateKey:  privateKey(mi),
			Usages:      []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageKeyEncipherment, cmapi.UsageServerAuth, cmapi.UsageClientAuth},
			IssuerRef:   leafIssuer(mi),
			SecretTemplate: &cmapi.CertificateSecretTemplate{
				Labels:      MeshObjectLabels(mi.Name),
				Annotations: map[string]string{meshv1alpha1.ServiceAccountAnnotation: id.ServiceAccount},
			},
		},
	}, nil
}

// lifetimeOf is how long the mesh's leaf certificates live, and how long
// before their end cert-manager renews them: the approver refuses longer.
func lifetimeOf(mi *meshv1alpha1.MeshInstance) (duration, renewBefore *metav1.Duration, err error) {
	d, err := time.ParseDuration(mi.Spec.Certificates.Duration)
	if err != nil {
		return nil, nil, fmt.Errorf("spec.certificates.duration: %w", err)
	}
	r, err := time.ParseDuration(mi.Spec.Certificates.RenewBefore)
	if err != nil {
		return nil, nil, fmt.Errorf("spec.certificates.renewBefore: %w", err)
	}
	return &metav1.Duration{Duration: d}, &metav1.Duration{Duration: r}, nil
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

// identities is what ensureIdentities found and did.
type identities struct {
	// accounts is the number of service accounts of meshed pods; ready how
	// many of their Certificates are issued; waiting says why the others
	// are not, and failed which could not be written and why.
	accounts, ready int
	waiting         []string
	failed          []identityFailure
	// injected counts the pods with a sidecar, by their spec.
	injected int
	// invalid explains a mesh spec that cannot make Certificates.
	invalid string
}

// identityFailure is a service account whose Certificate could not be
// created or updated.
type identityFailure struct {
	serviceAccount string
	err            error
}

// failedAccounts are the service accounts whose identity failed, sorted.
func (ids identities) failedAccounts() []string {
	out := make([]string, 0, len(ids.failed))
	for _, f := range ids.failed {
		out = append(out, f.serviceAccount)
	}
	return out
}

// meshedAccounts are the service accounts, sorted and once each, of the
// pods that have a proxy by their spec (inject.Injected, the one test of
// it): only their proxies present an identity. It returns how many such
// pods there are.
func meshedAccounts(pods []corev1.Pod) (accounts []string, injected int) {
	for i := range pods {
		p := &pods[i]
		if !inject.Injected(p) {
			continue
		}
		injected++
		accounts = append(accounts, mesh.ServiceAccountOf(p.Spec.ServiceAccountName))
	}
	slices.Sort(accounts)
	return slices.Compact(accounts), injected
}

// ensureIdentities makes sure each service account that meshed pods of
// namespace run as has its identity Certificate, owned by owner: as its controller
// when asked and no one else controls it, otherwise as one more owner. Each
// identity is written on its own: one the API server refuses is reported in
// failed and keeps no other from being issued.
func ensureIdentities(ctx context.Context, c client.Client, mi *meshv1alpha1.MeshInstance, namespace string, pods []corev1.Pod, owner client.Object, controller bool) identities {
	var out identities
	accounts, injected := meshedAccounts(pods)
	out.accounts, out.injected = len(accounts), injected
	for _, sa := range accounts {
		want, err := identityCertificate(mi, mesh.Identity{Namespace: namespace, ServiceAccount: sa})
		if err != nil {
			out.invalid = err.Error()
			return out
		}
		cert, err := writeIdentity(ctx, c, mi, want, owner, controller)
		if err != nil {
			logf.FromContext(ctx).Error(err, "Failed to write an identity Certificate", "namespace", namespace, "serviceAccount", sa)
			out.failed = append(out.failed, identityFailure{serviceAccount: sa, err: err})
			continue
		}
		if ok, msg := certificateReady(cert); ok {
			out.ready++
		} else {
			out.waiting = append(out.waiting, sa+": "+msg)
		}
	}
	return out
}

// writeIdentity creates or updates the identity Certificate want, owned
// by owner, and returns it as the API server has it.
func writeIdentity(ctx context.Context, c client.Client, mi *meshv1alpha1.MeshInstance, want *cmapi.Certificate, owner client.Object, controller bool) (*cmapi.Certificate, error) {
	cert := &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Name: want.Name, Namespace: want.Namespace}}
	if _, err := controllerutil.CreateOrPatch(ctx, c, cert, func() error {
		issuer := want.Spec.IssuerRef
		if !cert.CreationTimestamp.IsZero() {
			// A rotation moves identities at its own pace.
			issuer = identityIssuer(mi, cert.Spec.IssuerRef)
		}
		cert.Labels, cert.Spec = want.Labels, want.Spec
		cert.Spec.IssuerRef = issuer
		// Another MeshMember of the namespace may control it already.
		if ref := metav1.GetControllerOf(cert); controller && (ref == nil || ref.UID == owner.GetUID()) {
			return controllerutil.SetControllerReference(owner, cert, c.Scheme())
		}
		return controllerutil.SetOwnerReference(owner, cert, c.Scheme())
	}); err != nil {
		return nil, fmt.Errorf("writing Certificate %s/%s: %w", want.Namespace, want.Name, err)
	}
	return cert, nil
}

// recordFailedIdentities records a warning Event on obj, the MeshMember or
// Namespace the identities are for, for each one that failed.
func recordFailedIdentities(rec events.EventRecorder, obj runtime.Object, failed []identityFailure) {
	if rec == nil {
		return
	}
	for _, f := range failed {
		note := fmt.Sprintf("The identity Certificate of service account %s could not be written: %v", f.serviceAccount, f.err)
		rec.Eventf(obj, nil, corev1.EventTypeWarning, meshv1alpha1.ReasonIdentityFailed, "IssueIdentity", "%s", truncate(note, maxEventNote))
	}
}

// releaseCertificates lets go of the Certificates owner owns in namespace. An identity Certificate can serve a MeshMember's pods and a
// MeshVM of the same service account at once: while another owner remains,
// only owner's reference goes. The last owner deletes the Certificate and its
// Secret, which cert-manager keeps when a Certificate goes; the Certificate
// goes first, or cert-manager would issue the Secret again.
func releaseCertificates(ctx context.Context, c client.Client, owner client.Object, namespace string) error {
	var certs cmapi.CertificateList
	if err := c.List(ctx, &certs, client.InNamespace(namespace), client.MatchingLabels{managedByLabel: managedBy}); err != nil {
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
