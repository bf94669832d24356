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
			"mesh %s left out what does not resolve (what it would allow is denied): %s", f.mesh, strings.Join(f.problems, "; ")), maxPolicyMessage)}, ""
	case f.egressAllowed:
		return outcome{}, fmt.Sprintf("In effect in mesh %s, whose spec.egress.mode Allow lets every workload out already: the Egress restricts nothing until the mode is Deny", f.mesh)
	}
	if w := unresolvedParts(f.ingress); len(w) > 0 {
		return outcome{}, truncate(fmt.Sprintf("In effect in mesh %s; not resolved yet, so letting no caller in: %s", f.mesh, strings.Join(w, "; ")), maxPolicyMessage)
	}
	return outcome{}, fmt.Sprintf("In effect in mesh %s", f.mesh)
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
	if o.ready() {
		st.CurrentStatus, st.Reason = policyv1alpha1.IngressBackendCommitted, msg
	} else {
		st.CurrentStatus, st.Reason = policyv1alpha1.IngressBackendError, o.message
	}
	st.Backends, st.Sources = nil, nil
	if f.ingress != nil {
		st.Backends, st.Sources = partStatuses(f.ingress.Backends), partStatuses(f.ingress.Sources)
	}
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

// policyReport is a policy as read (before) and with the status its facts
// mean (obj), for reportStatus.
type policyReport struct {
	obj, before statusObject
}

// meshPolicyReports are the statuses of the IngressBackends and Egresses of
// in that mesh mi reads, those of its member namespaces, from the problems
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
	var out []policyReport
	for _, ib := range in.IngressBackends {
		if !members[ib.Namespace] || !ib.DeletionTimestamp.IsZero() {
			continue
		}
		obj := ib.DeepCopy()
		obj.Status = ingressBackendStatus(ib, policyFacts{
			mesh: mi.Name, problems: problemsOf("IngressBackend", ib, problems), ingress: resolved[ib.Namespace+"/"+ib.Name],
		})
		out = append(out, policyReport{obj: obj, before: ib.DeepCopy()})
	}
	for _, eg := range in.Egresses {
		if !members[eg.Namespace] || !eg.DeletionTimestamp.IsZero() {
			continue
		}
		obj := eg.DeepCopy()
		obj.Status = egressStatus(eg, policyFacts{
			mesh: mi.Name, problems: problemsOf("Egress", eg, problems), egressAllowed: mi.Spec.Egress.Mode == meshv1alpha1.EgressAllow,
		})
		out = append(out, policyReport{obj: obj, before: eg.DeepCopy()})
	}
	return out
}
