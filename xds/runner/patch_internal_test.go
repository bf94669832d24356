package runner

import (
	"os"
	"strings"
	"testing"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
)

// fixture builds a translate fixture with each edit (old → new) applied to
// its text.
func fixture(t *testing.T, file string, edits ...string) *mesh.Mesh {
	t.Helper()
	b, err := os.ReadFile("../translate/testdata/in/" + file)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(s, edits[i]) {
			t.Fatalf("%s has no %q", file, edits[i])
		}
		s = strings.ReplaceAll(s, edits[i], edits[i+1])
	}
	in, err := meshtest.Decode([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := mesh.Build(in)
	return m
}

func groupOf(t *testing.T, m *mesh.Mesh, namespace, sa string) mesh.Group {
	t.Helper()
	for _, g := range m.Groups {
		if g.Identity == (mesh.Identity{Namespace: namespace, ServiceAccount: sa}) {
			return g
		}
	}
	t.Fatalf("no group %s/%s", namespace, sa)
	return mesh.Group{}
}

func depsOf(v *mesh.View) map[mesh.ServiceKey]bool {
	deps := map[mesh.ServiceKey]bool{}
	for _, k := range v.Dependencies() {
		deps[k] = true
	}
	return deps
}

// An IngressBackend's backend lets its Service sources' endpoint addresses
// in: their moving is a change of the backend's own config, in either mode,
// whether the source is in the mesh or not (an attacker who gets an ingress
// controller's old address must not keep its access).
func TestAnIngressSourceMovingIsNoEndpointsPatch(t *testing.T) {
	source := mesh.ServiceKey{Namespace: "ingress-nginx", Name: "ingress-nginx"}
	for _, mode := range []string{"mode: SMI", "mode: Permissive"} {
		before := fixture(t, "ingressbackend.yaml", "mode: SMI", mode)
		after := fixture(t, "ingressbackend.yaml", "mode: SMI", mode, "10.244.9.1", "10.244.9.77")
		g := groupOf(t, before, "shop", "web")
		deps := depsOf(before.View(g))
		if !deps[source] {
			t.Fatalf("%s: web does not depend on its IngressBackend's source %s: %v", mode, source, deps)
		}
		c := changes{services: map[mesh.ServiceKey]bool{source: true}}
		if _, ok := patchable(c, deps, after.View(g), lastModelOf(before)); ok {
			t.Errorf("%s: the ingress source's move was patched as endpoints", mode)
		}
	}
}

// A change of a service a group does not depend on, before or now, leaves
// its snapshot as it is; one of a service it calls is patched; one that
// makes it depend on other services is not.
func TestPatchableChanges(t *testing.T) {
	before := fixture(t, "bookstore.yaml")
	g := groupOf(t, before, "bookbuyer", "bookbuyer")
	deps := depsOf(before.View(g))
	store := mesh.ServiceKey{Namespace: "bookstore", Name: "bookstore"}
	if !deps[store] {
		t.Fatalf("bookbuyer does not call %s: %v", store, deps)
	}
	last := lastModelOf(before)
	if s, ok := patchable(changes{services: map[mesh.ServiceKey]bool{{Namespace: "elsewhere", Name: "x"}: true}}, deps, before.View(g), last); !ok || len(s) != 0 {
		t.Errorf("an unrelated service: %v %v", s, ok)
	}
	if s, ok := patchable(changes{services: map[mesh.ServiceKey]bool{store: true}}, deps, before.View(g), last); !ok || len(s) != 1 || s[0].Key != store {
		t.Errorf("a service it calls: %v %v", s, ok)
	}
	less := map[mesh.ServiceKey]bool{store: true}
	if _, ok := patchable(changes{services: map[mesh.ServiceKey]bool{store: true}}, less, before.View(g), last); ok {
		t.Error("patched a group whose dependencies changed")
	}
	for name, c := range map[string]changes{
		"full":     {full: true},
		"identity": {identities: map[mesh.Identity]bool{g.Identity: true}},
		"its mesh": {meshes: map[string]bool{before.Name: true}},
		"no last":  {services: map[mesh.ServiceKey]bool{store: true}},
	} {
		l := last
		if name == "no last" {
			l = lastModel{}
		}
		if _, ok := patchable(c, deps, before.View(g), l); ok {
			t.Errorf("%s: patched", name)
		}
	}
}
