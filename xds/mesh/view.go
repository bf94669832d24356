package mesh

import (
	"maps"
	"slices"
)

// View is what one proxy group needs to know of the mesh: the services it may
// call, the services it serves, and the policies that guard them.
type View struct {
	Mesh  *Mesh
	Group Group
	// Outbound are the services the group may call, sorted.
	Outbound []*Service
	// Backends are the services the group reaches only as the backends of
	// the routes of its Outbound services (mesh routes), sorted: it has
	// their clusters, not their addresses.
	Backends []*Service
	// Inbound are the services the group's workloads back, sorted.
	Inbound []*Service
	// Policies are the TrafficTargets whose destination is the group's identity.
	Policies []*Policy
	// IPv6 says whether the group's proxies listen on IPv6 as well as IPv4.
	// A group whose workloads have addresses does when one of them has an
	// IPv6 address: a pod whose kernel has no IPv6 has none, and Envoy aborts
	// binding [::] there. A group with no address of its own (a client that
	// backs no Service) does when the cluster has IPv6 (Mesh.IPv6).
	IPv6 bool
	// Egress are the destinations outside the mesh the group may reach
	// (Egresses naming its identity, merged by port), and IngressTargets
	// the backends it calls by endpoint address as an IngressBackend's
	// source: an Envoy group's only.
	Egress         []EgressPort
	IngressTargets []IngressSourceTarget
}

// View returns the view of group g.
func (m *Mesh) View(g Group) *View {
	v := &View{Mesh: m, Group: g, Inbound: m.byIdentity[g.Identity], Policies: m.policiesTo[g.Identity]}
	v.IPv6 = v.listensOnIPv6()
	if g.Kind == ProxyEnvoy {
		v.Egress, v.IngressTargets = m.egress[g.Identity], m.ingressTargets[g.Identity]
	}
	var visible map[ServiceKey]bool
	scoped, ok := m.scoped[g.Identity.Namespace]
	switch {
	case m.Mode == ModePermissive && ok:
		// Every workload may call every service, but the namespace says
		// which it calls: those, with their splits' and routes' backends.
		visible = maps.Clone(scoped)
	case m.Mode == ModePermissive || g.Kind == ProxyGRPC:
		// A proxyless gRPC client sees every service, and the destination's
		// RBAC decides: a call SMI does not allow then fails with
		// PERMISSION_DENIED, as gRPC users expect, instead of a name that
		// never resolves.
		v.Outbound = m.Services
		return v
	default:
		visible = map[ServiceKey]bool{}
		for _, d := range m.destinations[g.Identity] {
			for _, s := range m.byIdentity[d] {
				visible[s.Key] = true
			}
		}
	}
	// A split makes its root and its backends one destination. Splits can
	// chain (a backend is the root of another split), so this runs until
	// nothing changes: one pass would depend on the order of the map.
	for changed := true; changed; {
		changed = false
		for _, sp := range m.Splits {
			on := visible[sp.Root]
			for _, be := range sp.Backends {
				on = on || visible[be.Service]
			}
			if !on {
				continue
			}
			for _, k := range append([]ServiceKey{sp.Root}, backendKeys(sp)...) {
				if !visible[k] {
					visible[k], changed = true, true
				}
			}
		}
	}
	// A route's backends are where its service's requests go. Only the
	// first hop is routed (GEP-1294): a backend's own routes do not apply
	// to what reaches it through a route, so one pass, and a backend the
	// group may not call itself is only a cluster to it (Backends).
	var backends []*Service
	for _, k := range m.routeBackends(g.Identity.Namespace, visible) {
		if s := m.Service(k); s != nil && !visible[k] {
			backends = append(backends, s)
		}
	}
	slices.SortFunc(backends, func(a, b *Service) int { return compareServiceKey(a.Key, b.Key) })
	v.Backends = slices.CompactFunc(backends, func(a, b *Service) bool { return a.Key == b.Key })
	v.Outbound = make([]*Service, 0, len(visible))
	for k := range visible {
		if s := m.Service(k); s != nil {
			v.Outbound = append(v.Outbound, s)
		}
	}
	slices.SortFunc(v.Outbound, func(a, b *Service) int { return compareServiceKey(a.Key, b.Key) })
	return v
}

// Dependencies are the services whose change changes the group's configuration.
func (v *View) Dependencies() []ServiceKey {
	var keys []ServiceKey
	for _, s := range v.Outbound {
		keys = append(keys, s.Key)
	}
	for _, s := range v.Inbound {
		keys = append(keys, s.Key)
	}
	for _, s := range v.Backends {
		keys = append(keys, s.Key)
	}
	// An IngressBackend lets in its Service sources' endpoint addresses.
	keys = append(keys, v.IngressSources()...)
	slices.SortFunc(keys, compareServiceKey)
	return slices.Compact(keys)
}

// InboundPorts are the target ports at which the group's workloads serve the
// service s, with the service port each serves, sorted by target port.
func (v *View) InboundPorts(s *Service) []InboundPort {
	seen := map[int32]bool{}
	var out []InboundPort
	for _, e := range s.Endpoints {
		if e.Identity != v.Group.Identity {
			continue
		}
		for _, p := range s.Ports {
			target, ok := e.Ports[p.Name]
			if !ok || seen[target] {
				continue
			}
			seen[target] = true
			out = append(out, InboundPort{Service: s, Port: p, TargetPort: target})
		}
	}
	slices.SortFunc(out, func(a, b InboundPort) int { return int(a.TargetPort - b.TargetPort) })
	return out
}

// InboundPort is a port at which a workload serves a service.
type InboundPort struct {
	Service    *Service
	Port       Port
	TargetPort int32
}

func backendKeys(sp *Split) []ServiceKey {
	keys := make([]ServiceKey, len(sp.Backends))
	for i, be := range sp.Backends {
		keys[i] = be.Service
	}
	return keys
}

func (v *View) listensOnIPv6() bool {
	own := false
	for _, s := range v.Inbound {
		for _, e := range s.Endpoints {
			if e.Identity != v.Group.Identity {
				continue
			}
			if isIPv6(e.Address) {
				return true
			}
			own = true
		}
	}
	return !own && v.Mesh.IPv6
}

// routeBackends are the backends of the route tables that route the
// callers of namespace to the visible services.
func (m *Mesh) routeBackends(namespace string, visible map[ServiceKey]bool) []ServiceKey {
	if len(m.Routes) == 0 {
		return nil
	}
	var out []ServiceKey
	for k := range visible {
		s := m.Service(k)
		if s == nil {
			continue
		}
		for _, p := range s.Ports {
			if t := m.RouteTable(namespace, k, p.Port); t != nil {
				out = append(out, t.backends()...)
			}
		}
	}
	return out
}
