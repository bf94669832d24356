package translate_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/envoyrules"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// TestUntrustedEgressesNeverBreakEnvoysRules: Egresses written to collide
// (one host in many Egresses and cases, wildcards over exact names,
// overlapping and repeated ranges, ranges that are a mesh Service's virtual
// IP or a pod's address, one port with every protocol, many https ports)
// translate, for every group, into resources that pass Envoy's load rules,
// decoding every typed config as Envoy does.
func TestUntrustedEgressesNeverBreakEnvoysRules(t *testing.T) {
	data, err := os.ReadFile("testdata/in/egress-by-destination.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in, err := meshtest.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(xs []string) []string {
		var out []string
		for range r.IntN(6) {
			out = append(out, xs[r.IntN(len(xs))])
		}
		return out
	}
	hosts := []string{"api.example.com", "API.example.com", "*.example.com", "*.api.example.com", "example.com", "x.y.example.org", "*.org", "a-b.example.net"}
	ranges := []string{"10.96.60.10/32", "10.244.60.10/32", "10.0.0.0/8", "10.0.0.1/8", "10.96.0.0/16", "0.0.0.0/0", "203.0.113.7/32", "2001:db8::/32", "2001:db8::1/128", "::/0"}
	protocols := []policyv1alpha1.EgressProtocol{"http", "HTTPS", "tcp", "tcp-server-first"}
	for i := range 150 {
		eg := &policyv1alpha1.Egress{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("eg-%03d", i), Namespace: "shop"},
			Spec: policyv1alpha1.EgressSpec{
				Sources:     []policyv1alpha1.EgressSource{{Kind: policyv1alpha1.EgressSourceServiceAccount, Name: []string{"checkout", "catalog", "payments"}[r.IntN(3)], Namespace: "shop"}},
				Hosts:       pick(hosts),
				IPAddresses: pick(ranges),
			},
		}
		for _, n := range []int32{80, 443, 8443, 3306, 443} {
			if r.IntN(2) == 0 {
				eg.Spec.Ports = append(eg.Spec.Ports, policyv1alpha1.EgressPort{Number: n, Protocol: protocols[r.IntN(len(protocols))]})
			}
		}
		if r.IntN(3) == 0 {
			eg.Spec.Matches = []policyv1alpha1.MatchReference{{APIGroup: "specs.smi-spec.io/v1alpha4", Kind: "HTTPRouteGroup", Name: "payments-api"}}
		}
		in.Egresses = append(in.Egresses, eg)
	}
	m, _ := mesh.Build(in)
	for _, g := range m.Groups {
		res, err := translate.Translate(m.View(g), fakeCerts(g))
		if err != nil {
			t.Fatalf("group %s: %v", g, err)
		}
		if err := envoyrules.Check(res.Envoy(), translate.RuleOptions()); err != nil {
			t.Errorf("group %s: %v", g, err)
		}
		if err := res.Consistent(); err != nil {
			t.Errorf("group %s: %v", g, err)
		}
		if len(m.View(g).Egress) == 0 {
			t.Errorf("group %s got no egress from 150 Egresses", g)
		}
	}
}
