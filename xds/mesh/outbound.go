package mesh

import (
	"cmp"
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

// MaxOutboundPatterns bounds the spec.outbound.services of one namespace's
// MeshMembers together: a namespace naming more gets every service (the
// default, which is correct, only larger) and a problem.
const MaxOutboundPatterns = 1024

// collectOutbound records the services mm says its namespace's proxies
// call. MeshMembers of one namespace add up, and one that names none gives
// the namespace every service (all records those); scopeOutbound sorts
// and bounds them.
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
	if len(patterns) > MaxOutboundPatterns {
		b.problem("MeshMember", mm, "spec.outbound.services: the MeshMembers of namespace %s name more than %d services together; the namespace gets every service", ns, MaxOutboundPatterns)
		all[ns] = true
		delete(b.m.outbound, ns)
		return
	}
	b.m.outbound[ns] = patterns
}

// scopeOutbound sorts each namespace's patterns and, in a Permissive mesh,
// matches them against the services once: a namespace's groups share the
// result. Patterns are looked up by kind, so the cost is one pass over the
// services per scoped namespace, however many patterns it names.
func (b *builder) scopeOutbound() {
	for ns, patterns := range b.m.outbound {
		slices.SortFunc(patterns, func(a, b ServicePattern) int {
			return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
		})
		b.m.outbound[ns] = slices.Compact(patterns)
	}
	if b.m.Mode != ModePermissive || len(b.m.outbound) == 0 {
		return
	}
	b.m.scoped = make(map[string]map[ServiceKey]bool, len(b.m.outbound))
	for ns, patterns := range b.m.outbound {
		exact, namespaces, names := map[ServiceKey]bool{}, map[string]bool{}, map[string]bool{}
		every := false
		for _, p := range patterns {
			switch {
			case p.Namespace == "*" && p.Name == "*":
				every = true
			case p.Name == "*":
				namespaces[p.Namespace] = true
			case p.Namespace == "*":
				names[p.Name] = true
			default:
				exact[ServiceKey{p.Namespace, p.Name}] = true
			}
		}
		visible := map[ServiceKey]bool{}
		for _, s := range b.m.Services {
			if every || namespaces[s.Key.Namespace] || names[s.Key.Name] || exact[s.Key] {
				visible[s.Key] = true
			}
		}
		b.m.scoped[ns] = visible
	}
}
