package controllers

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// The status of the OSM policy kinds, IngressBackend and Egress: whether a
// mesh reads the policy, and whether it could use all of it. The mesh that
// holds the policy's namespace writes it (meshinstance_policies.go), from
// the problems its model reports with the policy as Source; the policy
// reconciler (policy_controller.go) writes it for a policy no mesh reads.

// policyFacts are what decides the status of a policy.
type policyFacts struct {
	// mesh is the mesh that reads the policy, "" when none does.
	mesh string
	// label is the mesh the policy's namespace is labelled for when no
	// mesh reads it: "" for none, else a mesh that does not exist.
	label string
	// problems are the model's, with the policy as their Source.
	problems []string
	// egressAllowed says that the mesh lets every workload out: an Egress
	// then adds nothing.
	egressAllowed bool
	// ingress is the mesh's resolution of an IngressBackend: how each
	// backend and source resolved. nil when no mesh reads it.
	ingress *mesh.IngressBackend
}

// maxPolicyMessage bounds a policy's condition message, in bytes: the API
// server refuses a condition message past 32 kB, which would leave the
// whole status unwritten, and a problem quotes what the user wrote.
const maxPolicyMessage = 4096

// policyOutcome is the outcome of a policy of kind in namespace, and the
// message of its Ready condition when it is ready.
func policyOutcome(kind, namespace string, f policyFacts) (outcome, string) {
	switch {
	case f.mesh == "" && f.label != "":
		return outcome{reason: meshv1alpha1.ReasonMeshNotFound, message: fmt.Sprintf(
			"namespace %s is labelled for mesh %s, which does not exist or is being deleted: no mesh reads this %s", namespace, f.label, kind)}, ""
	case f.mesh == "":
		return outcome{reason: policyv1alpha1.ReasonNamespaceNotInMesh, stalled: true, message: fmt.Sprintf(
			"namespace %s is a member of no mesh: no mesh reads this %s; it takes effect once the namespace joins one (a MeshMember, or the label %s=<mesh>)",
			namespace, kind, meshv1alpha1.MonitorLabel)}, ""
	case len(f.problems) > 0:
		return outcome{reason: policyv1alpha1.ReasonLeftOut, stalled: true, message: truncate(fmt.Sprintf(
			"mesh %s left out what does not resolve (%s): %s", f.mesh, leftOutMeans(kind), strings.Join(f.problems, "; ")), maxPolicyMessage)}, ""
	case f.egressAllowed:
		return outcome{}, fmt.Sprintf("In effect in mesh %s, whose spec.egress.mode Allow lets every workload out already: the Egress restricts nothing until the mode is Deny", f.mesh)
	}
	if w := unresolvedParts(f.ingress); len(w) > 0 {
		return outcome{}, truncate(fmt.Sprintf("In effect in mesh %s; not resolved yet, so letting no caller in: %s", f.mesh, strings.Join(w, "; ")), maxPolicyMessage)
	}
	return outcome{}, fmt.Sprintf("In effect in mesh %s", f.mesh)
}

// leftOutMeans is what a part of a policy of kind that the mesh leaves out
// comes to.
func leftOutMeans(kind string) string {
	switch kind {
	case "UpstreamTrafficSetting":
		return "its callers keep the mesh's defaults for what is left out"
	case "Retry":
		return "no retries where it is left out"
	case "TrafficSplit":
		return "its root service's traffic is not split"
	}
	return "what it would allow is denied"
}

// policyConditions are the conditions of a policy of kind, generation and
// conditions prev, that f means.
func policyConditions(kind, namespace string, generation int64, prev []metav1.Condition, f policyFacts) ([]metav1.Condition, outcome, string) {
	o, msg := policyOutcome(kind, namespace, f)
	conds := newConditionSet(prev, generation)
	conds.summarize(o)
	if o.ready() {
		conds.set(condition(meshv1alpha1.ConditionReady, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, msg))
	}
	return conds.list, o, msg
}

// ingressBackendStatus is the status of ib that f means: its conditions,
// and OSM's currentStatus and reason for the tools written for OSM.
func ingressBackendStatus(ib *policyv1alpha1.IngressBackend, f policyFacts) policyv1alpha1.IngressBackendStatus {
	st := *ib.Status.DeepCopy()
	var o outcome
	var msg string
	st.Conditions, o, msg = policyConditions("IngressBackend", ib.Namespace, ib.Generation, st.Conditions, f)
	st.ObservedGeneration = ib.Generation
	st.CurrentStatus, st.Reason = osmSummary(o, msg)
	st.Backends, st.Sources = nil, nil
	if f.ingress != nil {
		st.Backends, st.Sources = partStatuses(f.ingress.Backends), partStatuses(f.ingress.Sources)
	}
	return st
}

// upstreamTrafficSettingStatus is the status of u that f means: its
// conditions, and OSM's currentStatus and reason.
func upstreamTrafficSettingStatus(u *policyv1alpha1.UpstreamTrafficSetting, f policyFacts) policyv1alpha1.UpstreamTrafficSettingStatus {
	st := *u.Status.DeepCopy()
	var o outcome
	var msg string
	st.Conditions, o, msg = policyConditions("UpstreamTrafficSetting", u.Namespace, u.Generation, st.Conditions, f)
	st.ObservedGeneration = u.Generation
	st.CurrentStatus, st.Reason = osmSummary(o, msg)
	return st
}

// osmSummary is OSM's currentStatus and reason of a policy of outcome o,
// whose Ready message is msg when it is ready.
func osmSummary(o outcome, msg string) (string, string) {
	if o.ready() {
		return policyv1alpha1.IngressBackendCommitted, msg
	}
	return policyv1alpha1.IngressBackendError, o.message
}

// retryStatus is the status of r that f means.
func retryStatus(r *policyv1alpha1.Retry, f policyFacts) policyv1alpha1.RetryStatus {
	st := *r.Status.DeepCopy()
	st.Conditions, _, _ = policyConditions("Retry", r.Namespace, r.Generation, st.Conditions, f)
	st.ObservedGeneration = r.Generation
	return st
}

// unresolvedParts describe the backends and sources of ib (nil for none)
// that did not resolve.
func unresolvedParts(ib *mesh.IngressBackend) []string {
	if ib == nil {
		return nil
	}
	var out []string
	for _, l := range []struct {
		what  string
		parts []mesh.PartState
	}{{"backend", ib.Backends}, {"source", ib.Sources}} {
		for _, p := range l.parts {
			if !p.Resolved {
				out = append(out, l.what+" "+p.Name+": "+p.Message)
			}
		}
	}
	return out
}

// partStatuses are the status entries of an IngressBackend's parts, cut
// to the CRD's limits (a part quotes what the user wrote).
func partStatuses(parts []mesh.PartState) []policyv1alpha1.IngressBackendPartStatus {
	out := make([]policyv1alpha1.IngressBackendPartStatus, 0, min(len(parts), 64))
	for _, p := range parts[:min(len(parts), 64)] {
		out = append(out, policyv1alpha1.IngressBackendPartStatus{Name: truncate(p.Name, 320), Resolved: p.Resolved, Message: truncate(p.Message, 1024)})
	}
	return out
}

// egressStatus is the status of eg that f means.
func egressStatus(eg *policyv1alpha1.Egress, f policyFacts) policyv1alpha1.EgressStatus {
	st := *eg.Status.DeepCopy()
	st.Conditions, _, _ = policyConditions("Egress", eg.Namespace, eg.Generation, st.Conditions, f)
	st.ObservedGeneration = eg.Generation
	return st
}

// problemsOf are the messages of the problems of obj, a policy of kind:
// those naming it whose Source is it (by UID: an object deleted and made
// again under its name is another policy).
func problemsOf(kind string, obj metav1.Object, problems []mesh.Problem) []string {
	name := kind + " " + obj.GetNamespace() + "/" + obj.GetName()
	var out []string
	for _, p := range problems {
		if p.Object == name && p.Source != nil && p.Source.GetUID() == obj.GetUID() {
			out = append(out, p.Err.Error())
		}
	}
	return out
}

// appendReports appends to out the reports of the policies of member
// namespaces that are not being deleted: each a copy of the cache's policy
// p, whose status setStatus(p, copy) sets.
func appendReports[T any, P interface {
	*T
	statusObject
	DeepCopy() *T
}](out []policyReport, policies []P, members map[string]bool, setStatus func(p, obj P)) []policyReport {
	for _, p := range policies {
		if !members[p.GetNamespace()] || !p.GetDeletionTimestamp().IsZero() {
			continue
		}
		obj := P(p.DeepCopy())
		setStatus(p, obj)
		out = append(out, policyReport{obj: obj, before: P(p.DeepCopy())})
	}
	return out
}

// policyReport is a policy as read (before) and with the status its facts
// mean (obj), for reportStatus.
type policyReport struct {
	obj, before statusObject
}

// meshPolicyReports are the statuses of the policy.openservicemesh.io
// policies of in that mesh mi reads, those of its member namespaces, from the problems
// its model reported. The policies of in are the cache's: each report
// holds copies.
func meshPolicyReports(mi *meshv1alpha1.MeshInstance, namespaces []string, in mesh.Inputs, m *mesh.Mesh, problems []mesh.Problem) []policyReport {
	members := make(map[string]bool, len(namespaces))
	for _, ns := range namespaces {
		members[ns] = true
	}
	resolved := make(map[string]*mesh.IngressBackend, len(m.IngressBackends))
	for _, ib := range m.IngressBackends {
		resolved[ib.Namespace+"/"+ib.Name] = ib
	}
	facts := func(kind string, obj metav1.Object) policyFacts {
		return policyFacts{mesh: mi.Name, problems: problemsOf(kind, obj, problems)}
	}
	var out []policyReport
	out = appendReports(out, in.IngressBackends, members, func(ib, obj *policyv1alpha1.IngressBackend) {
		f := facts("IngressBackend", ib)
		f.ingress = resolved[ib.Namespace+"/"+ib.Name]
		obj.Status = ingressBackendStatus(ib, f)
	})
	out = appendReports(out, in.UpstreamTrafficSettings, members, func(u, obj *policyv1alpha1.UpstreamTrafficSetting) {
		obj.Status = upstreamTrafficSettingStatus(u, facts("UpstreamTrafficSetting", u))
	})
	out = appendReports(out, in.Retries, members, func(r, obj *policyv1alpha1.Retry) {
		obj.Status = retryStatus(r, facts("Retry", r))
	})
	out = appendReports(out, in.Egresses, members, func(eg, obj *policyv1alpha1.Egress) {
		f := facts("Egress", eg)
		f.egressAllowed = mi.Spec.Egress.Mode == meshv1alpha1.EgressAllow
		obj.Status = egressStatus(eg, f)
	})
	return out
}
