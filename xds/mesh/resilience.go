package mesh

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
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

// A claim is a policy's resilience for a service port: a ResiliencePolicy's
// (section when its targetRef names the port) or an UpstreamTrafficSetting's
// (always the whole Service).
type claim struct {
	kind    string
	source  metav1.Object
	r       *meshv1alpha1.Resilience
	section bool
}

// name is the claim's policy as its loser's status names it.
func (c claim) name() string { return c.kind + " " + c.source.GetName() }

// precedes orders the claims of one port: a port's over a whole Service's,
// then the older, then by kind and name (all are of the Service's namespace).
func (c claim) precedes(o claim) int {
	return cmp.Or(
		-cmp.Compare(boolRank(c.section), boolRank(o.section)),
		c.source.GetCreationTimestamp().Compare(o.source.GetCreationTimestamp().Time),
		cmp.Compare(c.kind, o.kind),
		cmp.Compare(c.source.GetName(), o.source.GetName()),
	)
}

// collectResilience resolves the ResiliencePolicies and UpstreamTrafficSettings
// of member namespaces against their Services' ports.
func (b *builder) collectResilience() {
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
					claims[k] = append(claims[k], claim{"ResiliencePolicy", p, &p.Spec.Resilience, t.SectionName != nil})
				}
			}
		}
	}
	settings := b.upstreamTrafficSettings()
	for _, u := range settings {
		for _, port := range u.svc.Ports {
			k := PortKey{u.svc.Key, port.Port}
			claims[k] = append(claims[k], claim{"UpstreamTrafficSetting", u.setting, &u.r, false})
		}
	}
	if len(refs) == 0 && len(settings) == 0 {
		return
	}
	b.m.resilience = map[PortKey]*meshv1alpha1.Resilience{}
	// lost are the ports each policy lost, to whom: by kind, namespace/name.
	lost := map[string][]string{}
	for k, cs := range claims {
		slices.SortFunc(cs, claim.precedes)
		win := cs[0]
		b.m.resilience[k] = mergeResilience(b.m.spec.Resilience, win.r)
		for _, c := range cs[1:] {
			if c.source != win.source {
				key := c.kind + " " + c.source.GetNamespace() + "/" + c.source.GetName()
				lost[key] = append(lost[key], fmt.Sprintf("port %d of %s to %s", k.Port, k.Service, win.name()))
			}
		}
	}
	for _, r := range refs {
		b.m.ResilienceStatuses = append(b.m.ResilienceStatuses, b.resilienceStatus(r.p, r.i, lost["ResiliencePolicy "+r.p.Namespace+"/"+r.p.Name]))
	}
	// By policy, each policy's in spec order: two targetRefs of one Service
	// (sectionNames) keep their order, so the status does not churn.
	slices.SortStableFunc(b.m.ResilienceStatuses, func(a, c PolicyAncestorStatus) int {
		return cmp.Or(cmp.Compare(a.Namespace, c.Namespace), cmp.Compare(a.Name, c.Name))
	})
	for _, u := range settings {
		if l := lost["UpstreamTrafficSetting "+u.setting.Namespace+"/"+u.setting.Name]; len(l) > 0 {
			slices.Sort(l)
			b.problem("UpstreamTrafficSetting", u.setting, "another policy applies instead, on %s", strings.Join(l, ", "))
		}
	}
}

// upstreamSetting is an UpstreamTrafficSetting resolved: its Service and
// its settings in the mesh's model.
type upstreamSetting struct {
	setting *policyv1alpha1.UpstreamTrafficSetting
	svc     *Service
	r       meshv1alpha1.Resilience
}

// upstreamTrafficSettings resolves the UpstreamTrafficSettings of member
// namespaces: each host names a Service of the setting's namespace by its
// cluster DNS name, exactly, as OSM matched it. A setting's fields the
// model has no place for are reported, and the rest applies.
func (b *builder) upstreamTrafficSettings() []upstreamSetting {
	var out []upstreamSetting
	suffix := ".svc." + b.m.ClusterDomain
	for _, u := range b.in.UpstreamTrafficSettings {
		if _, ok := b.members[u.Namespace]; !ok || u.DeletionTimestamp != nil {
			continue
		}
		host := strings.ToLower(u.Spec.Host)
		if !strings.HasSuffix(host, suffix) {
			b.problem("UpstreamTrafficSetting", u, "host %q is not the name of a Service (<name>.%s%s): the mesh applies settings to its Services, not yet to an Egress's destinations", u.Spec.Host, u.Namespace, suffix)
			continue
		}
		name, ns, _ := strings.Cut(strings.TrimSuffix(host, suffix), ".")
		if ns != u.Namespace {
			// A setting tunes its own namespace's Services only: every
			// caller's proxies apply it, so another namespace's writers
			// must not decide it.
			b.problem("UpstreamTrafficSetting", u, "host %q is a Service of namespace %s: a setting applies to the Services of its own namespace (%s)", u.Spec.Host, ns, u.Namespace)
			continue
		}
		svc := b.m.Service(ServiceKey{ns, name})
		if svc == nil {
			b.problem("UpstreamTrafficSetting", u, "host %q: Service %s/%s is not a Service of mesh %s", u.Spec.Host, ns, name, b.m.Name)
			continue
		}
		r, unmapped := u.Resilience()
		if len(unmapped) > 0 {
			b.problem("UpstreamTrafficSetting", u, "not applied, the mesh has no such setting: %s", strings.Join(unmapped, ", "))
		}
		out = append(out, upstreamSetting{setting: u, svc: svc, r: r})
	}
	return out
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
