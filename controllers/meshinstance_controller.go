package controllers

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
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
	// RootClock: see Options.RootClock.
	RootClock func(mesh string) time.Time
	// APIReader reads the Secrets the cache does not hold (those the
	// operator did not make): whether the Secret the ingress gateway
	// certificate names holds something else. Nil reads through Client.
	APIReader client.Reader

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
	f, err := r.gather(ctx, mi)
	if !reportable(err) {
		return ctrl.Result{}, err
	}
	// A failed write (its issuers, its serving certificate, its xDS
	// Service, its trust bundle) shows in status, and is retried.
	f.failedWrite = err
	before := mi.DeepCopy()
	mi.Status = meshStatus(before, f)
	res, err := reportFailedWrite(ctx, r.Client, r.Recorder, mi, before, err)
	announceAnchors(r.Recorder, mi, before.Status.Conditions, mi.Status.Conditions)
	if b := f.ca.bundle; f.ca.written {
		res = r.watchExpiry(mi, b.all(), f.now, res)
		// Leaves are re-issued without the mesh hearing of each: look
		// again soon while a former root is kept.
		if len(b.retiring) > 0 && (res.RequeueAfter == 0 || res.RequeueAfter > waitRequeue) {
			res.RequeueAfter = waitRequeue
		}
	}
	// A rotation moves on by what it observes, and moves identities at a
	// rate: look again soon.
	if rot := f.ca.rotation; rot != nil && rot.rotation != nil && (res.RequeueAfter == 0 || res.RequeueAfter > rotationRequeue) {
		res.RequeueAfter = rotationRequeue
	}
	// The mesh is the one writer of its policies' status (policy_controller.go).
	return res, errors.Join(err, writePolicyStatuses(ctx, r.Client, f.policies), writeRouteStatuses(ctx, r.Client, f.routes))
}

// rotationRequeue is how soon a mesh with a rotation under way is looked at
// again.
const rotationRequeue = time.Second

// watchExpiry sets the bundle's expiry metric and has the mesh looked at
// again when TrustAnchorsValid would next change by the clock alone, a
// certificate's validity starting or ending or entering the warning
// window, unless res asks sooner.
func (r *MeshInstanceReconciler) watchExpiry(mi *meshv1alpha1.MeshInstance, certs []*x509.Certificate, now time.Time, res ctrl.Result) ctrl.Result {
	setAnchorExpiry(mi.Name, certs)
	_, _, next := anchorsValid(certs, now, mi.EffectiveExpiryWarning())
	if next.IsZero() {
		return res
	}
	// A second late, so that the change has happened when it runs.
	if wait := next.Sub(now) + time.Second; res.RequeueAfter == 0 || wait < res.RequeueAfter {
		res.RequeueAfter = wait
	}
	return res
}

// gather makes the mesh's certificate authority and trust bundle
// (reconcileCA) and its ingress gateway certificate, publishes the bundle to the mesh's namespaces
// (publishBundle), then reads its members, the objects its model leaves out
// (recording an Event on each, see checkPolicies) and the cluster's
// CertificateRequests, for meshStatus. A failed write of the first part
// ends it.
func (r *MeshInstanceReconciler) gather(ctx context.Context, mi *meshv1alpha1.MeshInstance) (meshFacts, error) {
	f := meshFacts{now: time.Now()}
	if err := r.reconcileCA(ctx, mi, f.now, &f.ca); err != nil {
		return f, err
	}
	var err error
	if f.ingress, f.ingressSpecErr, err = r.reconcileIngressCertificate(ctx, mi); err != nil {
		return f, err
	}
	// The bundle's ConfigMap in each namespace of the mesh (trustpublish.go).
	if err := r.publishBundle(ctx, mi); err != nil {
		return f, err
	}
	if err := r.readMembers(ctx, mi, &f); err != nil {
		return f, err
	}
	if f.leftOut, f.policies, f.routes, err = r.checkPolicies(ctx, mi, f.namespaces); err != nil {
		return f, err
	}
	var crs cmapi.CertificateRequestList
	// Read only, and the mesh reconciles often: the cache's objects as they are.
	if err := r.List(ctx, &crs, client.UnsafeDisableDeepCopy); err != nil {
		return f, fmt.Errorf("listing CertificateRequests: %w", err)
	}
	f.requests = crs.Items
	return f, nil
}

// reconcileCA makes sure the mesh's issuer exists, and, once it and the xDS
// serving certificate are ready, writes the mesh's trust bundle for the xDS
// servers; it records in f what it found, as far as it got.
func (r *MeshInstanceReconciler) reconcileCA(ctx context.Context, mi *meshv1alpha1.MeshInstance, now time.Time, f *caFacts) error {
	fromSpec, err := specBundle(mi)
	if err != nil {
		f.specErr = err
		return nil
	}
	if mi.Spec.Certificates.IssuerRef == nil {
		if err := r.bootstrapCA(ctx, mi); err != nil {
			return failedWrite(err)
		}
	}
	issuer, err := r.readIssuer(ctx, mi)
	if err != nil {
		return err
	}
	f.issuer = &issuer
	// A kind that cannot sign for the mesh gets no serving Certificate;
	// an issuer not ready yet does, to sign once it is.
	verdict := issuer.verdict()
	if verdict.stalled {
		return nil
	}
	if err := r.ensureServingCertificate(ctx, mi); err != nil {
		return failedWrite(err)
	}
	if !verdict.ready() {
		return nil
	}
	f.serving = &cmapi.Certificate{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: servingCertificateName(mi)}, f.serving); err != nil {
		return fmt.Errorf("reading the xDS serving Certificate: %w", err)
	}
	if ok, _ := certificateReady(f.serving); !ok {
		return nil
	}
	if len(fromSpec) == 0 {
		if phased, err := r.rotate(ctx, mi, now, f); phased || err != nil {
			return err
		}
	} else {
		// The spec's bundle is as declared: the issuer signs at once.
		f.rotation = &rotationOutcome{signing: signing{issuer: ptrTo(apiRef(meshIssuer(mi)))}}
	}
	b, err := r.readBundle(ctx, mi, fromSpec)
	if err != nil {
		return err
	}
	if b.known() && b.reason != meshv1alpha1.ReasonFromSpec {
		// The issuer's roots changed: the former stay next to the new
		// while leaves they signed remain. A spec's bundle is as declared.
		if err := r.keepFormer(ctx, mi, now, &b); err != nil {
			return err
		}
	}
	f.bundle = &b
	if !b.known() {
		return nil
	}
	if err := r.writeBundle(ctx, mi, b.all()); err != nil {
		return failedWrite(err)
	}
	f.written = true
	return nil
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
				Duration:   &metav1.Duration{Duration: rootLifetime},
				// The mesh renews its root as a new generation through a
				// rotation's phases, well before this (renewDue):
				// cert-manager's own renewal, in place, is the fallback.
				RenewBefore: &metav1.Duration{Duration: fallbackRenewal(mi)},
				PrivateKey:  &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256},
				IssuerRef:   cmmeta.IssuerReference{Name: selfSignedName(mi), Kind: cmapi.ClusterIssuerKind, Group: "cert-manager.io"},
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

// readMembers reads what the mesh's counts are made of: the namespaces
// labelled for it, its MeshMembers, its Certificates, its MeshVMs and the census.
func (r *MeshInstanceReconciler) readMembers(ctx context.Context, mi *meshv1alpha1.MeshInstance, f *meshFacts) error {
	var nss corev1.NamespaceList
	if err := r.List(ctx, &nss, client.MatchingLabels{meshv1alpha1.MonitorLabel: mi.Name}); err != nil {
		return fmt.Errorf("listing member namespaces: %w", err)
	}
	for _, ns := range nss.Items {
		f.namespaces = append(f.namespaces, ns.Name)
	}
	var members meshv1alpha1.MeshMemberList
	if err := r.List(ctx, &members, client.MatchingFields{meshIndex: mi.Name}); err != nil {
		return fmt.Errorf("listing the mesh's MeshMembers: %w", err)
	}
	f.members = members.Items
	var certs cmapi.CertificateList
	if err := r.List(ctx, &certs, client.MatchingLabels{meshLabel: mi.Name}); err != nil {
		return fmt.Errorf("listing identity Certificates: %w", err)
	}
	f.certificates = certs.Items
	var vms meshv1alpha1.MeshVMList
	if err := r.List(ctx, &vms, client.MatchingFields{meshIndex: mi.Name}); err != nil {
		return fmt.Errorf("listing the mesh's MeshVMs: %w", err)
	}
	f.vms = vms.Items
	var err error
	f.census, err = readCensus(ctx, r.Client, r.Namespace)
	return err
}

// ensureServingCertificate has the mesh's leaf issuer sign a certificate
// for the xDS server, into a Secret of the operator's namespace that the
// server reads.
func (r *MeshInstanceReconciler) ensureServingCertificate(ctx context.Context, mi *meshv1alpha1.MeshInstance) error {
	err := r.ensureXDSCertificate(ctx, mi, servingCertificateName(mi), servingSecretName(mi), leafIssuer(mi),
		map[string]string{managedByLabel: managedBy, meshv1alpha1.XDSServingSecretLabel: mi.Name})
	if err != nil {
		return err
	}
	// The certificate's first name resolves through the mesh's own Service.
	return ensureXDSMeshService(ctx, r.Client, mi, r.Namespace)
}

// ensureXDSCertificate has issuer sign a certificate of the xDS server's
// names for the mesh, in the operator's namespace, into Secret secret with
// secretLabels: the serving certificate, or a rotation's probe.
func (r *MeshInstanceReconciler) ensureXDSCertificate(ctx context.Context, mi *meshv1alpha1.MeshInstance, name, secret string, issuer cmmeta.IssuerReference, secretLabels map[string]string) error {
	cert := &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: r.Namespace}}
	duration, renew, err := lifetimeOf(mi)
	if err != nil {
		return err
	}
	_, err = controllerutil.CreateOrPatch(ctx, r.Client, cert, func() error {
		cert.Labels = MeshObjectLabels(mi.Name)
		cert.Spec = cmapi.CertificateSpec{
			SecretName: secret,
			// The mesh's names only: the server picks a mesh's certificate
			// by the name its proxies ask for.
			DNSNames:       bootstrap.XDSServingNames(mi.Name, r.Namespace),
			Usages:         []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageKeyEncipherment, cmapi.UsageServerAuth},
			Duration:       duration,
			RenewBefore:    renew,
			PrivateKey:     privateKey(mi),
			IssuerRef:      issuer,
			SecretTemplate: &cmapi.CertificateSecretTemplate{Labels: secretLabels},
		}
		return controllerutil.SetControllerReference(mi, cert, r.Scheme())
	})
	if err != nil {
		return failedWrite(fmt.Errorf("ensuring the xDS Certificate %s/%s: %w", r.Namespace, name, err))
	}
	return nil
}

// meshFinalizer holds a mesh while members remain, and lets the operator
// delete the Secrets garbage collection would leave.
const meshFinalizer = "mesh.openservicemesh.io/mesh"

// delete waits for the mesh's MeshMembers, MeshVMs and the namespaces
// labelled for it by hand to go, saying so in status, then deletes its root
// CA and xDS serving certificates with their Secrets (cert-manager keeps a
// Secret when its Certificate goes) and lets the mesh go.
func (r *MeshInstanceReconciler) delete(ctx context.Context, mi *meshv1alpha1.MeshInstance) (ctrl.Result, error) {
	setAnchorExpiry(mi.Name, nil)
	if !controllerutil.ContainsFinalizer(mi, meshFinalizer) {
		return ctrl.Result{}, nil
	}
	w, err := r.remaining(ctx, mi)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !w.empty() {
		before := mi.DeepCopy()
		mi.Status = deletingStatus(before, w)
		return reportStatus(ctx, r.Client, r.Recorder, mi, before)
	}
	// What the mesh owns would be garbage-collected, but Certificates must go
	// before their Secrets, or cert-manager issues them again.
	owned := []client.Object{
		&cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: r.ClusterResourceNamespace, Name: rootCAName(mi)}},
		&cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: r.Namespace, Name: servingCertificateName(mi)}},
		&cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: r.Namespace, Name: probeCertificateName(mi)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.ClusterResourceNamespace, Name: rootCAName(mi)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.Namespace, Name: servingSecretName(mi)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.Namespace, Name: probeSecretName(mi)}},
	}
	// A mesh deleted amid a rotation from one root generation to the next
	// holds the former's root too.
	if si := mi.Status.SigningIssuer; si != nil {
		if g, ok := bootstrappedGeneration(mi, certManagerRef(*si)); ok && g != rootGeneration(mi) {
			owned = append(owned,
				&cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: r.ClusterResourceNamespace, Name: rootCANameOf(mi, g)}},
				&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.ClusterResourceNamespace, Name: rootCANameOf(mi, g)}})
		}
	}
	for _, obj := range owned {
		if err := r.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, fmt.Errorf("deleting %T %s: %w", obj, obj.GetName(), err)
		}
	}
	if err := r.deleteIngressCertificates(ctx, mi, nil); err != nil {
		return ctrl.Result{}, err
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
	if err := r.List(ctx, &vms, client.MatchingFields{meshIndex: mi.Name}); err != nil {
		return holders{}, fmt.Errorf("listing the mesh's MeshVMs: %w", err)
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
		h.vms = append(h.vms, v.Namespace+"/"+v.Name)
	}
	for _, ns := range nss.Items {
		if !withMember[ns.Name] {
			h.namespaces = append(h.namespaces, ns.Name)
		}
	}
	return h, nil
}
