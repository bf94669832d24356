package mesh

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// The resilience of a service port: the mesh's defaults (MeshInstance
// spec.resilience), overridden by the ResiliencePolicies that target the
// Service, one part (connections, outlierDetection, ...) at a time. Of two
// policies targeting the same port, one naming the port (sectionName) wins
// over one naming the whole Service, then the older, then the first by
// name, as Gateway API merges policies; the loser is Conflicted there.

// PortKey names a service port.
type PortKey struct {
	Service ServiceKey
	Port    int32
}

// PolicyAncestorStatus is what the mesh makes of one targetRef of a
// ResiliencePolicy: its status.ancestors entry for the Service.
type PolicyAncestorStatus struct {
	Namespace, Name string
	Generation      int64
	Target          gwv1.LocalPolicyTargetReferenceWithSectionName
	// Accepted is the entry's condition: Accepted, or not with reason
	// Conflicted, TargetNotFound or Invalid.
	Accepted RouteCondition
}

// Resilience returns the resilience of port of s: nil when neither the
// mesh nor a policy sets any.
func (m *Mesh) Resilience(s ServiceKey, port int32) *meshv1alpha1.Resilience {
	if r, ok := m.resilience[PortKey{s, port}]; ok {
		return r
	}
	return m.spec.Resilience
}

// collectResilience resolves the ResiliencePolicies of member namespaces
// against their Services' ports.
func (b *builder) collectResilience() {
	type claim struct {
		policy  *meshv1alpha1.ResiliencePolicy
		section bool
	}
	claims := map[PortKey][]claim{}
	type ref struct {
		p *meshv1alpha1.ResiliencePolicy
		i int
	}
	var refs []ref
	for _, p := range b.in.ResiliencePolicies {
		if _, ok := b.members[p.Namespace]; !ok || p.DeletionTimestamp != nil {
			continue
		}
		for i, t := range p.Spec.TargetRefs {
			refs = append(refs, ref{p, i})
			svc := b.m.Service(ServiceKey{p.Namespace, string(t.Name)})
			if svc == nil || t.Group != "" || t.Kind != "Service" {
				continue
			}
			for _, port := range svc.Ports {
				if t.SectionName == nil || string(*t.SectionName) == port.Name {
					k := PortKey{svc.Key, port.Port}
					claims[k] = append(claims[k], claim{p, t.SectionName != nil})
				}
			}
		}
	}
	if len(refs) == 0 {
		return
	}
	older := func(a, c claim) int {
		return cmp.Or(
			-cmp.Compare(boolRank(a.section), boolRank(c.section)),
			a.policy.CreationTimestamp.Compare(c.policy.CreationTimestamp.Time),
			strings.Compare(a.policy.Name, c.policy.Name),
		)
	}
	b.m.resilience = map[PortKey]*meshv1alpha1.Resilience{}
	// lost are the ports each policy lost, to whom: by namespace/name.
	lost := map[string][]string{}
	for k, cs := range claims {
		slices.SortFunc(cs, older)
		win := cs[0].policy
		r := mergeResilience(b.m.spec.Resilience, &win.Spec.Resilience)
		b.m.resilience[k] = r
		for _, c := range cs[1:] {
			if c.policy != win {
				key := c.policy.Namespace + "/" + c.policy.Name
				lost[key] = append(lost[key], fmt.Sprintf("port %d of %s to %s", k.Port, k.Service, win.Name))
			}
		}
	}
	for _, r := range refs {
		b.m.ResilienceStatuses = append(b.m.ResilienceStatuses, b.resilienceStatus(r.p, r.i, lost[r.p.Namespace+"/"+r.p.Name]))
	}
	// By policy, each policy's in spec order: two targetRefs of one Service
	// (sectionNames) keep their order, so the status does not churn.
	slices.SortStableFunc(b.m.ResilienceStatuses, func(a, c PolicyAncestorStatus) int {
		return cmp.Or(cmp.Compare(a.Namespace, c.Namespace), cmp.Compare(a.Name, c.Name))
	})
}

// resilienceStatus is the status of the i-th targetRef of p, which lost
// the ports lost to other policies.
func (b *builder) resilienceStatus(p *meshv1alpha1.ResiliencePolicy, i int, lost []string) PolicyAncestorStatus {
	t := p.Spec.TargetRefs[i]
	st := PolicyAncestorStatus{Namespace: p.Namespace, Name: p.Name, Generation: p.Generation, Target: t}
	fail := func(reason gwv1.PolicyConditionReason, format string, args ...any) PolicyAncestorStatus {
		st.Accepted = RouteCondition{Reason: string(reason), Message: fmt.Sprintf(format, args...)}
		b.problem("ResiliencePolicy", p, "targetRefs[%d]: %s", i, st.Accepted.Message)
		return st
	}
	key := ServiceKey{p.Namespace, string(t.Name)}
	svc := b.m.Service(key)
	if svc == nil {
		return fail(gwv1.PolicyReasonTargetNotFound, "Service %s is not a Service of mesh %s", key, b.m.Name)
	}
	if t.SectionName != nil && !slices.ContainsFunc(svc.Ports, func(port Port) bool { return port.Name == string(*t.SectionName) }) {
		return fail(gwv1.PolicyReasonTargetNotFound, "Service %s has no port named %q", key, *t.SectionName)
	}
	if len(lost) > 0 {
		slices.Sort(lost)
		return fail(gwv1.PolicyReasonConflicted, "another policy applies instead, on %s", strings.Join(lost, ", "))
	}
	st.Accepted = RouteCondition{OK: true, Reason: string(gwv1.PolicyReasonAccepted), Message: fmt.Sprintf("Applies to Service %s in mesh %s", key, b.m.Name)}
	return st
}

// mergeResilience is r over the defaults def, field by field: what r sets
// replaces the default, what it leaves unset keeps it (so a policy setting
// maxRequests keeps the mesh's maxConnections). Faults are never a default.
func mergeResilience(def, r *meshv1alpha1.Resilience) *meshv1alpha1.Resilience {
	if def == nil {
		return r
	}
	out := def.DeepCopy()
	out.Fault = nil
	// The API types' JSON names what is set: decoding r's over a copy of
	// the defaults sets exactly those fields.
	raw, err := json.Marshal(r)
	if err == nil {
		err = json.Unmarshal(raw, out)
	}
	if err != nil {
		return r // cannot happen with the API's own types
	}
	return out
}
