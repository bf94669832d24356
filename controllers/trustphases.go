package controllers

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/census"
)

// A change of the mesh's issuer is a rotation in three phases, each gated
// on what the operator observes (status.rotation):
//
//  1. Announcing: the new issuer signs a probe certificate (never served),
//     whose ca.crt gives its CA certificates; they join the trust bundle
//     next to the former issuer's, which still signs every leaf. The phase
//     ends once every namespace's bundle ConfigMap holds both, every
//     connected proxy that takes its certificates over SDS has
//     acknowledged the bundle holding both, and settle has passed (the
//     kubelet's time to update the files proxyless pods read).
//  2. Signing: the new issuer signs. The xDS serving certificate moves to it
//     at once; identity Certificates move at reissuePerSecond, and
//     cert-manager re-issues each as it moves. The phase ends once every
//     leaf of the mesh chains to the new CA certificates.
//  3. Retiring: the former CA certificates stay until every connected proxy
//     has acknowledged a leaf of the new ones and settle has passed; then
//     they leave the bundle and the new issuer is the mesh's signing
//     issuer.
//
// Setting issuerRef back to the former issuer in phase 1 or 2 rolls the
// rotation back: in phase 1 the new CA certificates leave again (nothing
// was signed by them); in phase 2 a rotation back to the former issuer
// starts in its phase 2, both issuers being trusted everywhere already.
// spec.certificates.rotation.hold keeps a rotation where it is.

// signing is who signs a mesh's leaves: its signing issuer, and the
// rotation under way, if any.
type signing struct {
	issuer   *meshv1alpha1.IssuerReference
	rotation *meshv1alpha1.TrustRotation
}

func signingOf(mi *meshv1alpha1.MeshInstance) signing {
	return signing{issuer: mi.Status.SigningIssuer, rotation: mi.Status.Rotation}
}

// leaf is the issuer that signs new leaves of the mesh: the former issuer
// while a rotation announces the new one, the new one after.
func (s signing) leaf(mi *meshv1alpha1.MeshInstance) cmmeta.IssuerReference {
	switch {
	case s.rotation != nil && s.rotation.Phase == meshv1alpha1.RotationAnnouncing:
		return certManagerRef(s.rotation.From)
	case s.rotation != nil:
		return certManagerRef(s.rotation.To)
	case s.issuer != nil:
		return certManagerRef(*s.issuer)
	}
	return meshIssuer(mi)
}

// leafIssuer is the issuer that signs new leaves of mi now.
func leafIssuer(mi *meshv1alpha1.MeshInstance) cmmeta.IssuerReference {
	return signingOf(mi).leaf(mi)
}

// identityIssuer is the issuer an identity Certificate that names have
// keeps: in phase Signing one still on the former issuer stays there until
// the mesh moves it (moveIdentities), so that a large mesh is not re-issued
// at once; any other gets leafIssuer.
func identityIssuer(mi *meshv1alpha1.MeshInstance, have cmmeta.IssuerReference) cmmeta.IssuerReference {
	if rot := mi.Status.Rotation; rot != nil && rot.Phase == meshv1alpha1.RotationSigning && sameIssuer(have, certManagerRef(rot.From)) {
		return have
	}
	return leafIssuer(mi)
}

// acceptedIssuers are the issuers whose requests the approver reviews for
// mi: the spec's, the signing one, and both of a rotation under way.
func acceptedIssuers(mi *meshv1alpha1.MeshInstance) []cmmeta.IssuerReference {
	out := []cmmeta.IssuerReference{meshIssuer(mi), leafIssuer(mi)}
	if rot := mi.Status.Rotation; rot != nil {
		out = append(out, certManagerRef(rot.From), certManagerRef(rot.To))
	}
	return out
}

func certManagerRef(r meshv1alpha1.IssuerReference) cmmeta.IssuerReference {
	return cmmeta.IssuerReference{Name: r.Name, Kind: r.Kind, Group: r.Group}
}

// apiRef is a cert-manager issuer reference as status writes it, defaulted.
func apiRef(r cmmeta.IssuerReference) meshv1alpha1.IssuerReference {
	return meshv1alpha1.IssuerReference{Name: r.Name, Kind: issuerKind(r.Kind), Group: issuerGroup(r.Group)}
}

func issuerGroup(g string) string {
	if g == "" {
		return "cert-manager.io"
	}
	return g
}

func issuerKind(k string) string {
	if k == "" {
		return cmapi.IssuerKind
	}
	return k
}

// sameIssuer says whether two references name the same issuer, as
// cert-manager defaults them.
func sameIssuer(a, b cmmeta.IssuerReference) bool {
	return a.Name == b.Name && issuerKind(a.Kind) == issuerKind(b.Kind) && issuerGroup(a.Group) == issuerGroup(b.Group)
}

func describeIssuer(r meshv1alpha1.IssuerReference) string {
	return fmt.Sprintf("%s %s", issuerKind(r.Kind), r.Name)
}

// probeCertificateName is the certificate a rotation's new issuer signs to
// show its CA certificates, in the operator's namespace; probeSecretName
// its Secret. Nothing serves it.
func probeCertificateName(mi *meshv1alpha1.MeshInstance) string {
	return "osm-" + mi.Name + "-xds-next"
}

func probeSecretName(mi *meshv1alpha1.MeshInstance) string { return "osm-" + mi.Name + "-xds-next-tls" }

// rotationFacts are what a rotation's phase is gated on, as read.
type rotationFacts struct {
	// to are the new issuer's CA certificates; none until it has signed
	// the probe (or, rolling back, the former issuer's from the bundle).
	to []*x509.Certificate
	// from are the former issuer's, from the bundle written.
	from []*x509.Certificate
	// onFrom counts the identity Certificates that still name the former
	// issuer; oldLeaves the mesh's leaves not chaining to a to certificate.
	onFrom, oldLeaves int
	// published: every namespace's bundle ConfigMap holds the bundle
	// written (bundleSHA, the SHA-256 of its PEM).
	published bool
	bundleSHA string
	// proxies is what the connected proxies acknowledged, as of asOf (the
	// oldest report of a replica; zero with no replica running).
	proxies census.MeshTrust
	asOf    time.Time
}

// step moves a rotation on by what f shows, at now: it returns the
// rotation (with what it waits for), or nil once it is complete.
func step(rot meshv1alpha1.TrustRotation, f rotationFacts, now time.Time, settle time.Duration, hold bool) *meshv1alpha1.TrustRotation {
	rot.LeavesRemaining, rot.ProxiesWaitedFor = int32(f.oldLeaves), 0
	since := now.Sub(rot.PhaseSince.Time)
	enter := func(p meshv1alpha1.RotationPhase) *meshv1alpha1.TrustRotation {
		rot.Phase, rot.PhaseSince, rot.Waiting = p, metav1.Time{Time: now}, ""
		return &rot
	}
	wait := func(format string, args ...any) *meshv1alpha1.TrustRotation {
		rot.Waiting = fmt.Sprintf(format, args...)
		return &rot
	}
	switch rot.Phase {
	case meshv1alpha1.RotationAnnouncing:
		switch acked := f.proxies.Bundles[f.bundleSHA]; {
		case len(f.to) == 0:
			return wait("%s has not signed the rotation's probe certificate yet (its ca.crt gives the CA certificates to trust)", describeIssuer(rot.To))
		case !f.published:
			return wait("the bundle holding both issuers' CA certificates is not in every namespace's ConfigMap yet")
		case !f.asOf.IsZero() && f.asOf.Before(rot.PhaseSince.Time):
			return wait("every xDS replica to report what its proxies acknowledged since the bundle changed")
		case acked < f.proxies.Proxies:
			rot.ProxiesWaitedFor = f.proxies.Proxies - acked
			return wait("%d of %d connected proxies have not acknowledged the bundle holding both issuers' CA certificates", rot.ProxiesWaitedFor, f.proxies.Proxies)
		case since < settle:
			return wait("the bundle settles until %s (spec.certificates.rotation.settle)", rot.PhaseSince.Add(settle).UTC().Format(time.RFC3339))
		case hold:
			return wait("held by spec.certificates.rotation.hold")
		}
		return enter(meshv1alpha1.RotationSigning)
	case meshv1alpha1.RotationSigning:
		switch {
		case f.onFrom > 0 || f.oldLeaves > 0:
			return wait("%d identity Certificates still name %s, and %d leaves do not chain to the new CA certificates yet", f.onFrom, describeIssuer(rot.From), f.oldLeaves)
		case hold:
			return wait("held by spec.certificates.rotation.hold")
		}
		return enter(meshv1alpha1.RotationRetiring)
	case meshv1alpha1.RotationRetiring:
		onNew := int32(0)
		for _, c := range f.to {
			onNew += f.proxies.LeafRoots[meshv1alpha1.Fingerprint(c)]
		}
		switch {
		case f.oldLeaves > 0:
			return wait("%d leaves do not chain to the new CA certificates (renewed since?)", f.oldLeaves)
		case !f.asOf.IsZero() && f.asOf.Before(rot.PhaseSince.Time):
			return wait("every xDS replica to report what its proxies acknowledged since the leaves changed")
		case onNew < f.proxies.Proxies:
			rot.ProxiesWaitedFor = f.proxies.Proxies - onNew
			return wait("%d of %d connected proxies have not acknowledged a leaf of the new CA certificates", rot.ProxiesWaitedFor, f.proxies.Proxies)
		case since < settle:
			return wait("leaves settle until %s (spec.certificates.rotation.settle)", rot.PhaseSince.Add(settle).UTC().Format(time.RFC3339))
		case hold:
			return wait("held by spec.certificates.rotation.hold")
		}
		return nil
	}
	return &rot
}

// begin is the rotation a change of issuer from from to to starts, at now,
// with the CA certificates trusted then.
func begin(from, to cmmeta.IssuerReference, fromAnchors []string, now time.Time) *meshv1alpha1.TrustRotation {
	t := metav1.Time{Time: now}
	return &meshv1alpha1.TrustRotation{Phase: meshv1alpha1.RotationAnnouncing, From: apiRef(from), To: apiRef(to),
		FromAnchors: fromAnchors, Started: t, PhaseSince: t}
}

// rollBack is what setting issuerRef back to rot.From does: nil in phase
// Announcing (the new CA certificates signed nothing), a rotation back to
// the former issuer in its phase Signing otherwise.
func rollBack(rot *meshv1alpha1.TrustRotation, now time.Time) *meshv1alpha1.TrustRotation {
	if rot.Phase == meshv1alpha1.RotationAnnouncing {
		return nil
	}
	t := metav1.Time{Time: now}
	return &meshv1alpha1.TrustRotation{Phase: meshv1alpha1.RotationSigning, From: rot.To, To: rot.From,
		FromAnchors: rot.ToAnchors, ToAnchors: rot.FromAnchors, Started: t, PhaseSince: t, RolledBack: true}
}

// rotationCondition is TrustRotationComplete for rot (nil: none under way).
func rotationCondition(rot *meshv1alpha1.TrustRotation, hold bool) metav1.Condition {
	if rot == nil {
		return condition(meshv1alpha1.ConditionTrustRotation, metav1.ConditionTrue, meshv1alpha1.ReasonNoRotation, "No change of the mesh's issuer is under way")
	}
	reason := string(rot.Phase)
	if hold {
		reason = meshv1alpha1.ReasonHeld
	}
	verb := "Rotating"
	if rot.RolledBack {
		verb = "Rolling back"
	}
	msg := fmt.Sprintf("%s from %s to %s: phase %s since %s",
		verb, describeIssuer(rot.From), describeIssuer(rot.To), rot.Phase, rot.PhaseSince.UTC().Format(time.RFC3339))
	if rot.Phase != meshv1alpha1.RotationAnnouncing {
		msg += fmt.Sprintf("; %d leaves remain", rot.LeavesRemaining)
	}
	if rot.Waiting != "" {
		msg += "; waiting: " + rot.Waiting
	}
	return condition(meshv1alpha1.ConditionTrustRotation, metav1.ConditionFalse, reason, truncate(msg, maxConditionMessage))
}

// rotationOutcome is what rotate decided, for status.
type rotationOutcome struct {
	signing
	// rootGeneration is status.rootGeneration.
	rootGeneration int32
	// phased: the rotation made the bundle (the CA path does not).
	phased bool
}

// rotate starts, moves on or rolls back the mesh's change of issuer, and
// while one is under way makes the bundle (into f) itself. It returns
// whether it did; the signing issuer and rotation are in f.rotation.
func (r *MeshInstanceReconciler) rotate(ctx context.Context, mi *meshv1alpha1.MeshInstance, now time.Time, f *caFacts) (bool, error) {
	s := signingOf(mi)
	out := &rotationOutcome{signing: s, rootGeneration: mi.Status.RootGeneration}
	f.rotation = out
	rot := s.rotation
	want := meshIssuer(mi)
	if g, ok := bootstrappedGeneration(mi, want); ok && rot == nil && s.issuer != nil && sameIssuer(certManagerRef(*s.issuer), want) {
		// The bootstrapped root renews itself as a new generation.
		judged := now
		if r.RootClock != nil {
			judged = r.RootClock(mi.Name)
		}
		if next := renewedGeneration(mi, g, judged); next != g {
			logf.FromContext(ctx).Info("Renewing the mesh's bootstrapped root as a new generation", "generation", next)
			out.rootGeneration = next
			want = cmmeta.IssuerReference{Name: caIssuerNameOf(mi, next), Kind: cmapi.ClusterIssuerKind, Group: "cert-manager.io"}
		}
	}
	switch {
	case s.issuer == nil && rot == nil:
		// A new mesh, or one from before rotations: its issuer signs.
		out.issuer = ptrTo(apiRef(want))
		return false, nil
	case rot == nil && sameIssuer(certManagerRef(*s.issuer), want):
		return false, r.deleteProbe(ctx, mi)
	case rot == nil:
		anchors := currentAnchors(mi.Status.TrustBundle)
		if len(anchors) == 0 {
			// Nothing was trusted yet: nothing to keep working.
			out.issuer = ptrTo(apiRef(want))
			return false, r.deleteProbe(ctx, mi)
		}
		rot = begin(certManagerRef(*s.issuer), want, anchors, now)
		logf.FromContext(ctx).Info("Rotating the mesh's issuer", "from", rot.From.Name, "to", rot.To.Name)
	case sameIssuer(want, certManagerRef(rot.From)) && rot.Phase != meshv1alpha1.RotationRetiring:
		rot = rollBack(rot, now)
		logf.FromContext(ctx).Info("Rolling back the mesh's change of issuer", "to", s.rotation.From.Name)
		if rot == nil {
			out.rotation, out.issuer = nil, ptrTo(s.rotation.From)
			return false, r.deleteProbe(ctx, mi)
		}
	case !sameIssuer(want, certManagerRef(rot.To)) && rot.Phase == meshv1alpha1.RotationAnnouncing:
		// Another issuer asked for while announcing: nothing signed yet, so
		// the rotation announces that one instead, from the same issuer.
		rot = begin(certManagerRef(rot.From), want, rot.FromAnchors, now)
		logf.FromContext(ctx).Info("Rotating the mesh's issuer to another", "from", rot.From.Name, "to", rot.To.Name)
	default:
		// On its way; another issuer asked for while signing or retiring
		// waits until it completes.
		rot = rot.DeepCopy()
	}
	facts, err := r.rotationFacts(ctx, mi, rot, f)
	if err != nil {
		return true, err
	}
	if len(facts.to) > 0 && len(rot.ToAnchors) == 0 && rot.Phase == meshv1alpha1.RotationAnnouncing {
		rot.PhaseSince = metav1.Time{Time: now} // the phase's time counts from the new CA certificates' arrival
	}
	rot.ToAnchors = fingerprints(facts.to)
	b := rotationBundle(rot, facts, mi)
	f.bundle = &b
	if err := r.writeBundle(ctx, mi, b.all()); err != nil {
		return true, failedWrite(err)
	}
	f.written = true
	// The bundle as written now, as step compares it with what proxies hold.
	sum := sha256.Sum256(bundlePEM(b.all()))
	facts.bundleSHA = hex.EncodeToString(sum[:])
	next := step(*rot, facts, now, mi.EffectiveSettle(), mi.Spec.Certificates.Rotation.Hold)
	if next == nil {
		logf.FromContext(ctx).Info("Rotated the mesh's issuer", "to", rot.To.Name)
		out.rotation, out.issuer, out.phased = nil, ptrTo(rot.To), true
		done := bundle{certs: facts.to, reason: b.reason, message: b.message}
		f.bundle = &done
		if err := r.writeBundle(ctx, mi, done.all()); err != nil {
			return true, failedWrite(err)
		}
		gFrom, fromOwn := bootstrappedGeneration(mi, certManagerRef(rot.From))
		if gTo, toOwn := bootstrappedGeneration(mi, certManagerRef(rot.To)); fromOwn && toOwn && gFrom != gTo {
			if err := r.retireGeneration(ctx, mi, gFrom); err != nil {
				return true, err
			}
		}
		return true, r.deleteProbe(ctx, mi)
	}
	out.rotation, out.phased = next, true
	if next.Phase == meshv1alpha1.RotationSigning {
		if err := r.moveIdentities(ctx, mi, next, now); err != nil {
			return true, err
		}
	}
	return true, nil
}

func ptrTo[T any](v T) *T { return &v }

// currentAnchors are the fingerprints of the Current CA certificates of a
// status's bundle.
func currentAnchors(tb []meshv1alpha1.TrustAnchor) []string {
	var out []string
	for _, a := range tb {
		if a.Role == meshv1alpha1.TrustAnchorCurrent || a.Role == "" {
			out = append(out, a.SHA256Fingerprint)
		}
	}
	return out
}

func fingerprints(certs []*x509.Certificate) []string {
	out := make([]string, 0, len(certs))
	for _, c := range certs {
		out = append(out, meshv1alpha1.Fingerprint(c))
	}
	return out
}

// rotationBundle is the bundle of a rotation's phase: the former CA
// certificates current and the new ones next while it announces; the new
// ones current and the former retiring after.
func rotationBundle(rot *meshv1alpha1.TrustRotation, f rotationFacts, mi *meshv1alpha1.MeshInstance) bundle {
	b := bundle{reason: meshv1alpha1.ReasonFromIssuer,
		message: fmt.Sprintf("The trust bundle holds the CA certificates of %s and %s while the mesh's issuer changes (status.rotation)", describeIssuer(rot.From), describeIssuer(rot.To))}
	if mi.Spec.Certificates.IssuerRef == nil {
		b.reason = meshv1alpha1.ReasonBootstrapped
	}
	to := slices.DeleteFunc(slices.Clone(f.to), func(c *x509.Certificate) bool {
		return slices.ContainsFunc(f.from, c.Equal)
	})
	if rot.Phase == meshv1alpha1.RotationAnnouncing {
		b.certs, b.next = f.from, to
		return b
	}
	b.certs = f.to
	for _, c := range f.from {
		if !slices.ContainsFunc(f.to, c.Equal) {
			b.retiring = append(b.retiring, retiring{cert: c, since: rot.PhaseSince.Time, until: rot.PhaseSince.Add(leafLifetime(mi)), remaining: f.oldLeaves})
		}
	}
	return b
}

// rotationFacts reads what rot's phase is gated on. It makes sure the
// probe certificate exists, signed by rot.To.
func (r *MeshInstanceReconciler) rotationFacts(ctx context.Context, mi *meshv1alpha1.MeshInstance, rot *meshv1alpha1.TrustRotation, f *caFacts) (rotationFacts, error) {
	var out rotationFacts
	written, err := r.readWritten(ctx, mi)
	if err != nil {
		return out, err
	}
	byFP := func(fps []string) []*x509.Certificate {
		var certs []*x509.Certificate
		for _, w := range written {
			if slices.Contains(fps, meshv1alpha1.Fingerprint(w)) {
				certs = append(certs, w)
			}
		}
		return certs
	}
	out.from = byFP(rot.FromAnchors)
	probe, err := r.ensureProbe(ctx, mi, certManagerRef(rot.To))
	if err != nil {
		return out, err
	}
	out.to = byFP(rot.ToAnchors)
	for _, c := range probe {
		if !slices.ContainsFunc(out.to, c.Equal) {
			out.to = append(out.to, c)
		}
	}
	// Announcing waits on no leaf: none is read (a large mesh has many).
	if rot.Phase != meshv1alpha1.RotationAnnouncing {
		leaves, err := r.readLeaves(ctx, mi)
		if err != nil {
			return out, err
		}
		toPool := pool(out.to)
		for _, chain := range leaves {
			if !verifies(chain, toPool, time.Now()) {
				out.oldLeaves++
			}
		}
		var certs cmapi.CertificateList
		if err := r.List(ctx, &certs, client.MatchingLabels(MeshObjectLabels(mi.Name)), client.UnsafeDisableDeepCopy); err != nil {
			return out, fmt.Errorf("listing the mesh's Certificates: %w", err)
		}
		for i := range certs.Items {
			c := &certs.Items[i]
			if len(c.Spec.URIs) > 0 && !sameIssuer(c.Spec.IssuerRef, certManagerRef(rot.To)) {
				out.onFrom++
			}
		}
	}
	out.published, err = r.bundlesPublished(ctx, mi)
	if err != nil {
		return out, err
	}
	c, err := readCensus(ctx, r.Client, r.Namespace)
	if err != nil {
		return out, err
	}
	out.proxies, out.asOf = c.Trust[mi.Name], c.AsOf
	return out, nil
}

// bundlesPublished says whether every namespace of the mesh holds the
// bundle last written in its ConfigMap.
func (r *MeshInstanceReconciler) bundlesPublished(ctx context.Context, mi *meshv1alpha1.MeshInstance) (bool, error) {
	var nss corev1.NamespaceList
	if err := r.List(ctx, &nss, client.MatchingLabels{meshv1alpha1.MonitorLabel: mi.Name}); err != nil {
		return false, fmt.Errorf("listing the namespaces of the mesh: %w", err)
	}
	var cms corev1.ConfigMapList
	if err := r.List(ctx, &cms, client.MatchingLabels{meshv1alpha1.TrustBundleSecretLabel: mi.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return false, fmt.Errorf("listing the mesh's trust bundle ConfigMaps: %w", err)
	}
	pem, err := r.servedBundle(ctx, mi)
	if err != nil {
		return false, err
	}
	return len(pem) > 0 && len(planBundles(mi, pem, nss.Items, cms.Items).write) == 0, nil
}

// ensureProbe has issuer sign the probe certificate, and returns the CA
// certificates of its Secret once the Secret is of issuer's signing.
func (r *MeshInstanceReconciler) ensureProbe(ctx context.Context, mi *meshv1alpha1.MeshInstance, issuer cmmeta.IssuerReference) ([]*x509.Certificate, error) {
	// The xDS server's names, which the approver lets the mesh's issuers
	// sign in the operator's namespace; the Secret has not the serving
	// label, so no server serves it.
	if err := r.ensureXDSCertificate(ctx, mi, probeCertificateName(mi), probeSecretName(mi), issuer,
		map[string]string{managedByLabel: managedBy}); err != nil {
		return nil, err
	}
	s := &corev1.Secret{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: probeSecretName(mi)}, s); apierrors.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("reading the rotation's probe Secret: %w", err)
	}
	a := s.Annotations
	if a[cmapi.IssuerNameAnnotationKey] != issuer.Name || issuerKind(a[cmapi.IssuerKindAnnotationKey]) != issuerKind(issuer.Kind) ||
		issuerGroup(a[cmapi.IssuerGroupAnnotationKey]) != issuerGroup(issuer.Group) {
		return nil, nil // signed by the issuer of a rotation before
	}
	return caCertificates(s.Data[meshv1alpha1.TrustBundleKey]), nil
}

// deleteProbe deletes the probe certificate and its Secret, once no
// rotation needs them.
func (r *MeshInstanceReconciler) deleteProbe(ctx context.Context, mi *meshv1alpha1.MeshInstance) error {
	for _, obj := range []client.Object{
		&cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: r.Namespace, Name: probeCertificateName(mi)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.Namespace, Name: probeSecretName(mi)}},
	} {
		if err := r.Get(ctx, client.ObjectKeyFromObject(obj), obj); apierrors.IsNotFound(err) {
			continue
		} else if err != nil {
			return fmt.Errorf("reading %s: %w", obj.GetName(), err)
		}
		if err := r.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
			return failedWrite(fmt.Errorf("deleting the rotation's probe %s: %w", obj.GetName(), err))
		}
	}
	return nil
}

// moveIdentities moves identity Certificates from rot.From to rot.To, so
// that no more than reissuePerSecond a second have moved since the phase
// began: cert-manager re-issues each as it moves.
func (r *MeshInstanceReconciler) moveIdentities(ctx context.Context, mi *meshv1alpha1.MeshInstance, rot *meshv1alpha1.TrustRotation, now time.Time) error {
	var certs cmapi.CertificateList
	if err := r.List(ctx, &certs, client.MatchingLabels(MeshObjectLabels(mi.Name))); err != nil {
		return fmt.Errorf("listing the mesh's Certificates: %w", err)
	}
	to := certManagerRef(rot.To)
	var waiting []*cmapi.Certificate
	moved := 0
	for i := range certs.Items {
		c := &certs.Items[i]
		if len(c.Spec.URIs) == 0 {
			continue
		}
		if sameIssuer(c.Spec.IssuerRef, to) {
			moved++
		} else {
			waiting = append(waiting, c)
		}
	}
	rate := mi.EffectiveReissuePerSecond()
	allowed := rate*int(now.Sub(rot.PhaseSince.Time)/time.Second) + rate - moved
	slices.SortFunc(waiting, func(a, b *cmapi.Certificate) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	for _, c := range waiting[:max(0, min(allowed, len(waiting)))] {
		patch := client.MergeFrom(c.DeepCopy())
		c.Spec.IssuerRef = to
		if err := r.Patch(ctx, c, patch); client.IgnoreNotFound(err) != nil {
			return failedWrite(fmt.Errorf("moving Certificate %s/%s to %s: %w", c.Namespace, c.Name, describeIssuer(rot.To), err))
		}
	}
	return nil
}

// rootLifetime is how long a bootstrapped root lives.
const rootLifetime = 10 * 365 * 24 * time.Hour

// renewDue says whether a bootstrapped root is due for its renewal as a new
// generation at now: within twice the expiry warning of its end, or in the
// last third of its life, whichever comes later. The new root then has
// time to be trusted everywhere before anyone is warned.
func renewDue(notBefore, notAfter, now time.Time, warning time.Duration) bool {
	return notAfter.Sub(now) < min(2*warning, notAfter.Sub(notBefore)/3)
}

// fallbackRenewal is how long before its end cert-manager renews a
// bootstrapped root in place, should the mesh not have rotated to a new
// generation by then (renewDue comes first, by the same rule halved).
func fallbackRenewal(mi *meshv1alpha1.MeshInstance) time.Duration {
	return min(mi.EffectiveExpiryWarning()/2, rootLifetime/6)
}

// renewedGeneration is the root generation the mesh asks for: the next
// one when a current root of its bundle (as status.trustBundle lists it)
// is due for renewal at now, else the one it has.
func renewedGeneration(mi *meshv1alpha1.MeshInstance, signingGen int32, now time.Time) int32 {
	for _, a := range mi.Status.TrustBundle {
		if (a.Role == meshv1alpha1.TrustAnchorCurrent || a.Role == "") && renewDue(a.NotBefore.Time, a.NotAfter.Time, now, mi.EffectiveExpiryWarning()) {
			return signingGen + 1
		}
	}
	return rootGeneration(mi)
}

// retireGeneration deletes a bootstrapped generation the mesh rotated away
// from: its CA ClusterIssuer, and its root Certificate before the Secret
// (or cert-manager issues it again).
func (r *MeshInstanceReconciler) retireGeneration(ctx context.Context, mi *meshv1alpha1.MeshInstance, g int32) error {
	for _, obj := range []client.Object{
		&cmapi.ClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: caIssuerNameOf(mi, g)}},
		&cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: r.ClusterResourceNamespace, Name: rootCANameOf(mi, g)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.ClusterResourceNamespace, Name: rootCANameOf(mi, g)}},
	} {
		if err := r.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
			return failedWrite(fmt.Errorf("deleting %s of the former root generation %d: %w", obj.GetName(), g, err))
		}
	}
	return nil
}
