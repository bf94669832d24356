// Package enforcement judges whether a policy is in force on the proxies it
// configures: how many of the connected proxies of its groups have accepted
// the config this control plane published after reading the policy's
// generation. It is pure: the leader's status writer gives it the policy's
// groups (runner.Policy), the config version of each group this replica
// serves, the groups that failed to translate, and the census of what every
// replica's proxies run.
package enforcement

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/open-service-mesh/osm-operator/xds/census"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// ConditionEnforced is the condition type.
const ConditionEnforced = "Enforced"

// Reasons of the condition.
const (
	// ReasonEnforced: every connected proxy of the policy's groups runs the
	// config that includes its generation.
	ReasonEnforced = "Enforced"
	// ReasonPending: some run an older config (not pushed or not accepted yet).
	ReasonPending = "Pending"
	// ReasonRejected: some proxies rejected the config.
	ReasonRejected = "Rejected"
	// ReasonTranslationFailed: a group's config could not be built; its
	// proxies keep their last good config.
	ReasonTranslationFailed = "TranslationFailed"
	// ReasonNoProxies: no connected proxy is configured by the policy.
	ReasonNoProxies = "NoProxies"
	// ReasonInactive: the mesh enforces nothing of the policy (a
	// Permissive mesh's TrafficTargets).
	ReasonInactive = "Inactive"
	// ReasonUnknown: the census does not say (a replica left groups out).
	ReasonUnknown = "CensusIncomplete"
)

// Facts are what decides a policy's Enforced condition.
type Facts struct {
	// Namespace and Generation are the policy's, the generation the
	// model read.
	Namespace  string
	Generation int64
	// Groups are the keys of the proxy groups the policy configures.
	Groups []string
	// Inactive says why the mesh enforces nothing of it ("" when it does).
	Inactive string
	// Current is the config version (cache.ConfigVersion) of each group
	// this replica published after reading Generation.
	Current map[string]string
	// Failing are the groups whose last translation failed, with the error.
	Failing map[string]string
	// Census is what the connected proxies of every replica run.
	Census census.Groups
	// Truncated says that some replica left groups out of the census.
	Truncated bool
}

// maxMessage bounds the message: the API server refuses past 32 kB, and a
// rejection quotes what a proxy said.
const maxMessage = 2048

// maxNamed is how many groups a message names.
const maxNamed = 4

// Condition is the Enforced condition the facts mean (no transition time).
func Condition(f Facts) metav1.Condition {
	c := metav1.Condition{Type: ConditionEnforced, ObservedGeneration: f.Generation}
	set := func(s metav1.ConditionStatus, reason, msg string) metav1.Condition {
		c.Status, c.Reason, c.Message = s, reason, truncate(msg, maxMessage)
		return c
	}
	if f.Inactive != "" {
		return set(metav1.ConditionFalse, ReasonInactive, f.Inactive)
	}
	if len(f.Groups) == 0 {
		return set(metav1.ConditionUnknown, ReasonNoProxies, "0/0 proxies: it configures no proxy group of the mesh (no workload runs as its identities or calls its services)")
	}
	var connected, holding, rejecting int32
	var rejections, failing, missing []string
	for _, g := range f.Groups {
		s, ok := f.Census[g]
		if !ok && f.Truncated {
			missing = append(missing, g)
		}
		connected += s.Connected
		rejecting += s.Rejecting
		if v := f.Current[g]; v != "" {
			holding += s.AtVersion[v]
		}
		switch {
		case s.Rejection != "" && mesh.GroupNamespace(g) == f.Namespace:
			rejections = append(rejections, g+": "+s.Rejection)
		case s.Rejecting > 0:
			// Another namespace's proxies: how many, not what they said,
			// which is theirs to write.
			rejections = append(rejections, fmt.Sprintf("%s: %d of its proxies", g, s.Rejecting))
		}
		if err, ok := f.Failing[g]; ok {
			failing = append(failing, g+": "+err)
		}
	}
	counts := fmt.Sprintf("%d/%d proxies of %s", holding, connected, groupsPhrase(f.Groups))
	switch {
	case len(failing) > 0:
		return set(metav1.ConditionFalse, ReasonTranslationFailed, fmt.Sprintf(
			"%s; the config of %d of its groups failed to build, and their proxies keep their last good config: %s", counts, len(failing), strings.Join(failing, "; ")))
	case rejecting > 0:
		msg := fmt.Sprintf("%s; %d rejected their config", counts, rejecting)
		if len(rejections) > 0 {
			msg += ": " + strings.Join(rejections, "; ")
		}
		return set(metav1.ConditionFalse, ReasonRejected, msg)
	case len(missing) > 0:
		return set(metav1.ConditionUnknown, ReasonUnknown, fmt.Sprintf("%s; the census leaves out %d of its groups (too many groups on one replica)", counts, len(missing)))
	case connected == 0:
		return set(metav1.ConditionUnknown, ReasonNoProxies, counts+": none connected")
	case holding < connected:
		return set(metav1.ConditionFalse, ReasonPending, fmt.Sprintf("%s, %d on an older version", counts, connected-holding))
	}
	return set(metav1.ConditionTrue, ReasonEnforced, counts)
}

// groupsPhrase names groups, the first maxNamed of them.
func groupsPhrase(groups []string) string {
	g := slices.Clone(groups)
	slices.Sort(g)
	word := "groups"
	if len(g) == 1 {
		word = "group"
	}
	if len(g) > maxNamed {
		return fmt.Sprintf("%d %s (%s, …)", len(g), word, strings.Join(g[:maxNamed], ", "))
	}
	return fmt.Sprintf("%d %s (%s)", len(g), word, strings.Join(g, ", "))
}

// truncate cuts s to at most n bytes at a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
