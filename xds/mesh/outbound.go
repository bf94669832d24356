package mesh

import (
	"fmt"
	"slices"
	"strings"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// ServicePattern is one entry of a MeshMember's spec.outbound.services:
// the services of a namespace, or of every namespace ("*"), one or all
// ("*") of them.
type ServicePattern struct {
	Namespace, Name string
}

func (p ServicePattern) String() string { return p.Namespace + "/" + p.Name }

// Matches says whether the pattern names service k.
func (p ServicePattern) Matches(k ServiceKey) bool {
	return (p.Namespace == "*" || p.Namespace == k.Namespace) && (p.Name == "*" || p.Name == k.Name)
}

// ParseServicePattern reads "<namespace>/<service>" as a MeshMember of
// namespace writes it: "." is its own namespace.
func ParseServicePattern(namespace, s string) (ServicePattern, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return ServicePattern{}, fmt.Errorf("%q is not <namespace>/<service>", s)
	}
	if ns == "." {
		ns = namespace
	}
	return ServicePattern{Namespace: ns, Name: name}, nil
}

// collectOutbound records the services mm says its namespace's proxies
// call. MeshMembers of one namespace add up, and one that names none gives
// the namespace every service (all records those).
func (b *builder) collectOutbound(mm *meshv1alpha1.MeshMember, all map[string]bool) {
	ns := mm.Namespace
	if all[ns] {
		return
	}
	if len(mm.Spec.Outbound.Services) == 0 {
		all[ns] = true
		delete(b.m.outbound, ns)
		return
	}
	patterns := b.m.outbound[ns]
	for _, s := range mm.Spec.Outbound.Services {
		p, err := ParseServicePattern(ns, s)
		if err != nil {
			// The API server checks the pattern; an object it did not
			// check loses the entry, not the namespace's other ones.
			b.problem("MeshMember", mm, "spec.outbound.services: %w", err)
			continue
		}
		patterns = append(patterns, p)
	}
	slices.SortFunc(patterns, func(a, b ServicePattern) int { return strings.Compare(a.String(), b.String()) })
	b.m.outbound[ns] = slices.Compact(patterns)
}

// Outbound are the services the MeshMembers of namespace say its proxies
// call, and whether they say so (false: every service).
func (m *Mesh) Outbound(namespace string) ([]ServicePattern, bool) {
	p, ok := m.outbound[namespace]
	return p, ok
}

// scopeOutbound matches, in a Permissive mesh, each namespace's patterns
// against the services once: a namespace's groups share the result.
func (b *builder) scopeOutbound() {
	if b.m.Mode != ModePermissive || len(b.m.outbound) == 0 {
		return
	}
	b.m.scoped = make(map[string]map[ServiceKey]bool, len(b.m.outbound))
	for ns, patterns := range b.m.outbound {
		visible := map[ServiceKey]bool{}
		for _, s := range b.m.Services {
			for _, p := range patterns {
				if p.Matches(s.Key) {
					visible[s.Key] = true
					break
				}
			}
		}
		b.m.scoped[ns] = visible
	}
}
