package runner

import (
	"maps"
	"slices"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// Policy is what one policy object configures, as the last sync of its
// mesh found: the leader's Enforced condition counts the proxies of its
// groups that run the config this runner published for them.
type Policy struct {
	mesh.Scope
	// Mesh is the mesh that reads the policy.
	Mesh string
	// Groups are the keys of the proxy groups the policy configures:
	// those of its identities, and those depending on its services.
	Groups []string
	// Problems are what the model left out of it.
	Problems []string
}

// Policies returns the policies of every mesh as the last sync found them,
// sorted by mesh, then as mesh.Scopes sorts them. The caller must not
// change them.
func (r *Runner) Policies() []Policy {
	r.pmu.Lock()
	defer r.pmu.Unlock()
	var out []Policy
	for _, name := range slices.Sorted(maps.Keys(r.policies)) {
		out = append(out, r.policies[name]...)
	}
	return out
}

// policiesOf resolves the scopes of mesh m's policies to its groups; deps
// are the services each published group depends on.
func policiesOf(in *mesh.Inputs, m *mesh.Mesh, problems []mesh.Problem, deps map[string]map[mesh.ServiceKey]bool) []Policy {
	scopes := mesh.Scopes(in, m)
	if len(scopes) == 0 {
		return nil
	}
	byIdentity := map[mesh.Identity][]string{}
	for _, g := range m.Groups {
		byIdentity[g.Identity] = append(byIdentity[g.Identity], g.String())
	}
	// The groups depending on each service a scope names, from one walk of
	// the live groups' dependencies (each group's, or the services named,
	// whichever is fewer: a Permissive group depends on every service).
	named := map[mesh.ServiceKey]bool{}
	for _, s := range scopes {
		for _, k := range s.Services {
			named[k] = true
		}
	}
	callers := map[mesh.ServiceKey][]string{}
	if len(named) > 0 {
		for _, g := range m.Groups {
			key := g.String()
			d := deps[key]
			if len(d) <= len(named) {
				for k := range d {
					if named[k] {
						callers[k] = append(callers[k], key)
					}
				}
				continue
			}
			for k := range named {
				if d[k] {
					callers[k] = append(callers[k], key)
				}
			}
		}
	}
	bySource := map[string][]string{}
	for _, p := range problems {
		if p.Source != nil {
			k := p.Object + "\x00" + string(p.Source.GetUID())
			bySource[k] = append(bySource[k], p.Err.Error())
		}
	}
	out := make([]Policy, 0, len(scopes))
	for _, s := range scopes {
		groups := map[string]bool{}
		for _, id := range s.Identities {
			for _, g := range byIdentity[id] {
				groups[g] = true
			}
		}
		for _, k := range s.Services {
			for _, g := range callers[k] {
				if s.Within == "" || mesh.GroupNamespace(g) == s.Within {
					groups[g] = true
				}
			}
		}
		out = append(out, Policy{Scope: s, Mesh: m.Name, Groups: slices.Sorted(maps.Keys(groups)), Problems: bySource[s.Ref()+"\x00"+string(s.UID)]})
	}
	return out
}
