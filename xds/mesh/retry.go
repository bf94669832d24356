package mesh

import (
	"cmp"
	"slices"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
)

// OSM's Retry: the workloads of a service account retry their failed
// requests to some Services. A Retry decides what its source's proxies do,
// so only the writers of the source's namespace may: a Retry naming a
// source of another namespace is left out. Of two Retries of one source and
// destination, the older applies (then the first by name), and the other is
// reported for that destination.

// RetryTo is how caller retries its failed requests to s: nil when no
// Retry says.
func (m *Mesh) RetryTo(caller Identity, s ServiceKey) *policyv1alpha1.RetryPolicy {
	return m.retries[caller][s]
}

// collectRetries resolves the Retries of member namespaces.
func (b *builder) collectRetries() {
	var retries []*policyv1alpha1.Retry
	for _, r := range b.in.Retries {
		if _, ok := b.members[r.Namespace]; !ok || r.DeletionTimestamp != nil {
			continue
		}
		src := r.Spec.Source
		if src.Kind != policyv1alpha1.RetrySourceServiceAccount || src.Namespace != r.Namespace {
			b.problem("Retry", r, "spec.source: service account %s/%s is not of namespace %s: a Retry applies to the service accounts of its own namespace", src.Namespace, src.Name, r.Namespace)
			continue
		}
		retries = append(retries, r)
	}
	if len(retries) == 0 {
		return
	}
	slices.SortFunc(retries, func(a, c *policyv1alpha1.Retry) int {
		return cmp.Or(a.CreationTimestamp.Compare(c.CreationTimestamp.Time), cmp.Compare(a.Name, c.Name))
	})
	b.m.retries = map[Identity]map[ServiceKey]*policyv1alpha1.RetryPolicy{}
	// owner is the Retry that applies to each source and destination.
	owner := map[Identity]map[ServiceKey]string{}
	for _, r := range retries {
		id := Identity{Namespace: r.Namespace, ServiceAccount: ServiceAccountOf(r.Spec.Source.Name)}
		policy := r.Policy()
		if b.m.retries[id] == nil {
			b.m.retries[id], owner[id] = map[ServiceKey]*policyv1alpha1.RetryPolicy{}, map[ServiceKey]string{}
		}
		for i, d := range r.Spec.Destinations {
			k := ServiceKey{d.Namespace, d.Name}
			switch {
			case d.Kind != policyv1alpha1.RetryDestinationService:
				b.problem("Retry", r, "spec.destinations[%d]: kind %q is not Service", i, d.Kind)
			case b.m.Service(k) == nil:
				b.problem("Retry", r, "spec.destinations[%d]: Service %s is not a Service of mesh %s; no retries to it", i, k, b.m.Name)
			case owner[id][k] != "":
				b.problem("Retry", r, "spec.destinations[%d]: Retry %s applies instead to %s from %s", i, owner[id][k], k, id)
			default:
				b.m.retries[id][k], owner[id][k] = &policy, r.Name
			}
		}
	}
}
