package mesh_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
)

func outboundOf(v *mesh.View) []string {
	var out []string
	for _, s := range v.Outbound {
		out = append(out, s.Key.String())
	}
	return out
}

func member(ns string, services ...string) *meshv1alpha1.MeshMember {
	return &meshv1alpha1.MeshMember{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("m%d", len(services)), Namespace: ns},
		Spec:       meshv1alpha1.MeshMemberSpec{Mesh: meshtest.MeshName, Outbound: meshv1alpha1.MemberOutbound{Services: services}},
	}
}

// groupIn is the first group of namespace ns.
func groupIn(t *testing.T, m *mesh.Mesh, ns string) mesh.Group {
	t.Helper()
	for _, g := range m.Groups {
		if g.Identity.Namespace == ns {
			return g
		}
	}
	t.Fatalf("no group in %s", ns)
	return mesh.Group{}
}

func TestOutboundScopesAPermissiveMesh(t *testing.T) {
	// 12 services over 3 namespaces: ns-0 holds svc-0, svc-3, svc-6, svc-9.
	sz := meshtest.Size{Namespaces: 3, Services: 12, PodsPerService: 2, IdentitiesPerService: 1, Permissive: true, Splits: 3}
	for _, c := range []struct {
		name    string
		members []*meshv1alpha1.MeshMember
		want    []string // of a group of ns-0; nil: every service
	}{
		{"no MeshMember", nil, nil},
		{"a MeshMember naming none", []*meshv1alpha1.MeshMember{member("ns-0")}, nil},
		{"its own namespace and one service", []*meshv1alpha1.MeshMember{member("ns-0", "./*", "ns-1/svc-4")},
			// svc-4 splits to svc-7: a split's backends come with its root.
			[]string{"ns-0/svc-0", "ns-0/svc-3", "ns-0/svc-6", "ns-0/svc-9", "ns-1/svc-4", "ns-1/svc-7"}},
		{"a service of every namespace", []*meshv1alpha1.MeshMember{member("ns-0", "*/svc-5")}, []string{"ns-2/svc-5"}},
		{"two MeshMembers add up", []*meshv1alpha1.MeshMember{member("ns-0", "ns-1/svc-1"), member("ns-0", "ns-2/svc-2", "ns-2/svc-5")},
			[]string{"ns-1/svc-1", "ns-2/svc-2", "ns-2/svc-5"}},
		{"one naming none gives every service", []*meshv1alpha1.MeshMember{member("ns-0", "ns-1/svc-1"), member("ns-0")}, nil},
		{"a pattern the API server did not check loses only itself", []*meshv1alpha1.MeshMember{member("ns-0", "ns-1/svc-1", "nonsense", "a/b/c")},
			[]string{"ns-1/svc-1"}},
		{"a name no service has", []*meshv1alpha1.MeshMember{member("ns-0", "ns-9/*")}, []string{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := meshtest.Synthetic(sz)
			in.Members = c.members
			m, problems := mesh.Build(in)
			v := m.View(groupIn(t, m, "ns-0"))
			got := outboundOf(v)
			want := c.want
			if want == nil {
				for _, s := range m.Services {
					want = append(want, s.Key.String())
				}
			}
			if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("outbound of ns-0\n got %v\nwant %v", got, want)
			}
			// The other namespaces are not scoped by ns-0's MeshMembers.
			if n := len(m.View(groupIn(t, m, "ns-1")).Outbound); n != len(m.Services) {
				t.Errorf("ns-1 sees %d of %d services", n, len(m.Services))
			}
			bad := 0
			for _, p := range problems {
				if strings.Contains(p.Err.Error(), "spec.outbound.services") {
					bad++
				}
			}
			if want := strings.Count(c.name, "did not check") * 2; bad != want {
				t.Errorf("%d problems about spec.outbound.services, want %d: %v", bad, want, problems)
			}
		})
	}
}

// In SMI mode TrafficTargets decide what a proxy is sent; a MeshMember's
// outbound services narrow nothing.
func TestOutboundLeavesSMIModeToPolicy(t *testing.T) {
	sz := meshtest.Size{Namespaces: 3, Services: 12, PodsPerService: 2, IdentitiesPerService: 1}
	in := meshtest.Synthetic(sz)
	m, _ := mesh.Build(in)
	before := outboundOf(m.View(groupIn(t, m, "ns-0")))
	in.Members = []*meshv1alpha1.MeshMember{member("ns-0", "ns-2/svc-2")}
	m, _ = mesh.Build(in)
	if after := outboundOf(m.View(groupIn(t, m, "ns-0"))); !slices.Equal(before, after) || len(before) == 0 {
		t.Fatalf("SMI outbound of ns-0 %v became %v", before, after)
	}
}

// A namespace's MeshMembers naming more than MaxOutboundPatterns services
// together cost no more than one pass over them: the namespace gets every
// service, and a problem says why.
func TestTooManyOutboundPatternsGiveEveryService(t *testing.T) {
	in := meshtest.Synthetic(meshtest.Size{Namespaces: 3, Services: 12, PodsPerService: 2, IdentitiesPerService: 1, Permissive: true})
	for i := range mesh.MaxOutboundPatterns/256 + 1 {
		var services []string
		for j := range 256 {
			services = append(services, fmt.Sprintf("ns-1/svc-%d-%d", i, j))
		}
		mm := member("ns-0", services...)
		mm.Name = fmt.Sprintf("member-%d", i)
		in.Members = append(in.Members, mm)
	}
	m, problems := mesh.Build(in)
	if n := len(m.View(groupIn(t, m, "ns-0")).Outbound); n != len(m.Services) {
		t.Fatalf("ns-0 sees %d of %d services", n, len(m.Services))
	}
	if !slices.ContainsFunc(problems, func(p mesh.Problem) bool { return strings.Contains(p.Err.Error(), "more than 1024") }) {
		t.Fatalf("no problem says the namespace names too many: %v", problems)
	}
}
