package enforcement

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/open-service-mesh/osm-operator/xds/census"
)

func TestCondition(t *testing.T) {
	store, buyer := "envoy/shop/store", "envoy/shop/buyer"
	current := map[string]string{store: "v2", buyer: "b1"}
	for _, tc := range []struct {
		name   string
		f      Facts
		status metav1.ConditionStatus
		reason string
		msg    string
	}{{
		name:   "every proxy holds the current config",
		f:      Facts{Groups: []string{store, buyer}, Current: current, Census: census.Groups{store: {Connected: 3, AtVersion: map[string]int32{"v2": 3}}, buyer: {Connected: 1, AtVersion: map[string]int32{"b1": 1}}}},
		status: metav1.ConditionTrue, reason: ReasonEnforced, msg: "4/4 proxies of 2 groups (envoy/shop/buyer, envoy/shop/store)",
	}, {
		name:   "a replica still serves an older version",
		f:      Facts{Groups: []string{store}, Current: current, Census: census.Groups{store: {Connected: 40, AtVersion: map[string]int32{"v2": 37, "v1": 3}}}},
		status: metav1.ConditionFalse, reason: ReasonPending, msg: "37/40 proxies of 1 group (envoy/shop/store), 3 on an older version",
	}, {
		name:   "proxies not ACKed yet",
		f:      Facts{Groups: []string{store}, Current: current, Census: census.Groups{store: {Connected: 2}}},
		status: metav1.ConditionFalse, reason: ReasonPending, msg: "0/2 proxies",
	}, {
		name:   "a proxy rejected it",
		f:      Facts{Groups: []string{store}, Current: current, Census: census.Groups{store: {Connected: 2, Rejecting: 1, Rejection: "Listener: bad filter", AtVersion: map[string]int32{"v2": 1}}}},
		status: metav1.ConditionFalse, reason: ReasonRejected, msg: "1/2 proxies of 1 group (envoy/shop/store); 1 rejected their config: envoy/shop/store: Listener: bad filter",
	}, {
		name:   "another namespace's proxy rejected it: its words are not quoted",
		f:      Facts{Namespace: "books", Groups: []string{store}, Current: current, Census: census.Groups{store: {Connected: 2, Rejecting: 1, Rejection: "Listener: pwned", AtVersion: map[string]int32{"v2": 1}}}},
		status: metav1.ConditionFalse, reason: ReasonRejected, msg: "1 rejected their config: envoy/shop/store: 1 of its proxies",
	}, {
		name:   "translation failed",
		f:      Facts{Groups: []string{store}, Current: current, Failing: map[string]string{store: "bad key"}, Census: census.Groups{store: {Connected: 2, AtVersion: map[string]int32{"v2": 2}}}},
		status: metav1.ConditionFalse, reason: ReasonTranslationFailed, msg: "failed to build, and their proxies keep their last good config: envoy/shop/store: bad key",
	}, {
		name:   "no group",
		f:      Facts{Current: current},
		status: metav1.ConditionUnknown, reason: ReasonNoProxies, msg: "0/0 proxies",
	}, {
		name:   "groups without connected proxies",
		f:      Facts{Groups: []string{store}, Current: current, Census: census.Groups{}},
		status: metav1.ConditionUnknown, reason: ReasonNoProxies, msg: "none connected",
	}, {
		name:   "census truncated",
		f:      Facts{Groups: []string{store}, Current: current, Census: census.Groups{}, Truncated: true},
		status: metav1.ConditionUnknown, reason: ReasonUnknown, msg: "leaves out 1 of its groups",
	}, {
		name:   "permissive",
		f:      Facts{Groups: []string{store}, Inactive: "mesh m is Permissive"},
		status: metav1.ConditionFalse, reason: ReasonInactive, msg: "mesh m is Permissive",
	}, {
		name:   "a group published at no version holds nothing",
		f:      Facts{Groups: []string{"envoy/shop/new"}, Current: current, Census: census.Groups{"envoy/shop/new": {Connected: 1, AtVersion: map[string]int32{"": 1}}}},
		status: metav1.ConditionFalse, reason: ReasonPending, msg: "0/1 proxies",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tc.f.Generation = 7
			if tc.f.Namespace == "" {
				tc.f.Namespace = "shop"
			}
			c := Condition(tc.f)
			if c.Type != ConditionEnforced || c.Status != tc.status || c.Reason != tc.reason || !strings.Contains(c.Message, tc.msg) || c.ObservedGeneration != 7 || strings.Contains(c.Message, "pwned") {
				t.Errorf("got %s=%s %s %q (generation %d), want %s %s containing %q", c.Type, c.Status, c.Reason, c.Message, c.ObservedGeneration, tc.status, tc.reason, tc.msg)
			}
		})
	}
	// A rejection quoting a huge listener stays within what the API server takes.
	f := Facts{Namespace: "shop", Groups: []string{store}, Current: current, Census: census.Groups{store: {Connected: 1, Rejecting: 1, Rejection: strings.Repeat("é", 40000)}}}
	if c := Condition(f); len(c.Message) > maxMessage || !strings.HasSuffix(c.Message, "…") {
		t.Errorf("a message of %d bytes", len(c.Message))
	}
}
