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
	live := map[string]bool{}
	for _, g := range m.Groups {
		live[g.String()] = true
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
		if len(s.Services) > 0 {
			for g, d := range deps {
				if !live[g] || groups[g] || s.Within != "" && mesh.GroupNamespace(g) != s.Within {
					continue
				}
				for _, k := range s.Services {
					if d[k] {
						groups[g] = true
						break
					}
				}
			}
		}
		out = append(out, Policy{Scope: s, Mesh: m.Name, Groups: slices.Sorted(maps.Keys(groups)), Problems: bySource[s.Ref()+"\x00"+string(s.UID)]})
	}
	return out
}
