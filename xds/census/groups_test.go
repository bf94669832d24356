package census

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// groupLease is a Lease carrying the group report of g, as a publisher
// writes it.
func groupLease(t *testing.T, g Groups) *coordinationv1.Lease {
	t.Helper()
	var gr groupReport
	gr.Groups, gr.Rejections, gr.Truncated = g.bounded()
	raw, err := json.Marshal(gr)
	if err != nil {
		t.Fatal(err)
	}
	return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "osm-xds-a", Namespace: "osm-system", Annotations: map[string]string{GroupsAnnotation: string(raw)}}}
}

// Two replicas serve one group: one at the new version, one still at the
// old. The sum counts the proxies at each version, and keeps a rejection.
func TestGroupsSumOverReplicas(t *testing.T) {
	a, _, err := DecodeGroups(groupLease(t, Groups{"envoy/shop/store": {Connected: 3, Version: "v2", Holding: 2, Rejecting: 1, Rejection: "listener x: bad"}}))
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := DecodeGroups(groupLease(t, Groups{"envoy/shop/store": {Connected: 2, Version: "v1", Holding: 2}, "envoy/shop/buyer": {Connected: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	sum := Groups{}
	sum.Add(a)
	sum.Add(b)
	s := sum["envoy/shop/store"]
	if s.Connected != 5 || s.Rejecting != 1 || s.AtVersion["v2"] != 2 || s.AtVersion["v1"] != 2 || s.Rejection != "listener x: bad" {
		t.Errorf("store: %+v", s)
	}
	if s := sum["envoy/shop/buyer"]; s.Connected != 1 || len(s.AtVersion) != 0 {
		t.Errorf("buyer, holding nothing yet: %+v", s)
	}
}

// However many groups a replica serves and however long their names and
// rejections, its report stays below the API server's limit on a Lease's
// annotations, and says when it left groups out; the 2,000 groups of the
// scale harness's 10,000 proxies all fit.
func TestGroupReportIsBounded(t *testing.T) {
	g := Groups{}
	for i := range 3 * MaxGroups {
		name := fmt.Sprintf("envoy/%s-%d/%s", strings.Repeat("n", 63), i, strings.Repeat("s", 200))
		g[name] = GroupState{Connected: int32(i % 7), Version: "0123456789ab", Holding: int32(i % 7), Rejecting: 1, Rejection: strings.Repeat("<&>", 4000)}
	}
	l := groupLease(t, g)
	if n := len(l.Annotations[GroupsAnnotation]); n > MaxGroupBytes+MaxRejectionBytes+64 {
		t.Errorf("the report takes %d bytes", n)
	}
	groups, truncated, err := DecodeGroups(l)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) == 0 || !truncated {
		t.Errorf("%d groups reported, truncated %v", len(groups), truncated)
	}
	least := int32(6)
	for _, s := range groups {
		least = min(least, s.Connected)
	}
	for name, s := range g {
		if _, kept := groups[name]; !kept && s.Connected > least {
			t.Fatalf("a group of %d proxies was left out, one of %d kept", s.Connected, least)
		}
	}
	fleet := Groups{}
	for i := range 2000 {
		fleet[fmt.Sprintf("envoy/ns-%d/svc-%d-sa-%d", i%10, i/2, i%2)] = GroupState{Connected: 5, Version: "0123456789ab", Holding: 5}
	}
	if all, truncated, err := DecodeGroups(groupLease(t, fleet)); err != nil || len(all) != 2000 || truncated {
		t.Errorf("the harness's groups: %d reported, truncated %v (%v)", len(all), truncated, err)
	}
	var rejections int
	for _, s := range groups {
		if s.Rejection != "" {
			rejections++
			if len(s.Rejection) > MaxErrorBytes {
				t.Errorf("a rejection of %d bytes", len(s.Rejection))
			}
		}
	}
	if rejections == 0 || rejections > MaxRejections {
		t.Errorf("%d rejections carried", rejections)
	}
}
