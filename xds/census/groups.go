package census

import (
	"cmp"
	"encoding/json"
	"maps"
	"slices"
	"strings"
)

// Groups are, per proxy group, what its connected proxies run: the census
// the leader reads to say how many proxies enforce a policy.
type Groups map[string]GroupState

// GroupState is what the connected proxies of one group run. One replica
// reports the version of the group's config it serves; a sum over replicas
// counts the proxies at each version, so that a replica still serving an
// older config shows its proxies as on that version.
type GroupState struct {
	// Connected is the number of the group's connected proxies.
	Connected int32 `json:"c"`
	// Version is the config version (cache.ConfigVersion) the replica
	// serves the group, and Holding the proxies that accepted all of it.
	// A replica's report only.
	Version string `json:"v,omitempty"`
	Holding int32  `json:"h,omitempty"`
	// Rejecting is the number of proxies whose last response of some type
	// they were sent they rejected.
	Rejecting int32 `json:"r,omitempty"`
	// Rejection is the detail of one of those rejections.
	Rejection string `json:"-"`
	// AtVersion counts, in a sum, the proxies holding each version.
	AtVersion map[string]int32 `json:"-"`
}

// Bounds of the group report a Lease carries: the groups with the most
// proxies, as many as MaxGroups and MaxGroupBytes of their entries allow,
// and the rejection details of the first groups by name. An entry takes
// about 60 bytes (2,000 groups, about 120 KB); the bounds keep a Lease's
// annotations within the API server's 256 KiB limit with room for the
// others (counts, failing groups, VMs, trust: a few KiB).
const (
	MaxGroups         = 4000
	MaxGroupBytes     = 160 << 10
	MaxRejections     = 16
	MaxRejectionBytes = 12 << 10
)

// entrySize is what a group's entry takes in the report's JSON.
func entrySize(name string, s GroupState) int {
	raw, _ := json.Marshal(s) // of numbers and a version: cannot fail
	// "<name>":{...}, with the quotes: a group's name (DNS labels and
	// slashes) needs no escaping.
	return len(name) + len(raw) + 4
}

// Add adds o, one replica's report, into g.
func (g Groups) Add(o Groups) {
	for name, s := range o {
		n := g[name]
		n.Connected += s.Connected
		n.Rejecting += s.Rejecting
		if s.Version != "" && s.Holding > 0 {
			if n.AtVersion == nil {
				n.AtVersion = map[string]int32{}
			}
			n.AtVersion[s.Version] += s.Holding
		}
		for v, c := range s.AtVersion {
			if n.AtVersion == nil {
				n.AtVersion = map[string]int32{}
			}
			n.AtVersion[v] += c
		}
		if n.Rejection == "" || s.Rejection != "" && s.Rejection < n.Rejection {
			n.Rejection = cmp.Or(s.Rejection, n.Rejection)
		}
		g[name] = n
	}
}

// bounded is g as a Lease carries it: the MaxGroups groups with the most
// proxies (then by name), and whether some were left out; and the
// rejection details of the first MaxRejections rejecting groups by name,
// each cut to MaxErrorBytes.
func (g Groups) bounded() (Groups, map[string]string, bool) {
	names := slices.Sorted(maps.Keys(g))
	slices.SortStableFunc(names, func(a, b string) int { return cmp.Compare(g[b].Connected, g[a].Connected) })
	size, keep := 0, 0
	for _, name := range names {
		n := entrySize(name, g[name])
		if keep == MaxGroups || size+n > MaxGroupBytes {
			break
		}
		size += n
		keep++
	}
	truncated := keep < len(names)
	names = names[:keep]
	slices.Sort(names)
	out := make(Groups, len(names))
	var rejections map[string]string
	rejectionBytes := 0
	for _, name := range names {
		s := g[name]
		if s.Rejection != "" && len(rejections) < MaxRejections {
			d := truncate(s.Rejection, MaxErrorBytes)
			// As encoded: JSON escapes some characters six times over.
			raw, _ := json.Marshal(d)
			if rejectionBytes+len(raw)+len(name) <= MaxRejectionBytes {
				if rejections == nil {
					rejections = map[string]string{}
				}
				rejections[name] = d
				rejectionBytes += len(raw) + len(name) + 4
			}
		}
		s.Rejection, s.AtVersion = "", nil
		out[name] = s
	}
	return out, rejections, truncated
}

// withRejections is g with the rejection details a Lease carries.
func (g Groups) withRejections(details map[string]string) {
	for name, d := range details {
		if s, ok := g[name]; ok {
			s.Rejection = strings.Clone(d)
			g[name] = s
		}
	}
}
