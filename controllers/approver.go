package controllers

import (
	"bytes"
	"cmp"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/san"
	"github.com/open-service-mesh/osm-operator/xds/bootstrap"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// The operator approves the CertificateRequests for its meshes' issuers
// itself, and only its own: cert-manager's default approver approves every
// request, so anyone who may create a Certificate in any namespace could
// have the mesh sign any mesh identity.
//
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificaterequests,verbs=list;watch
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificaterequests/status,verbs=update
// +kubebuilder:rbac:groups="",resources=serviceaccounts;namespaces,verbs=get
// +kubebuilder:rbac:groups=cert-manager.io,resources=signers,verbs=approve,resourceNames="clusterissuers.cert-manager.io/*";"issuers.cert-manager.io/*"

// ApproverReason is the reason of the Approved and Denied conditions the
// operator sets on CertificateRequests; cert-manager's convention is the
// approver's name.
const ApproverReason = "mesh.openservicemesh.io"

// ApproverReconciler approves or denies the CertificateRequests for the
// issuers of the meshes.
type ApproverReconciler struct {
	client.Client
	// Reader reads what a decision rests on (service accounts, namespaces,
	// MeshVMs) from the API server, not the informer cache: a request for a
	// service account created a moment ago must not be denied because the
	// cache has not seen it yet.
	Reader   client.Reader
	Recorder events.EventRecorder
	// Namespace is the operator's, where the xDS serving certificates are
	// requested; ClusterResourceNamespace cert-manager's, where the
	// bootstrapped root CA is.
	Namespace, ClusterResourceNamespace string
	// ClusterDomain is the cluster's DNS domain, of the server names the
	// operator's xDS Service answers to; empty means
	// mesh.DefaultClusterDomain.
	ClusterDomain string
}

// Reconcile decides one CertificateRequest.
func (r *ApproverReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	cr := &cmapi.CertificateRequest{}
	if err := r.Get(ctx, req.NamespacedName, cr); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if decided(cr) {
		return ctrl.Result{}, nil
	}
	var meshes meshv1alpha1.MeshInstanceList
	if err := r.List(ctx, &meshes); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing MeshInstances: %w", err)
	}
	v, err := r.review(ctx, cr, meshes.Items)
	if err != nil {
		return ctrl.Result{}, err
	}
	if v.decision == ignore {
		return ctrl.Result{}, nil
	}
	cond, status, event := cmapi.CertificateRequestConditionApproved, cmmeta.ConditionTrue, corev1.EventTypeNormal
	if v.decision == deny {
		cond, status, event = cmapi.CertificateRequestConditionDenied, cmmeta.ConditionTrue, corev1.EventTypeWarning
	}
	cr.Status.Conditions = append(cr.Status.Conditions, cmapi.CertificateRequestCondition{
		Type: cond, Status: status, Reason: ApproverReason, Message: v.message, LastTransitionTime: ptrNow(),
	})
	if err := r.Status().Update(ctx, cr); err != nil {
		if apierrors.IsConflict(err) {
			return ctrl.Result{Requeue: true}, nil
		}
		return ctrl.Result{}, fmt.Errorf("%s CertificateRequest %s: %w", cond, req.NamespacedName, err)
	}
	log.FromContext(ctx).Info("Decided CertificateRequest for a mesh issuer", "request", req.NamespacedName.String(), "decision", string(cond), "mesh", v.mesh, "reason", v.message)
	if r.Recorder != nil {
		r.Recorder.Eventf(cr, nil, event, string(cond), "Decide", "%s", v.message)
	}
	return ctrl.Result{}, nil
}

func ptrNow() *metav1.Time { t := metav1.Now(); return &t }

// decided tells whether a request needs no decision: approved, denied, or
// already done, as cert-manager's own approver tells it.
func decided(cr *cmapi.CertificateRequest) bool {
	for _, c := range cr.Status.Conditions {
		switch {
		case c.Type == cmapi.CertificateRequestConditionApproved, c.Type == cmapi.CertificateRequestConditionDenied:
			return true
		case c.Type == cmapi.CertificateRequestConditionReady &&
			(c.Reason == cmapi.CertificateRequestReasonIssued || c.Reason == cmapi.CertificateRequestReasonFailed):
			return true
		}
	}
	return false
}

type decision int

const (
	ignore decision = iota
	approve
	deny
)

// verdict is the operator's decision on a request, and why.
type verdict struct {
	decision decision
	mesh     string
	message  string
	// limit is the longest lifetime approved, when it is not the mesh's
	// spec.certificates.duration.
	limit *metav1.Duration
}

// issuerRole is what an issuer is to a mesh.
type issuerRole int

const (
	notTheMesh issuerRole = iota
	// ownCA is the CA ClusterIssuer the operator bootstrapped: it signs for
	// the mesh alone.
	ownCA
	// ownRoot is the self-signed ClusterIssuer of the bootstrapped root.
	ownRoot
	// sharedIssuer is an issuer the user named (spec.certificates.issuerRef),
	// which may sign for others too: requests that are not the mesh's are
	// left to the cluster's other approvers.
	sharedIssuer
)

func roleOf(mi *meshv1alpha1.MeshInstance, ref cmmeta.IssuerReference) issuerRole {
	same := sameIssuer
	// The mesh's issuers: during a rotation, the one it leaves and the one
	// it moves to.
	accepted := acceptedIssuers(mi)
	_, bootstrapped := ownRoots(mi)
	switch {
	case slices.ContainsFunc(accepted, func(a cmmeta.IssuerReference) bool { return same(a, ref) }) && isBootstrapped(mi, ref):
		return ownCA
	case slices.ContainsFunc(accepted, func(a cmmeta.IssuerReference) bool { return same(a, ref) }):
		return sharedIssuer
	case bootstrapped && same(ref, cmmeta.IssuerReference{Name: selfSignedName(mi), Kind: cmapi.ClusterIssuerKind}):
		return ownRoot
	}
	return notTheMesh
}

// review decides a request against every mesh whose issuer it names: it is
// approved when it is one of a mesh's own certificates, denied when it asks
// a mesh's own issuer for anything else or asks any mesh issuer for a mesh
// identity or the xDS server's name it may not have, and otherwise left
// alone.
func (r *ApproverReconciler) review(ctx context.Context, cr *cmapi.CertificateRequest, meshes []meshv1alpha1.MeshInstance) (verdict, error) {
	out := verdict{}
	for i := range meshes {
		mi := &meshes[i]
		role := roleOf(mi, cr.Spec.IssuerRef)
		if role == notTheMesh {
			continue
		}
		v, err := r.reviewFor(ctx, cr, mi, role)
		if err != nil {
			return verdict{}, err
		}
		if why := lifetime(cr, mi, v.limit); v.decision == approve && role != ownRoot && why != "" {
			v = verdict{decision: deny, message: fmt.Sprintf("Denied by mesh %s: %s", mi.Name, why)}
		}
		v.mesh = mi.Name
		switch {
		case v.decision == approve:
			return v, nil
		case v.decision == deny && out.decision != deny:
			out = v
		}
	}
	return out, nil
}

func (r *ApproverReconciler) reviewFor(ctx context.Context, cr *cmapi.CertificateRequest, mi *meshv1alpha1.MeshInstance, role issuerRole) (verdict, error) {
	denied := func(format string, args ...any) (verdict, error) {
		return verdict{decision: deny, message: fmt.Sprintf("Denied by mesh %s: ", mi.Name) + fmt.Sprintf(format, args...)}, nil
	}
	if role == ownRoot {
		roots, _ := ownRoots(mi)
		if cr.Namespace == r.ClusterResourceNamespace && cr.Spec.IsCA && slices.Contains(roots, cr.Annotations[cmapi.CertificateNameKey]) {
			return verdict{decision: approve, message: fmt.Sprintf("Approved by mesh %s: its root CA", mi.Name)}, nil
		}
		return denied("issuer %s signs only the mesh's root CAs (%s/%v)", selfSignedName(mi), r.ClusterResourceNamespace, roots)
	}
	csr, err := parseCSR(cr.Spec.Request)
	if err != nil {
		return denied("%v", err)
	}
	td := mi.EffectiveTrustDomain()
	servingNames := bootstrap.XDSServingNames(mi.Name, r.Namespace)
	// The shared xDS Service's names are no mesh's any more, and still the
	// server's: proxies injected before dial them.
	serverNames := append(slices.Clone(servingNames),
		fmt.Sprintf("%s.%s.svc", bootstrap.XDSServiceName, r.Namespace),
		fmt.Sprintf("%s.%s.svc.%s", bootstrap.XDSServiceName, r.Namespace, cmp.Or(r.ClusterDomain, mesh.DefaultClusterDomain)),
	)
	// Any SPIFFE URI, however spelled, claims an identity, and any DNS name
	// a TLS client could match to the xDS server's (case, wildcards) claims
	// the server.
	claimsIdentity := slices.ContainsFunc(csr.uris, func(u string) bool { return strings.HasPrefix(strings.ToLower(u), "spiffe:") })
	claimsServer := slices.ContainsFunc(csr.dnsNames, func(n string) bool {
		return slices.ContainsFunc(serverNames, func(s string) bool { return dnsMatches(n, s) })
	})
	// Any DNS name an IngressBackend could match to the ingress gateway's
	// claims the ingress gateway.
	claimsIngress := slices.ContainsFunc(csr.dnsNames, func(n string) bool {
		return slices.ContainsFunc(ingressNames(mi), func(s string) bool { return dnsMatches(n, s) })
	})
	switch {
	case role == sharedIssuer && !claimsIdentity && !claimsServer && !claimsIngress:
		// Not the mesh's: the cluster's other approvers decide.
		return verdict{}, nil
	case claimsIdentity || len(csr.uris) > 0:
		return r.reviewIdentity(ctx, cr, csr, mi, denied)
	case claimsIngress && claimsServer:
		return denied("a certificate names the xDS server or the ingress gateway, not both")
	case claimsIngress:
		return r.reviewIngress(ctx, cr, csr, mi, denied)
	case len(csr.dnsNames) > 0 && cr.Namespace == r.Namespace:
		if why := csr.plainLeaf(cr, serverUsages); why != "" {
			return denied("%s", why)
		}
		if len(csr.ips)+len(csr.emails)+len(csr.uris) > 0 {
			return denied("the xDS serving certificate names DNS names only")
		}
		for _, n := range csr.dnsNames {
			if !slices.Contains(servingNames, n) {
				return denied("DNS name %q is not one of the xDS server's %v", n, servingNames)
			}
		}
		return verdict{decision: approve, message: fmt.Sprintf("Approved by mesh %s: the xDS server's certificate", mi.Name)}, nil
	case claimsServer:
		return denied("the xDS server's names are requested only in the operator's namespace %s", r.Namespace)
	}
	return denied("the mesh's issuer signs only workload identities (one SPIFFE URI of trust domain %s) and the xDS server's certificate", td)
}

// dnsMatches tells whether a certificate's DNS name pattern would match
// host for a TLS client: equal but for case, or a wildcard label standing
// for host's first label.
func dnsMatches(pattern, host string) bool {
	pattern, host = strings.ToLower(strings.TrimSuffix(pattern, ".")), strings.ToLower(host)
	if pattern == host {
		return true
	}
	if rest, ok := strings.CutPrefix(pattern, "*."); ok {
		_, hostRest, found := strings.Cut(host, ".")
		return found && rest == hostRest
	}
	return strings.Contains(pattern, "*")
}

// serverUsages and identityUsages are the key usages the mesh's
// certificates ask for: what identityCertificate and the xDS serving
// Certificate request, and what cert-manager adds by default.
var (
	serverUsages   = []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageKeyEncipherment, cmapi.UsageServerAuth}
	identityUsages = []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageKeyEncipherment, cmapi.UsageServerAuth, cmapi.UsageClientAuth}
)

// reviewIdentity approves a workload identity requested in the namespace it
// names, for a service account that exists there, of a namespace the mesh
// holds (a member, or a MeshVM of the mesh running as it).
func (r *ApproverReconciler) reviewIdentity(ctx context.Context, cr *cmapi.CertificateRequest, csr request, mi *meshv1alpha1.MeshInstance, denied func(string, ...any) (verdict, error)) (verdict, error) {
	td := mi.EffectiveTrustDomain()
	if len(csr.uris) != 1 {
		return denied("a workload identity has exactly one URI SAN, not %d", len(csr.uris))
	}
	if len(csr.dnsNames)+len(csr.ips)+len(csr.emails) > 0 {
		return denied("a workload identity has no DNS, IP or email SANs")
	}
	if why := csr.plainLeaf(cr, identityUsages); why != "" {
		return denied("%s", why)
	}
	uriTD, id, ok := mesh.ParseSPIFFE(csr.uris[0])
	ns, sa := id.Namespace, id.ServiceAccount
	if !ok || uriTD != td {
		return denied("URI SAN %q is not spiffe://%s/ns/<namespace>/sa/<service account>", csr.uris[0], td)
	}
	if ns != cr.Namespace {
		return denied("identity %s is of namespace %s and is requested only there, not in %s", csr.uris[0], ns, cr.Namespace)
	}
	if err := r.Reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: sa}, &corev1.ServiceAccount{}); apierrors.IsNotFound(err) {
		return denied("service account %s/%s does not exist", ns, sa)
	} else if err != nil {
		return verdict{}, fmt.Errorf("reading service account %s/%s: %w", ns, sa, err)
	}
	namespace := &corev1.Namespace{}
	if err := r.Reader.Get(ctx, client.ObjectKey{Name: ns}, namespace); err != nil {
		return verdict{}, fmt.Errorf("reading namespace %s: %w", ns, err)
	}
	if namespace.Labels[meshv1alpha1.MonitorLabel] != mi.Name {
		var vms meshv1alpha1.MeshVMList
		if err := r.Reader.List(ctx, &vms, client.InNamespace(ns)); err != nil {
			return verdict{}, fmt.Errorf("listing MeshVMs of %s: %w", ns, err)
		}
		// The VM's mesh is decided as the model and the xDS server decide it.
		inMesh := false
		for vm := range mesh.Items(vms.Items) {
			if vm.Spec.Mesh != mi.Name || vm.Spec.ServiceAccountName != sa {
				continue
			}
			why, err := mesh.ReadVMMeshConflict(ctx, r.Reader, vm)
			if err != nil {
				return verdict{}, err
			}
			if inMesh = why == ""; inMesh {
				break
			}
		}
		if !inMesh {
			return denied("namespace %s is not in the mesh, and no MeshVM of the mesh runs as %s there", ns, sa)
		}
	}
	return verdict{decision: approve, message: fmt.Sprintf("Approved by mesh %s: workload identity %s", mi.Name, csr.uris[0])}, nil
}

// lifetime says what is wrong with the duration a request asks for, or "":
// a mesh certificate lives at most limit, or else the mesh's
// spec.certificates.duration (cert-manager's CA signer honours any
// duration, past its own CA's expiry).
// A request naming none, or one of 0 or less, leaves the lifetime to the
// issuer: cert-manager's default of 90 days, and for Vault a TTL of "0s"
// is the role's default, however long.
func lifetime(cr *cmapi.CertificateRequest, mi *meshv1alpha1.MeshInstance, limit *metav1.Duration) string {
	if limit == nil {
		var err error
		if limit, _, err = lifetimeOf(mi); err != nil {
			return err.Error()
		}
	}
	switch {
	case cr.Spec.Duration == nil || cr.Spec.Duration.Duration <= 0:
		return fmt.Sprintf("the request names no duration (none, or one of 0 or less), which leaves it to the issuer; the mesh's certificates live at most %s", limit.Duration)
	case cr.Spec.Duration.Duration > limit.Duration:
		return fmt.Sprintf("duration %s is longer than the mesh's %s", cr.Spec.Duration.Duration, limit.Duration)
	}
	return ""
}

// request is what a CSR asks for, read from its DER (package san): the
// names as the signer will copy them.
type request struct {
	uris, dnsNames, emails []string
	ips                    [][]byte
	// otherNames are the GeneralName tags of names of other kinds.
	otherNames []int
	// subject is set when the request names a subject.
	subject bool
	// ca is a basic constraints extension that asks for a CA; extensions
	// are the other extensions' OIDs.
	ca         bool
	extensions []string
	// serverAuth is set when the request's extended key usages hold
	// server authentication.
	serverAuth bool
}

// Extensions a leaf request may carry.
var (
	oidSAN              = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtKeyUsage      = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidServerAuth       = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 1}
	oidClientAuth       = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}
)

func parseCSR(data []byte) (request, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return request{}, errors.New("spec.request is not a PEM certificate request")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return request{}, fmt.Errorf("spec.request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return request{}, fmt.Errorf("spec.request: %w", err)
	}
	names, err := san.Parse(csr.Extensions)
	if err != nil {
		return request{}, fmt.Errorf("spec.request: %w", err)
	}
	// The signer copies the subject as the request holds it; an empty one
	// is the empty sequence.
	out := request{dnsNames: names.DNS, ips: names.IP, uris: names.URI, emails: names.Email, otherNames: names.Other,
		subject: !bytes.Equal(csr.RawSubject, []byte{0x30, 0x00})}
	for _, ext := range csr.Extensions {
		switch {
		case ext.Id.Equal(oidBasicConstraints):
			var bc struct {
				IsCA       bool `asn1:"optional"`
				MaxPathLen int  `asn1:"optional,default:-1"`
			}
			if rest, err := asn1.Unmarshal(ext.Value, &bc); err != nil || len(rest) > 0 || bc.IsCA {
				out.ca = true
			}
		case ext.Id.Equal(oidKeyUsage):
			// digitalSignature (bit 0) and keyEncipherment (bit 2) only.
			var bits asn1.BitString
			if rest, err := asn1.Unmarshal(ext.Value, &bits); err != nil || len(rest) > 0 {
				out.extensions = append(out.extensions, ext.Id.String())
				continue
			}
			for i := range bits.BitLength {
				if bits.At(i) == 1 && i != 0 && i != 2 {
					out.extensions = append(out.extensions, fmt.Sprintf("%s (key usage bit %d)", ext.Id, i))
				}
			}
		case ext.Id.Equal(oidExtKeyUsage):
			var oids []asn1.ObjectIdentifier
			if rest, err := asn1.Unmarshal(ext.Value, &oids); err != nil || len(rest) > 0 {
				out.extensions = append(out.extensions, ext.Id.String())
				continue
			}
			for _, o := range oids {
				out.serverAuth = out.serverAuth || o.Equal(oidServerAuth)
				if !o.Equal(oidServerAuth) && !o.Equal(oidClientAuth) {
					out.extensions = append(out.extensions, fmt.Sprintf("%s (extended key usage %s)", ext.Id, o))
				}
			}
		case ext.Id.Equal(oidSAN):
		default:
			out.extensions = append(out.extensions, ext.Id.String())
		}
	}
	return out, nil
}

// plainLeaf says what makes a request more than a leaf with the given
// usages, or "".
func (c request) plainLeaf(cr *cmapi.CertificateRequest, usages []cmapi.KeyUsage) string {
	switch {
	case cr.Spec.IsCA || c.ca:
		return "the mesh's issuer signs no CA certificates"
	case c.subject:
		return "the certificate has an empty subject"
	case len(c.otherNames) > 0:
		return fmt.Sprintf("the certificate names no subject alternative names of kinds %v (GeneralName tags)", c.otherNames)
	case len(c.extensions) > 0:
		return fmt.Sprintf("the request carries extensions %v", c.extensions)
	}
	for _, u := range cr.Spec.Usages {
		if !slices.Contains(usages, u) {
			return fmt.Sprintf("usage %q is not one of %v", u, usages)
		}
	}
	return ""
}

// approvedByAnother tells whether a request was approved by another
// approver than the operator.
func approvedByAnother(cr *cmapi.CertificateRequest) (string, bool) {
	for _, c := range cr.Status.Conditions {
		if c.Type == cmapi.CertificateRequestConditionApproved && c.Status == cmmeta.ConditionTrue && c.Reason != ApproverReason {
			return c.Reason, true
		}
	}
	return "", false
}

// SetupWithManager registers the approver of the mesh's CertificateRequests.
func (r *ApproverReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := ctrl.NewControllerManagedBy(mgr).
		For(&cmapi.CertificateRequest{}).
		Named("certificaterequest-approver").
		Complete(r); err != nil {
		return fmt.Errorf("setting up the CertificateRequest approver: %w", err)
	}
	return nil
}

func isBootstrapped(mi *meshv1alpha1.MeshInstance, ref cmmeta.IssuerReference) bool {
	_, ok := bootstrappedGeneration(mi, ref)
	return ok
}

// ownRoots are the root CA Certificates the mesh's self-signed issuer may
// sign: those of the bootstrapped generations among its accepted issuers
// (two during a rotation from one to the next), and whether there is any.
func ownRoots(mi *meshv1alpha1.MeshInstance) ([]string, bool) {
	var out []string
	for _, a := range acceptedIssuers(mi) {
		if g, ok := bootstrappedGeneration(mi, a); ok && !slices.Contains(out, rootCANameOf(mi, g)) {
			out = append(out, rootCANameOf(mi, g))
		}
	}
	return out, len(out) > 0
}
