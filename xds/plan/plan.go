// Package plan says what a change of the mesh's inputs would do to the
// proxies: which proxy groups' configuration would change, resource by
// resource with a short diff, and which problems the model would report or
// stop reporting. It builds and translates the mesh before and after with
// the control plane's own model and translation, and writes nothing.
package plan

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// State is what the mesh is built from: the inputs and the meshes.
type State struct {
	Inputs mesh.Inputs
	Meshes []*meshv1alpha1.MeshInstance
}

// Apply is s with objs applied over it, as `kubectl apply` of them would
// leave it: an object of the same kind, namespace and name is replaced,
// another is added. Objects of kinds the mesh does not read are returned
// apart, unapplied.
func Apply(s State, objs []client.Object) (State, []client.Object, error) {
	scheme := mesh.NewScheme()
	type key struct {
		kind, namespace, name string
	}
	keyOf := func(o client.Object) (key, error) {
		gvk, err := apiutil.GVKForObject(o, scheme)
		if err != nil {
			return key{}, fmt.Errorf("%T %s: %w", o, o.GetName(), err)
		}
		return key{gvk.GroupKind().String(), o.GetNamespace(), o.GetName()}, nil
	}
	byKey := map[key]client.Object{}
	var order []key
	put := func(o client.Object) error {
		k, err := keyOf(o)
		if err != nil {
			return err
		}
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = o
		return nil
	}
	for _, m := range s.Meshes {
		if err := put(m); err != nil {
			return s, nil, err
		}
	}
	for _, o := range s.Inputs.Objects() {
		if err := put(o); err != nil {
			return s, nil, err
		}
	}
	var ignored []client.Object
	for _, o := range objs {
		var probe mesh.Inputs
		if !probe.Add(o) {
			ignored = append(ignored, o)
			continue
		}
		if err := put(o); err != nil {
			return s, nil, err
		}
	}
	out := State{Inputs: mesh.Inputs{ClusterDomain: s.Inputs.ClusterDomain}}
	for _, k := range order {
		switch o := byKey[k].(type) {
		case *meshv1alpha1.MeshInstance:
			out.Meshes = append(out.Meshes, o)
		default:
			out.Inputs.Add(o)
		}
	}
	return out, ignored, nil
}

// Op is what happens to a resource.
type Op string

const (
	Added   Op = "added"
	Removed Op = "removed"
	Changed Op = "changed"
)

// Change is one change of one resource, the same in each of its groups.
type Change struct {
	Op Op
	// Type is listener, route, cluster or endpoints; Name the resource's.
	Type, Name string
	// Diff is a unified diff of the resource's YAML, trimmed: removed
	// lines start with "-", added with "+", context with " ".
	Diff []string
	// Groups are the proxy groups it changes in, sorted.
	Groups []string
}

// MeshPlan is what the change does to one mesh.
type MeshPlan struct {
	Mesh string
	// Groups are the mesh's proxy groups after the change; Changed those
	// whose configuration changes (added and removed groups included).
	Groups, Changed int
	// AddedGroups and RemovedGroups are groups that appear or go.
	AddedGroups, RemovedGroups []string
	Changes                    []Change
	// NewProblems and GoneProblems are the problems the model reports
	// after and not before, and before and not after.
	NewProblems, GoneProblems []string
}

// Empty says whether nothing changes.
func (p MeshPlan) Empty() bool {
	return p.Changed == 0 && len(p.NewProblems)+len(p.GoneProblems) == 0
}

// Compute plans every mesh of before or after.
func Compute(before, after State) []MeshPlan {
	names := map[string]bool{}
	for _, m := range append(slices.Clone(before.Meshes), after.Meshes...) {
		names[m.Name] = true
	}
	var out []MeshPlan
	r := newRenderer()
	for _, name := range slices.Sorted(maps.Keys(names)) {
		b, a := build(before, name, r), build(after, name, r)
		out = append(out, diffMeshes(name, b, a))
	}
	return out
}

// built is a mesh's translation: each group's resources as YAML, by
// resource key, and its problems.
type built struct {
	groups   map[string]map[resourceKey]string
	problems []string
}

type resourceKey struct{ typ, name string }

// build translates every group of the mesh named name in s; a mesh that
// does not exist, or is being deleted, has no groups.
func build(s State, name string, r *renderer) built {
	out := built{groups: map[string]map[resourceKey]string{}}
	i := slices.IndexFunc(s.Meshes, func(m *meshv1alpha1.MeshInstance) bool { return m.Name == name })
	if i < 0 || s.Meshes[i].DeletionTimestamp != nil {
		return out
	}
	in := s.Inputs
	in.Mesh = s.Meshes[i]
	m, problems := mesh.Build(in)
	for _, p := range problems {
		out.problems = append(out.problems, p.Error())
	}
	sh := translate.NewShared()
	for _, g := range m.Groups {
		res, err := sh.Translate(m.View(g), nil)
		if err != nil {
			// Its proxies keep the config they have: a problem to show.
			out.problems = append(out.problems, fmt.Sprintf("proxy group %s: its configuration fails to translate, its proxies keep what they have: %v", g, err))
			continue
		}
		rs := map[resourceKey]string{}
		add := func(typ string, msgs []proto.Message) {
			for _, msg := range msgs {
				rs[resourceKey{typ, resourceName(msg)}] = r.yaml(msg)
			}
		}
		add("listener", messages(res.Listeners))
		add("route", messages(res.Routes))
		add("cluster", messages(res.Clusters))
		add("endpoints", messages(res.Endpoints))
		out.groups[g.String()] = rs
	}
	slices.Sort(out.problems)
	return out
}

func messages[T proto.Message](items []T) []proto.Message {
	out := make([]proto.Message, len(items))
	for i, m := range items {
		out[i] = m
	}
	return out
}

// resourceName is the xDS name of a resource.
func resourceName(m proto.Message) string {
	switch r := m.(type) {
	case interface{ GetClusterName() string }:
		return r.GetClusterName()
	case interface{ GetName() string }:
		return r.GetName()
	}
	return ""
}

// renderer renders resources as stable YAML, each shared one once.
type renderer struct{ done map[proto.Message]string }

func newRenderer() *renderer { return &renderer{done: map[proto.Message]string{}} }

func (r *renderer) yaml(m proto.Message) string {
	if s, ok := r.done[m]; ok {
		return s
	}
	// protojson's spacing varies from run to run; YAML of its JSON does not.
	s := ""
	raw, err := protojson.Marshal(m)
	var v any
	if err == nil {
		err = json.Unmarshal(raw, &v)
	}
	var y []byte
	if err == nil {
		y, err = yaml.Marshal(v)
	}
	if err != nil {
		s = fmt.Sprintf("<cannot render: %v>", err)
	} else {
		s = string(y)
	}
	r.done[m] = s
	return s
}

// diffMeshes compares the mesh before and after.
func diffMeshes(name string, b, a built) MeshPlan {
	p := MeshPlan{Mesh: name, Groups: len(a.groups)}
	type changeKey struct {
		key         resourceKey
		before, now string
	}
	groupsOf := map[changeKey][]string{}
	for _, g := range slices.Sorted(maps.Keys(mergeKeys(b.groups, a.groups))) {
		was, is := b.groups[g], a.groups[g]
		switch {
		case was == nil:
			p.AddedGroups = append(p.AddedGroups, g)
		case is == nil:
			p.RemovedGroups = append(p.RemovedGroups, g)
		}
		changed := false
		for k := range mergeKeys(was, is) {
			if was[k] == is[k] {
				continue
			}
			changed = true
			ck := changeKey{k, was[k], is[k]}
			groupsOf[ck] = append(groupsOf[ck], g)
		}
		if changed || (was == nil) != (is == nil) {
			p.Changed++
		}
	}
	for ck, groups := range groupsOf {
		c := Change{Type: ck.key.typ, Name: ck.key.name, Groups: groups}
		switch {
		case ck.before == "":
			c.Op = Added
		case ck.now == "":
			c.Op = Removed
		default:
			c.Op = Changed
			c.Diff = lineDiff(ck.before, ck.now, 2, maxDiffLines)
		}
		p.Changes = append(p.Changes, c)
	}
	slices.SortFunc(p.Changes, func(x, y Change) int {
		return cmp.Or(cmp.Compare(x.Type, y.Type), cmp.Compare(x.Name, y.Name), cmp.Compare(x.Op, y.Op),
			cmp.Compare(strings.Join(x.Groups, ","), strings.Join(y.Groups, ",")))
	})
	p.NewProblems = minus(a.problems, b.problems)
	p.GoneProblems = minus(b.problems, a.problems)
	return p
}

// maxDiffLines bounds a change's diff: enough to read what changed.
const maxDiffLines = 40

func mergeKeys[K comparable, V any](x, y map[K]V) map[K]bool {
	out := make(map[K]bool, len(x)+len(y))
	for k := range x {
		out[k] = true
	}
	for k := range y {
		out[k] = true
	}
	return out
}

// minus are the strings of x not in y, in x's order.
func minus(x, y []string) []string {
	var out []string
	for _, s := range x {
		if !slices.Contains(y, s) {
			out = append(out, s)
		}
	}
	return out
}
