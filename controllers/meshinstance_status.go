package controllers

import (
	"fmt"
	"slices"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/census"
)

// meshFacts are what a MeshInstance's reconcile read and wrote, for
// meshStatus: its certificate authority first; a failed write there stops
// the gathering, and the rest is then zero.
type meshFacts struct {
	ca caFacts
	// failedWrite is the write for the mesh that failed (failedWrite), if one did.
	failedWrite error
	// namespaces are the names of the namespaces labelled for the mesh;
	// members its MeshMembers; certificates the Certificates labelled for
	// it; vms its MeshVMs.
	namespaces   []string
	members      []meshv1alpha1.MeshMember
	certificates []cmapi.Certificate
	vms          []meshv1alpha1.MeshVM
	// census is the xDS replicas' census.
	census census.Census
	// leftOut are the objects the mesh model left out.
	leftOut []leftOut
	// ingress is the ingress gateway Certificate, nil when the spec asks
	// for none or ingressSpecErr says why it cannot be made.
	ingress        *cmapi.Certificate
	ingressSpecErr error
	// policies are the statuses of the mesh's IngressBackends and
	// Egresses, written after the mesh's own.
	policies []policyReport
	// routes are the statuses of the Gateway API routes of its namespaces.
	routes []routeReport
	// requests are the cluster's CertificateRequests, read at now.
	requests []cmapi.CertificateRequest
	now      time.Time
}

// caFacts are what the reconcile found of the mesh's certificate
// authority, in the order it looks: each pointer is nil until reached.
type caFacts struct {
	// specErr says why spec.certificates.trustBundle is no bundle.
	specErr error
	// issuer is the mesh's issuer as read.
	issuer *issuerFacts
	// serving is the xDS serving Certificate.
	serving *cmapi.Certificate
	// bundle is the trust bundle as found (readBundle), with the former
	// CA certificates kept (keepFormer); written says it was written for
	// the xDS servers.
	bundle  *bundle
	written bool
	// rotation is the mesh's signing issuer and rotation as decided
	// (trustphases.go); nil leaves status's as they are.
	rotation *rotationOutcome
}

// meshStatus is the status of mi that f means, from mi's status as read,
// which it leaves as it is: its trust bundle and counts, and its conditions
// (TrustBundleKnown, TrustAnchorsValid, ProxyConfigReady, PoliciesValid,
// IdentityIssuanceRestricted, IngressCertificateReady, CertificateAuthorityReady and the summary).
// A condition the facts do not reach stays as it was.
func meshStatus(mi *meshv1alpha1.MeshInstance, f meshFacts) meshv1alpha1.MeshInstanceStatus {
	st := *mi.Status.DeepCopy()
	conds := newConditionSet(st.Conditions, mi.Generation)
	o := caOutcome(&st, conds, f.ca, mi.Spec.Certificates.Rotation.Hold)
	if b := f.ca.bundle; f.ca.written && o.ready() {
		c, none, _ := anchorsValid(b.all(), f.now, mi.EffectiveExpiryWarning())
		conds.set(c)
		if none {
			o = outcome{reason: meshv1alpha1.ReasonNoValidAnchor, message: "no CA certificate of the trust bundle is valid now, so proxies accept no peer: " + c.Message}
		}
	}
	st.ObservedGeneration = mi.Generation
	if w, failed := writeOutcome(f.failedWrite); failed {
		conds.summarize(w)
		st.Conditions = conds.list
		return st
	}
	// A failing group is the mesh's to report, not its Ready: the
	// MeshMember of the namespace is not Ready.
	config, _ := proxyConfigReady(f.census.Failing, countMembers(&st, f))
	st.NamespacesAcceptingPlaintext = namespacesAcceptingPlaintext(mi, f.namespaces, f.members)
	conds.set(config)
	conds.set(policiesValid(f.leftOut))
	conds.set(issuanceRestricted(mi, f.requests, f.now))
	if f.ingress != nil || f.ingressSpecErr != nil {
		conds.set(ingressCertificateReady(f.ingress, f.ingressSpecErr))
	} else {
		conds.remove(meshv1alpha1.ConditionIngressCertificateReady)
	}
	if o.ready() {
		conds.set(condition(meshv1alpha1.ConditionCertificateAuthorityReady, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "The mesh certificate authority is ready"))
	} else {
		conds.set(condition(meshv1alpha1.ConditionCertificateAuthorityReady, metav1.ConditionFalse, o.reason, o.message))
	}
	conds.summarize(o)
	st.Conditions = conds.list
	return st
}

// caOutcome sets TrustBundleKnown and the trust bundle of st from f, as far
// as f goes, and returns the outcome of the mesh's certificate authority.
func caOutcome(st *meshv1alpha1.MeshInstanceStatus, conds *conditionSet, f caFacts, hold bool) outcome {
	if f.specErr != nil {
		conds.set(condition(meshv1alpha1.ConditionTrustBundleKnown, metav1.ConditionFalse, meshv1alpha1.ReasonInvalidSpec, f.specErr.Error()))
		return outcome{reason: meshv1alpha1.ReasonInvalidSpec, stalled: true, message: f.specErr.Error()}
	}
	if f.rotation != nil {
		st.SigningIssuer, st.Rotation, st.RootGeneration = f.rotation.issuer, f.rotation.rotation, f.rotation.rootGeneration
		conds.set(rotationCondition(st.Rotation, hold))
	}
	if f.issuer == nil { // the bootstrap of its CA failed
		return outcome{}
	}
	// A kind that cannot sign for the mesh gets no serving Certificate; an
	// issuer not ready yet does, to sign once it is.
	if o := f.issuer.verdict(); !o.ready() {
		return o
	}
	if f.serving == nil { // its write failed
		return outcome{}
	}
	if ok, msg := certificateReady(f.serving); !ok {
		return outcome{reason: meshv1alpha1.ReasonCertificatePending, message: "the xDS serving certificate: " + msg}
	}
	b := f.bundle
	if b == nil {
		return outcome{}
	}
	if !b.known() {
		// What proxies have (the last bundle written) stays: no bundle is
		// made up, and none is taken away while the issuer is read again.
		conds.set(condition(meshv1alpha1.ConditionTrustBundleKnown, metav1.ConditionFalse, b.reason, b.message))
		if b.reason == meshv1alpha1.ReasonCertificatePending {
			return outcome{reason: b.reason, message: b.message}
		}
		return outcome{reason: meshv1alpha1.ReasonTrustBundleUnknown, message: "the trust bundle is not known: " + b.message}
	}
	if !f.written {
		return outcome{}
	}
	conds.set(condition(meshv1alpha1.ConditionTrustBundleKnown, metav1.ConditionTrue, b.reason, b.message))
	conds.set(rotated(b.retiring))
	st.TrustBundle = anchors(*b)
	return outcome{}
}

// countMembers fills the mesh's member, identity, VM and proxy counts of
// st: the sidecars connected in member namespaces, and the VMs whose proxy
// is. It returns the member namespaces.
func countMembers(st *meshv1alpha1.MeshInstanceStatus, f meshFacts) map[string]bool {
	identities := 0
	for _, c := range f.certificates {
		if len(c.Spec.URIs) > 0 { // a SPIFFE ID: not the CA's nor the xDS server's
			identities++
		}
	}
	members := make(map[string]bool, len(f.namespaces))
	for _, ns := range f.namespaces {
		members[ns] = true
	}
	proxies := f.census.Counts.Total(members)
	for _, vm := range f.vms {
		if vm.Status.Proxy != nil && vm.Status.Proxy.Connected {
			proxies++
		}
	}
	st.MemberNamespaces, st.Identities, st.VMs = int32(len(f.namespaces)), int32(identities), int32(len(f.vms))
	st.ConnectedProxies = proxies
	return members
}

// policiesValid is PoliciesValid of the objects the mesh left out.
func policiesValid(objs []leftOut) metav1.Condition {
	if len(objs) == 0 {
		return condition(meshv1alpha1.ConditionPoliciesValid, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "Every object of the mesh is in use")
	}
	return condition(meshv1alpha1.ConditionPoliciesValid, metav1.ConditionFalse, meshv1alpha1.ReasonInvalidObjects, policiesMessage(objs))
}

// foreignApprovalWindow is how long a request that another approver
// approved for the mesh's issuers keeps IdentityIssuanceRestricted False.
const foreignApprovalWindow = 24 * time.Hour

// issuanceRestricted is IdentityIssuanceRestricted at now: False while a
// recent CertificateRequest for the mesh's issuers was approved by another
// approver than the operator, which then decides nothing.
func issuanceRestricted(mi *meshv1alpha1.MeshInstance, crs []cmapi.CertificateRequest, now time.Time) metav1.Condition {
	var newest *cmapi.CertificateRequest
	for i := range crs {
		cr := &crs[i]
		if _, other := approvedByAnother(cr); !other || roleOf(mi, cr.Spec.IssuerRef) == notTheMesh ||
			now.Sub(cr.CreationTimestamp.Time) > foreignApprovalWindow {
			continue
		}
		if newest == nil || cr.CreationTimestamp.After(newest.CreationTimestamp.Time) {
			newest = cr
		}
	}
	if newest == nil {
		return condition(meshv1alpha1.ConditionIdentityIssuanceRestricted, metav1.ConditionTrue, meshv1alpha1.ReasonOnlyTheOperatorApproves,
			"The operator alone approves the CertificateRequests for the mesh's issuers")
	}
	by, _ := approvedByAnother(newest)
	return condition(meshv1alpha1.ConditionIdentityIssuanceRestricted, metav1.ConditionFalse, meshv1alpha1.ReasonApprovedByAnother, fmt.Sprintf(
		"CertificateRequest %s/%s for the mesh's issuer %s was approved by %q, not by the operator: "+
			"anyone who may create a Certificate can obtain any identity of the mesh. Run cert-manager without its default approver "+
			"(controller flag --controllers=*,-certificaterequests-approver; Helm value disableAutoApproval=true)",
		newest.Namespace, newest.Name, newest.Spec.IssuerRef.Name, by))
}

// deletingStatus is the status of mi, being deleted, while h still hold
// it: Deleting, waiting. Its observedGeneration stays that of the last
// status of its spec.
func deletingStatus(mi *meshv1alpha1.MeshInstance, h holders) meshv1alpha1.MeshInstanceStatus {
	st := *mi.Status.DeepCopy()
	conds := newConditionSet(st.Conditions, mi.Generation)
	conds.summarize(outcome{reason: meshv1alpha1.ReasonDeleting, message: h.message()})
	st.Conditions = conds.list
	return st
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
