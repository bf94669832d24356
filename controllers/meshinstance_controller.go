package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/bootstrap"
)

// Certificates are read from the cache but for one check past it (the
// namespace controller's); ClusterIssuers go with their MeshInstance.
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificates,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=cert-manager.io,resources=clusterissuers,verbs=list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// MeshInstanceReconciler bootstraps a mesh's certificate authority through
// cert-manager and reports the mesh's state.
type MeshInstanceReconciler struct {
	client.Client
	// Recorder records Events on transitions; nil records none.
	Recorder events.EventRecorder
	// ClusterResourceNamespace is cert-manager's namespace for the Secrets of
	// ClusterIssuers: the bootstrapped root CA lives there.
	ClusterResourceNamespace string
	// Namespace is the operator's own: the xDS serving certificate lives there.
	Namespace string

	policyEvents policyEvents // see meshinstance_policies.go
}

// Reconcile implements reconcile.Reconciler.
func (r *MeshInstanceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	mi := &meshv1alpha1.MeshInstance{}
	if err := r.Get(ctx, req.NamespacedName, mi); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !mi.DeletionTimestamp.IsZero() {
		return r.delete(ctx, mi)
	}
	if !controllerutil.ContainsFinalizer(mi, meshFinalizer) {
		controllerutil.AddFinalizer(mi, meshFinalizer)
		return ctrl.Result{}, r.Update(ctx, mi)
	}
	before := mi.DeepCopy()
	o, err := r.reconcileCA(ctx, mi)
	if err != nil {
		// Its issuers, its serving certificate, its xDS Service, its trust bundle.
		return ctrl.Result{}, reportFailedWrite(ctx, r.Client, r.Recorder, mi, before, err)
	}
	// The bundle's ConfigMap in each namespace of the mesh (trustpublish.go).
	if err := r.publishBundle(ctx, mi); err != nil {
		return ctrl.Result{}, reportFailedWrite(ctx, r.Client, r.Recorder, mi, before, err)
	}
	if err := r.countMembers(ctx, mi); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.checkPolicies(ctx, mi); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.checkIssuance(ctx, mi); err != nil {
		return ctrl.Result{}, err
	}
	caStatus, caReason, caMsg := metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "The mesh certificate authority is ready"
	if !o.ready() {
		caStatus, caReason, caMsg = metav1.ConditionFalse, o.reason, o.message
	}
	setCondition(&mi.Status.Conditions, mi.Generation, meshv1alpha1.ConditionCertificateAuthorityReady, caStatus, caReason, caMsg)
	return reportStatus(ctx, r.Client, r.Recorder, mi, before, o)
}

// foreignApprovalWindow is how long a request that another approver
// approved for the mesh's issuers keeps IdentityIssuanceRestricted False.
const foreignApprovalWindow = 24 * time.Hour

// checkIssuance sets IdentityIssuanceRestricted: False while a recent
// CertificateRequest for the mesh's issuers was approved by another approver
// than the operator, which then decides nothing.
func (r *MeshInstanceReconciler) checkIssuance(ctx context.Context, mi *meshv1alpha1.MeshInstance) error {
	var crs cmapi.CertificateRequestList
	// Read only, and the mesh reconciles often: the cache's objects as they are.
	if err := r.List(ctx, &crs, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing CertificateRequests: %w", err)
	}
	status, reason := metav1.ConditionTrue, meshv1alpha1.ReasonOnlyTheOperatorApproves
	msg := "The operator alone approves the CertificateRequests for the mesh's issuers"
	var newest *cmapi.CertificateRequest
	for i := range crs.Items {
		cr := &crs.Items[i]
		if _, other := approvedByAnother(cr); !other || roleOf(mi, cr.Spec.IssuerRef) == notTheMesh ||
			time.Since(cr.CreationTimestamp.Time) > foreignApprovalWindow {
			continue
		}
		if newest == nil || cr.CreationTimestamp.After(newest.CreationTimestamp.Time) {
			newest = cr
		}
	}
	if newest != nil {
		by, _ := approvedByAnother(newest)
		status, reason = metav1.ConditionFalse, meshv1alpha1.ReasonApprovedByAnother
		msg = fmt.Sprintf("CertificateRequest %s/%s for the mesh's issuer %s was approved by %q, not by the operator: "+
			"anyone who may create a Certificate can obtain any identity of the mesh. Run cert-manager without its default approver "+
			"(controller flag --controllers=*,-certificaterequests-approver; Helm value disableAutoApproval=true)",
			newest.Namespace, newest.Name, newest.Spec.IssuerRef.Name, by)
	}
	setCondition(&mi.Status.Conditions, mi.Generation, meshv1alpha1.ConditionIdentityIssuanceRestricted, status, reason, msg)
	return nil
}

// reconcileCA makes sure the mesh's issuer exists and is ready, and writes
// the mesh's trust bundle for the xDS servers and, summarized, in status.
func (r *MeshInstanceReconciler) reconcileCA(ctx context.Context, mi *meshv1alpha1.MeshInstance) (outcome, error) {
	fromSpec, err := specBundle(mi)
	if err != nil {
		setTrustBundleKnown(mi, metav1.ConditionFalse, meshv1alpha1.ReasonInvalidSpec, err.Error())
		return outcome{reason: meshv1alpha1.ReasonInvalidSpec, stalled: true, message: err.Error()}, nil
	}
	if mi.Spec.Certificates.IssuerRef == nil {
		if err := r.bootstrapCA(ctx, mi); err != nil {
			return outcome{}, failedWrite(err)
		}
	}
	// A kind that cannot sign for the mesh gets no serving Certificate;
	// an issuer not ready yet does, to sign once it is.
	issuer, err := r.checkIssuer(ctx, mi)
	if err != nil || issuer.stalled {
		return issuer, err
	}
	if err := r.ensureServingCertificate(ctx, mi); err != nil {
		return outcome{}, failedWrite(err)
	}
	if !issuer.ready() {
		return issuer, nil
	}
	serving := &cmapi.Certificate{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: servingCertificateName(mi)}, serving); err != nil {
		return outcome{}, fmt.Errorf("reading the xDS serving Certificate: %w", err)
	}
	if ok, msg := certificateReady(serving); !ok {
		return outcome{reason: meshv1alpha1.ReasonCertificatePending, message: "the xDS serving certificate: " + msg}, nil
	}
	b, err := r.readBundle(ctx, mi, fromSpec)
	if err != nil {
		return outcome{}, err
	}
	if !b.known() {
		// What proxies have (the last bundle written) stays: no bundle is
		// made up, and none is taken away while the issuer is read again.
		setTrustBundleKnown(mi, metav1.ConditionFalse, b.reason, b.message)
		if b.reason == meshv1alpha1.ReasonCertificatePending {
			return outcome{reason: b.reason, message: b.message}, nil
		}
		return outcome{reason: meshv1alpha1.ReasonTrustBundleUnknown, message: "the trust bundle is not known: " + b.message}, nil
	}
	if err := r.writeBundle(ctx, mi, b.certs); err != nil {
		return outcome{}, failedWrite(err)
	}
	setTrustBundleKnown(mi, metav1.ConditionTrue, b.reason, b.message)
	mi.Status.TrustBundle = anchors(b.certs)
	return outcome{}, nil
}

func setTrustBundleKnown(mi *meshv1alpha1.MeshInstance, s metav1.ConditionStatus, reason, msg string) {
	setCondition(&mi.Status.Conditions, mi.Generation, meshv1alpha1.ConditionTrustBundleKnown, s, reason, msg)
}

// bootstrapCA creates a SelfSigned ClusterIssuer, a root CA Certificate
// signed by it and a CA ClusterIssuer over that root.
func (r *MeshInstanceReconciler) bootstrapCA(ctx context.Context, mi *meshv1alpha1.MeshInstance) error {
	selfSigned := &cmapi.ClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: selfSignedName(mi)}}
	root := &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Name: rootCAName(mi), Namespace: r.ClusterResourceNamespace}}
	ca := &cmapi.ClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: caIssuerName(mi)}}
	for _, obj := range []struct {
		o      client.Object
		mutate func()
	}{
		{selfSigned, func() { selfSigned.Spec.IssuerConfig = cmapi.IssuerConfig{SelfSigned: &cmapi.SelfSignedIssuer{}} }},
		{root, func() {
			root.Spec = cmapi.CertificateSpec{
				IsCA:       true,
				CommonName: mi.Name + " mesh root CA",
				SecretName: rootCAName(mi),
				Duration:   &metav1.Duration{Duration: 10 * 365 * 24 * time.Hour},
				PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256},
				IssuerRef:  cmmeta.IssuerReference{Name: selfSignedName(mi), Kind: cmapi.ClusterIssuerKind, Group: "cert-manager.io"},
				SecretTemplate: &cmapi.CertificateSecretTemplate{
					Labels: MeshObjectLabels(mi.Name),
				},
			}
		}},
		{ca, func() { ca.Spec.IssuerConfig = cmapi.IssuerConfig{CA: &cmapi.CAIssuer{SecretName: rootCAName(mi)}} }},
	} {
		_, err := controllerutil.CreateOrPatch(ctx, r.Client, obj.o, func() error {
			obj.mutate()
			labels := obj.o.GetLabels()
			if labels == nil {
				labels = map[string]string{}
			}
			labels[managedByLabel], labels[meshLabel] = managedBy, mi.Name
			obj.o.SetLabels(labels)
			return controllerutil.SetControllerReference(mi, obj.o, r.Scheme())
		})
		if err != nil {
			return fmt.Errorf("ensuring %T %s: %w", obj.o, obj.o.GetName(), err)
		}
	}
	return nil
}

// countMembers fills the mesh's member, identity, VM and proxy counts: the
// sidecars connected in member namespaces, and the VMs whose proxy is.
func (r *MeshInstanceReconciler) countMembers(ctx context.Context, mi *meshv1alpha1.MeshInstance) error {
	var nss corev1.NamespaceList
	if err := r.List(ctx, &nss, client.MatchingLabels{meshv1alpha1.MonitorLabel: mi.Name}); err != nil {
		return fmt.Errorf("listing member namespaces: %w", err)
	}
	var certs cmapi.CertificateList
	if err := r.List(ctx, &certs, client.MatchingLabels{meshLabel: mi.Name}); err != nil {
		return fmt.Errorf("listing identity Certificates: %w", err)
	}
	identities := 0
	for _, c := range certs.Items {
		if len(c.Spec.URIs) > 0 { // a SPIFFE ID: not the CA's nor the xDS server's
			identities++
		}
	}
	var vms meshv1alpha1.MeshVMList
	if err := r.List(ctx, &vms); err != nil {
		return fmt.Errorf("listing MeshVMs: %w", err)
	}
	c, err := readCensus(ctx, r.Client, r.Namespace)
	if err != nil {
		return err
	}
	members := make(map[string]bool, len(nss.Items))
	for _, ns := range nss.Items {
		members[ns.Name] = true
	}
	proxies := c.Counts.Total(members)
	// A failing group is the mesh's to report, not its Ready: the
	// MeshMember of the namespace is not Ready.
	proxyConfig(&mi.Status.Conditions, mi.Generation, c.Failing, members)
	n := 0
	for _, vm := range vms.Items {
		if vm.Spec.Mesh == mi.Name {
			n++
			if vm.Status.Proxy != nil && vm.Status.Proxy.Connected {
				proxies++
			}
		}
	}
	mi.Status.MemberNamespaces, mi.Status.Identities, mi.Status.VMs = int32(len(nss.Items)), int32(identities), int32(n)
	mi.Status.ConnectedProxies = proxies
	return nil
}

// ensureServingCertificate has the mesh's issuer sign a certificate for the
// xDS server, into a Secret of the operator's namespace that the server reads.
func (r *MeshInstanceReconciler) ensureServingCertificate(ctx context.Context, mi *meshv1alpha1.MeshInstance) error {
	name := servingCertificateName(mi)
	cert := &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: r.Namespace}}
	duration, renew, err := lifetimeOf(mi)
	if err != nil {
		return err
	}
	_, err = controllerutil.CreateOrPatch(ctx, r.Client, cert, func() error {
		cert.Labels = MeshObjectLabels(mi.Name)
		cert.Spec = cmapi.CertificateSpec{
			SecretName: servingSecretName(mi),
			// The mesh's names only: the server picks a mesh's certificate
			// by the name its proxies ask for.
			DNSNames:    bootstrap.XDSServingNames(mi.Name, r.Namespace),
			Usages:      []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageKeyEncipherment, cmapi.UsageServerAuth},
			Duration:    duration,
			RenewBefore: renew,
			PrivateKey:  privateKey(mi),
			IssuerRef:   meshIssuer(mi),
			SecretTemplate: &cmapi.CertificateSecretTemplate{
				Labels: map[string]string{managedByLabel: managedBy, meshv1alpha1.XDSServingSecretLabel: mi.Name},
			},
		}
		return controllerutil.SetControllerReference(mi, cert, r.Scheme())
	})
	if err != nil {
		return fmt.Errorf("ensuring the xDS serving Certificate %s/%s: %w", r.Namespace, name, err)
	}
	// The certificate's first name resolves through the mesh's own Service.
	return ensureXDSMeshService(ctx, r.Client, mi, r.Namespace)
}

// meshFinalizer holds a mesh while members remain, and lets the operator
// delete the Secrets garbage collection would leave.
const meshFinalizer = "mesh.openservicemesh.io/mesh"

// delete waits for the mesh's MeshMembers, MeshVMs and the namespaces
// labelled for it by hand to go, saying so in status, then deletes its root
// CA and xDS serving certificates with their Secrets (cert-manager keeps a
// Secret when its Certificate goes) and lets the mesh go.
func (r *MeshInstanceReconciler) delete(ctx context.Context, mi *meshv1alpha1.MeshInstance) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(mi, meshFinalizer) {
		return ctrl.Result{}, nil
	}
	w, err := r.remaining(ctx, mi)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !w.empty() {
		before := mi.DeepCopy()
		setConditions(&mi.Status.Conditions, mi.Generation, outcome{reason: meshv1alpha1.ReasonDeleting, message: w.message()})
		announce(r.Recorder, mi, before.Status.Conditions, mi.Status.Conditions)
		if err := r.Status().Patch(ctx, mi, client.MergeFrom(before)); err != nil {
			return ctrl.Result{}, fmt.Errorf("patching MeshInstance status: %w", err)
		}
		return ctrl.Result{RequeueAfter: waitRequeue}, nil
	}
	// What the mesh owns would be garbage-collected, but Certificates must go
	// before their Secrets, or cert-manager issues them again.
	for _, obj := range []client.Object{
		&cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: r.ClusterResourceNamespace, Name: rootCAName(mi)}},
		&cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: r.Namespace, Name: servingCertificateName(mi)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.ClusterResourceNamespace, Name: rootCAName(mi)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.Namespace, Name: servingSecretName(mi)}},
	} {
		if err := r.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, fmt.Errorf("deleting %T %s: %w", obj, obj.GetName(), err)
		}
	}
	controllerutil.RemoveFinalizer(mi, meshFinalizer)
	return ctrl.Result{}, r.Update(ctx, mi)
}

// remaining lists what still holds a mesh being deleted: its MeshMembers,
// its MeshVMs, and the namespaces that carry its monitor label with no
// MeshMember of the mesh (labelled by hand: their workloads keep their
// identities while the label stays).
func (r *MeshInstanceReconciler) remaining(ctx context.Context, mi *meshv1alpha1.MeshInstance) (holders, error) {
	var members meshv1alpha1.MeshMemberList
	if err := r.List(ctx, &members, client.MatchingFields{meshIndex: mi.Name}); err != nil {
		return holders{}, fmt.Errorf("listing the mesh's MeshMembers: %w", err)
	}
	var vms meshv1alpha1.MeshVMList
	if err := r.List(ctx, &vms); err != nil {
		return holders{}, fmt.Errorf("listing MeshVMs: %w", err)
	}
	var nss corev1.NamespaceList
	if err := r.List(ctx, &nss, client.MatchingLabels{meshv1alpha1.MonitorLabel: mi.Name}); err != nil {
		return holders{}, fmt.Errorf("listing the namespaces labelled for the mesh: %w", err)
	}
	var h holders
	withMember := map[string]bool{}
	for _, m := range members.Items {
		h.members = append(h.members, m.Namespace+"/"+m.Name)
		withMember[m.Namespace] = true
	}
	for _, v := range vms.Items {
		if v.Spec.Mesh == mi.Name {
			h.vms = append(h.vms, v.Namespace+"/"+v.Name)
		}
	}
	for _, ns := range nss.Items {
		if !withMember[ns.Name] {
			h.namespaces = append(h.namespaces, ns.Name)
		}
	}
	return h, nil
}

// holders are what a mesh's deletion waits for, by kind.
type holders struct {
	members, vms, namespaces []string
}

func (h holders) empty() bool { return len(h.members)+len(h.vms)+len(h.namespaces) == 0 }

// maxHoldersShown bounds the names a Deleting message lists per kind.
const maxHoldersShown = 5

// message is the Deleting condition's: the counts of each kind, and the
// first names of each.
func (h holders) message() string {
	list := func(names []string) string {
		if len(names) == 0 {
			return ""
		}
		names = slices.Sorted(slices.Values(names))
		shown := strings.Join(names[:min(len(names), maxHoldersShown)], ", ")
		if len(names) > maxHoldersShown {
			shown += ", …"
		}
		return " (" + shown + ")"
	}
	msg := fmt.Sprintf("deletion waits for %d MeshMembers%s, %d MeshVMs%s and %d labelled namespaces%s to leave the mesh",
		len(h.members), list(h.members), len(h.vms), list(h.vms), len(h.namespaces), list(h.namespaces))
	if len(h.namespaces) > 0 {
		msg += fmt.Sprintf("; a labelled namespace leaves when its %s label is removed", meshv1alpha1.MonitorLabel)
	}
	return msg
}
