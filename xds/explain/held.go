package explain

import (
	"fmt"
	"strings"

	"github.com/open-service-mesh/osm-operator/xds/cache"
	"github.com/open-service-mesh/osm-operator/xds/census"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// Held is what the connected proxies of a group run, as the census of the
// control plane's replicas says, against the config version explain
// computed from the same model: whether they hold the config the answer
// rests on. The census counts per group, not per proxy.
type Held struct {
	Group string
	// Version is the group's config version (cache.ConfigVersion) of the
	// resources explain translated.
	Version string
	// State is the census of the group; Listed says the census has it
	// (it has connected proxies).
	State  census.GroupState
	Listed bool
	// Truncated says that some replica left groups out of its census.
	Truncated bool
	// Err says why the census could not be read.
	Err error
}

// ConfigVersion is the config version the control plane publishes for r.
func ConfigVersion(r *translate.Resources) (string, error) {
	v, _, err := cache.VersionsOf(r)
	if err != nil {
		return "", fmt.Errorf("hashing the caller's resources: %w", err)
	}
	return cache.ConfigVersion(v), nil
}

// GroupVersion translates group g of m and returns its config version.
func GroupVersion(m *mesh.Mesh, g mesh.Group) (string, error) {
	r, err := translate.NewShared().Translate(m.View(g), nil)
	if err != nil {
		return "", err
	}
	return ConfigVersion(r)
}

// HeldBy is what the census c says of group at version.
func HeldBy(group, version string, c census.Census) Held {
	s, ok := c.Groups[group]
	return Held{Group: group, Version: version, State: s, Listed: ok, Truncated: c.Truncated}
}

// String says it in a line.
func (h Held) String() string {
	if h.Err != nil {
		return fmt.Sprintf("whether the proxies of %s hold this config (version %s): the census could not be read: %v", h.Group, h.Version, h.Err)
	}
	if !h.Listed {
		if h.Truncated {
			return fmt.Sprintf("the proxies of %s: not in the census, which leaves out some groups (config version %s)", h.Group, h.Version)
		}
		return fmt.Sprintf("the proxies of %s: none connected (config version %s)", h.Group, h.Version)
	}
	s := h.State
	holding := s.AtVersion[h.Version]
	var b strings.Builder
	fmt.Fprintf(&b, "the proxies of %s: %d/%d hold this config (version %s)", h.Group, holding, s.Connected, h.Version)
	var others []string
	for v, n := range s.AtVersion {
		if v != h.Version {
			others = append(others, fmt.Sprintf("%d at %s", n, v))
		}
	}
	if len(others) > 0 {
		fmt.Fprintf(&b, "; %s (the control plane serves another config: the cluster changed since it read it, or explain's --cluster-domain is not the operator's)", strings.Join(others, ", "))
	}
	if pending := s.Connected - sum(s.AtVersion); pending > 0 {
		fmt.Fprintf(&b, "; %d have not acknowledged a whole config yet", pending)
	}
	if s.Rejecting > 0 {
		fmt.Fprintf(&b, "; %d rejected their last config", s.Rejecting)
		if s.Rejection != "" {
			fmt.Fprintf(&b, ": %s", s.Rejection)
		}
	}
	return b.String()
}

func sum(m map[string]int32) int32 {
	var t int32
	for _, n := range m {
		t += n
	}
	return t
}
