package mesh

import (
	"cmp"
	"slices"
	"strings"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
)

// IngressSourceTarget is a backend an ingress source calls by endpoint address:
// an ingress controller in the mesh dials the endpoints of a Service, at
// their target port, not its virtual IP.
type IngressSourceTarget struct {
	Service ServiceKey
	// TargetPort is the IngressBackend's port: the endpoints' own.
	TargetPort int32
}

// IngressTargets are the backends the identity calls as an IngressBackend's
// source, sorted: empty for an identity no IngressBackend names.
func (m *Mesh) IngressTargets(id Identity) []IngressSourceTarget { return m.ingressTargets[id] }

// collectIngressTargets finds the ingress sources of the mesh: the meshed
// identities an IngressBackend of a member namespace names as a source, by
// a Service of the mesh (the identities of its endpoints with a proxy) or
// by an AuthenticatedPrincipal that is one of the mesh's identities (its
// SPIFFE ID, or OSM's name sa.namespace.trustDomain). IPRange sources name
// no identity. Only these groups' outbound listeners match the backends'
// endpoint addresses, so that no other caller's listener changes when a
// pod moves. Errors in the IngressBackend are the inbound side's to report.
func (b *builder) collectIngressTargets() {
	if len(b.in.IngressBackends) == 0 {
		return
	}
	out := map[Identity][]IngressSourceTarget{}
	for _, ib := range b.in.IngressBackends {
		if _, ok := b.members[ib.Namespace]; !ok || ib.DeletionTimestamp != nil {
			continue
		}
		var targets []IngressSourceTarget
		for _, be := range ib.Spec.Backends {
			if be.Port.Number >= 1 && be.Port.Number <= 65535 {
				targets = append(targets, IngressSourceTarget{Service: ServiceKey{ib.Namespace, be.Name}, TargetPort: be.Port.Number})
			}
		}
		for _, src := range ib.Spec.Sources {
			for _, id := range b.ingressSourceIdentities(src) {
				out[id] = append(out[id], targets...)
			}
		}
	}
	for id, ts := range out {
		slices.SortFunc(ts, func(a, c IngressSourceTarget) int {
			return cmp.Or(compareServiceKey(a.Service, c.Service), cmp.Compare(a.TargetPort, c.TargetPort))
		})
		out[id] = slices.Compact(ts)
	}
	b.m.ingressTargets = out
}

// ingressSourceIdentities are the meshed identities an IngressBackend
// source names.
func (b *builder) ingressSourceIdentities(src policyv1alpha1.IngressSource) []Identity {
	switch src.Kind {
	case policyv1alpha1.IngressSourceService:
		s := b.m.Service(ServiceKey{src.Namespace, src.Name})
		if s == nil {
			return nil
		}
		return identities(s.Endpoints, func(e Endpoint) bool { return !e.NoProxy })
	case policyv1alpha1.IngressSourceAuthenticatedPrincipal:
		if id, ok := principalIdentity(src.Name, b.m.TrustDomain); ok && b.holdsWorkloads(id.Namespace) {
			return []Identity{id}
		}
	}
	return nil
}

// principalIdentity reads a mesh identity from a certificate's subject
// alternative name: spiffe://trustDomain/ns/namespace/sa/name, or OSM's
// name.namespace.trustDomain.
func principalIdentity(name, trustDomain string) (Identity, bool) {
	if rest, ok := strings.CutPrefix(name, "spiffe://"+trustDomain+"/ns/"); ok {
		ns, sa, ok := strings.Cut(rest, "/sa/")
		if ok && ns != "" && sa != "" && !strings.Contains(sa, "/") {
			return Identity{Namespace: ns, ServiceAccount: sa}, true
		}
		return Identity{}, false
	}
	rest, ok := strings.CutSuffix(name, "."+trustDomain)
	if !ok {
		return Identity{}, false
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 || i == len(rest)-1 {
		return Identity{}, false
	}
	return Identity{Namespace: rest[i+1:], ServiceAccount: rest[:i]}, true
}
