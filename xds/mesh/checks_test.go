package mesh_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
)

// TestTheModelReportsWhatTheWebhooksRefuse: an object the webhooks would
// refuse or warn of may still be in the cluster (applied before the
// webhooks, or while they were down: their failure policy is Ignore). The
// model reports it, with the field the webhook names, and leaves out what
// it cannot use.
func TestTheModelReportsWhatTheWebhooksRefuse(t *testing.T) {
	const dbRoute = `
apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {name: db, namespace: shop}
spec: {matches: {name: postgres, ports: [5432]}}
`
	target := func(sources, rules string) string {
		return `---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: tt, namespace: shop}
spec:
  destination: {kind: ServiceAccount, name: web}
  sources: ` + sources + `
  rules: ` + rules + `
`
	}
	cases := []struct {
		name, yaml, want string
		// policy is the HTTP matches and TCP ports the target allows;
		// empty when it allows nothing.
		policy string
		splits int
	}{
		{name: "target without sources", yaml: allRoutes + target("[]", "[{kind: HTTPRouteGroup, name: routes}]"),
			want: "TrafficTarget shop/tt: spec.sources: at least one source is required; the target allows nothing"},
		{name: "target without rules", yaml: allRoutes + target("[{kind: ServiceAccount, name: client}]", "[]"),
			want: "TrafficTarget shop/tt: spec.rules: at least one rule is required; the target allows nothing"},
		{name: "route group without matches", yaml: `
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: routes, namespace: shop}
spec: {matches: []}
` + clientMayCallWeb,
			want: "TrafficTarget shop/tt: spec.rules[0]: HTTPRouteGroup shop/routes has no matches; the rule allows nothing"},
		{name: "rule naming a match the route group lacks", yaml: allRoutes + target("[{kind: ServiceAccount, name: client}]", "[{kind: HTTPRouteGroup, name: routes, matches: [all, steal]}]"),
			want:   `TrafficTarget shop/tt: spec.rules[0].matches[1]: HTTPRouteGroup shop/routes has no match "steal"`,
			policy: "all"},
		{name: "rule naming a match the TCP route lacks", yaml: dbRoute + target("[{kind: ServiceAccount, name: client}]", "[{kind: TCPRoute, name: db, matches: [mysql]}]"),
			want: `TrafficTarget shop/tt: spec.rules[0].matches[0]: TCPRoute shop/db has no match "mysql"`},
		{name: "rule naming the TCP route's match", yaml: dbRoute + target("[{kind: ServiceAccount, name: client}]", "[{kind: TCPRoute, name: db, matches: [postgres]}]"),
			policy: "5432"},
		{name: "match name used twice", yaml: `
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: routes, namespace: shop}
spec: {matches: [{name: a, pathRegex: /a}, {name: a, pathRegex: /b}]}
` + clientMayCallWeb,
			want:   `HTTPRouteGroup shop/routes: spec.matches[1].name: "a" is also spec.matches[0]; the match allows nothing`,
			policy: "a"},
		{name: "invalid match no target uses", yaml: `
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: unused, namespace: shop}
spec: {matches: [{name: bad, pathRegex: "(unclosed"}]}
`,
			want: `HTTPRouteGroup shop/unused: spec.matches[0] ("bad"): pathRegex: error parsing regexp`},
		{name: "split backend named twice", yaml: `
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {name: split, namespace: shop}
spec: {service: web, backends: [{service: web-v2, weight: 1}, {service: web-v2.shop, weight: 1}]}
`,
			want: `TrafficSplit shop/split: spec.backends[1].service: "web-v2.shop" is also spec.backends[0]; the split is ignored`},
		{name: "split without backends", yaml: `
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {name: split, namespace: shop}
spec: {service: web, backends: []}
`,
			want: `TrafficSplit shop/split: spec.backends: at least one backend is required; the split is ignored`},
		{name: "split without a root", yaml: `
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {name: split, namespace: shop}
spec: {backends: [{service: web-v2, weight: 1}]}
`,
			want: `TrafficSplit shop/split: spec.service: the root Service is required; the split is ignored`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, err := meshtest.Decode([]byte(base + "---" + tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			m, problems := mesh.Build(in)
			var got []string
			for _, p := range problems {
				got = append(got, p.Error())
			}
			if tc.want == "" && len(got) > 0 || !strings.Contains(strings.Join(got, "\n"), tc.want) {
				t.Errorf("problems %q; want %q", got, tc.want)
			}
			if p := allowed(m); p != tc.policy {
				t.Errorf("the target allows %q; want %q", p, tc.policy)
			}
			if len(m.Splits) != tc.splits {
				t.Errorf("%d splits; want %d", len(m.Splits), tc.splits)
			}
		})
	}
}

// allowed is what the policies of m allow: the names of HTTP matches and
// the TCP ports, comma-separated.
func allowed(m *mesh.Mesh) string {
	var out []string
	for _, p := range m.Policies {
		for _, h := range p.HTTP {
			out = append(out, h.Name)
		}
		for _, port := range p.TCPPorts {
			out = append(out, strconv.Itoa(int(port)))
		}
		if p.AllowAllTCP {
			out = append(out, "all TCP")
		}
	}
	return strings.Join(out, ",")
}
