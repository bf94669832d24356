package mesh

import (
	"cmp"
	"slices"

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

// collectIngressTargets finds the meshed ingress controllers: the
// identities of the endpoints with a proxy of a Service an IngressBackend of
// a member namespace names as a source. They call its http backends by
// endpoint address, their sidecars carrying the plaintext HTTP in the mesh's
// mutual TLS, and SMI authorizes them like any other mesh client. An https
// backend is none of their endpoint targets: a controller sends its own TLS
// there, which a sidecar's HTTP chain would break. AuthenticatedPrincipal
// sources name certificates of callers outside the mesh and IPRange sources
// addresses: neither names a meshed group. Only these groups' outbound
// listeners match the backends' endpoint addresses, so that no other
// caller's listener changes when a pod moves. Errors in the IngressBackend
// are the inbound side's to report.
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
			if be.Port.Protocol.Canonical() == policyv1alpha1.BackendProtocolHTTP && be.Port.Number >= 1 && be.Port.Number <= 65535 {
				targets = append(targets, IngressSourceTarget{Service: ServiceKey{ib.Namespace, be.Name}, TargetPort: be.Port.Number})
			}
		}
		if len(targets) == 0 {
			continue
		}
		for _, src := range ib.Spec.Sources {
			if src.Kind != policyv1alpha1.IngressSourceService {
				continue
			}
			s := b.m.Service(ServiceKey{src.Namespace, src.Name})
			if s == nil {
				continue
			}
			for _, id := range identities(s.Endpoints, func(e Endpoint) bool { return !e.NoProxy }) {
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
