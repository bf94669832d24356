package mesh_test

import (
	"slices"
	"testing"

	splitv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha4"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// TestPlanSplit: the one decision of how a TrafficSplit applies per port of
// its root, which the model routes by and the webhook warns by. A split is
// ignored whole when a Service it names does not exist or is headless, or
// when no port of the root is served by every backend; otherwise it
// routes the ports every backend serves and the root keeps the others.
// Every problem is reported, with what it does to the split.
func TestPlanSplit(t *testing.T) {
	targets := map[string]mesh.SplitTarget{
		"web":      {Ports: []int32{80, 443}},
		"web-v1":   {Ports: []int32{80, 443, 9090}},
		"web-80":   {Ports: []int32{80}},
		"web-443":  {Ports: []int32{443}},
		"web-pods": {Headless: true, Ports: []int32{80, 443}},
		"udp-only": {}, // no TCP port: nothing a proxy carries
	}
	for name, tg := range targets {
		tg.Key = mesh.ServiceKey{Namespace: "shop", Name: name}
		targets[name] = tg
	}
	target := func(name string) (mesh.SplitTarget, bool) { tg, ok := targets[name]; return tg, ok }
	split := func(root string, backends ...string) *splitv1alpha4.TrafficSplit {
		ts := &splitv1alpha4.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "split", Namespace: "shop"}, Spec: splitv1alpha4.TrafficSplitSpec{Service: root}}
		for _, b := range backends {
			ts.Spec.Backends = append(ts.Spec.Backends, splitv1alpha4.TrafficSplitBackend{Service: b, Weight: 1})
		}
		return ts
	}
	for _, tc := range []struct {
		name     string
		ts       *splitv1alpha4.TrafficSplit
		ignored  bool
		ports    []int32
		problems []string
	}{
		{name: "every backend serves every port", ts: split("web", "web", "web-v1.shop.svc.cluster.local"), ports: []int32{80, 443}},
		{name: "a backend without one port: the root keeps it", ts: split("web", "web-v1", "web-80"), ports: []int32{80},
			problems: []string{"spec.backends[1].service: Service shop/web-80 does not serve port 443 of the root Service shop/web; the root keeps its traffic on port 443"}},
		{name: "backends without each other's port: nothing left to split", ts: split("web", "web-80", "web-443"), ignored: true,
			problems: []string{
				"spec.backends[0].service: Service shop/web-80 does not serve port 443 of the root Service shop/web; the split is ignored",
				"spec.backends[1].service: Service shop/web-443 does not serve port 80 of the root Service shop/web; the split is ignored",
			}},
		{name: "a headless backend ignores the split, and the partial one says so", ts: split("web", "web-80", "web-pods"), ignored: true,
			problems: []string{
				"spec.backends[1].service: Service shop/web-pods is headless: traffic for the root's virtual IP cannot be sent to it; the split is ignored",
				"spec.backends[0].service: Service shop/web-80 does not serve port 443 of the root Service shop/web; the split is ignored",
			}},
		{name: "a missing backend", ts: split("web", "web-v1", "web-v9"), ignored: true,
			problems: []string{"spec.backends[1].service: Service shop/web-v9 does not exist; the split is ignored"}},
		{name: "a missing root: backends are checked for existence only", ts: split("ghost", "web-80", "web-v9"), ignored: true,
			problems: []string{
				"spec.service: Service shop/ghost does not exist; the split is ignored",
				"spec.backends[1].service: Service shop/web-v9 does not exist; the split is ignored",
			}},
		{name: "a headless root: backends are checked against its ports", ts: split("web-pods", "web-v1", "web-80"), ignored: true,
			problems: []string{
				"spec.service: Service shop/web-pods is headless: its clients pick its endpoints themselves, so nothing can split its traffic; the split is ignored",
				"spec.backends[1].service: Service shop/web-80 does not serve port 443 of the root Service shop/web-pods; the split is ignored",
			}},
		{name: "a root without a proxied port: a split of nothing, not ignored", ts: split("udp-only", "web")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := mesh.PlanSplit(tc.ts, target)
			var got []string
			for _, p := range plan.Problems {
				got = append(got, p.Error())
			}
			if plan.Ignored != tc.ignored || !slices.Equal(plan.Ports, tc.ports) || !slices.Equal(got, tc.problems) {
				t.Errorf("ignored %v, ports %v, problems %q; want %v, %v, %q", plan.Ignored, plan.Ports, got, tc.ignored, tc.ports, tc.problems)
			}
		})
	}
}
