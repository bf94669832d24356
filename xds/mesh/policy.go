package mesh

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	splitv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha4"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// What the model does with an object, or a part of it, that a check finds
// wrong: it is left out, denying rather than allowing.
const (
	targetVoid   = "the target allows nothing"
	sourceOut    = "the source is left out"
	ruleVoid     = "the rule allows nothing"
	matchVoid    = "the match allows nothing"
	portOut      = "the port is left out"
	splitIgnored = "the split is ignored"
)

// report files each error of obj as a problem, with what the model does
// about it (none when the error says so itself), and says whether there
// was any.
func (b *builder) report(kind string, obj metav1.Object, errs []FieldError, effect string) bool {
	for _, e := range errs {
		if effect == "" {
			b.problem(kind, obj, "%w", e)
		} else {
			b.problem(kind, obj, "%w; %s", e, effect)
		}
	}
	return len(errs) > 0
}

// routeGroup is an HTTPRouteGroup with the matches a proxy can enforce.
type routeGroup struct {
	obj     *specsv1alpha4.HTTPRouteGroup
	matches []HTTPMatch
}

// tcpRoute is a TCPRoute with its ports in range.
type tcpRoute struct {
	obj   *specsv1alpha4.TCPRoute
	ports []int32
}

// collectPolicies resolves the TrafficTargets of member namespaces against their
// HTTPRouteGroups and TCPRoutes. A rule that cannot be resolved allows nothing.
func (b *builder) collectPolicies() {
	groups := b.checkRouteGroups()
	b.routeGroups = groups
	routes := b.checkTCPRoutes()
	for _, tt := range b.in.TrafficTargets {
		if _, ok := b.members[tt.Namespace]; !ok || tt.DeletionTimestamp != nil {
			continue
		}
		if p := b.policy(tt, groups, routes); p != nil {
			b.m.Policies = append(b.m.Policies, p)
		}
	}
	slices.SortFunc(b.m.Policies, func(a, c *Policy) int {
		return cmp.Compare(a.Namespace+"/"+a.Name, c.Namespace+"/"+c.Name)
	})
}

// checkRouteGroups checks the HTTPRouteGroups of member namespaces once,
// whether a target uses them yet or not, and returns them by namespace/name.
func (b *builder) checkRouteGroups() map[string]*routeGroup {
	out := map[string]*routeGroup{}
	for _, g := range b.in.HTTPRouteGroups {
		if _, ok := b.members[g.Namespace]; !ok {
			continue
		}
		rg := &routeGroup{obj: g}
		for i, m := range g.Spec.Matches {
			if !b.report("HTTPRouteGroup", g, CheckRouteGroupMatch(g, i), matchVoid) {
				rg.matches = append(rg.matches, httpMatch(m))
			}
		}
		out[g.Namespace+"/"+g.Name] = rg
	}
	return out
}

// checkTCPRoutes is checkRouteGroups for TCPRoutes.
func (b *builder) checkTCPRoutes() map[string]*tcpRoute {
	out := map[string]*tcpRoute{}
	for _, rt := range b.in.TCPRoutes {
		if _, ok := b.members[rt.Namespace]; !ok {
			continue
		}
		b.report("TCPRoute", rt, CheckTCPRoute(rt), portOut)
		r := &tcpRoute{obj: rt}
		for _, p := range rt.Spec.Matches.Ports {
			if p >= 1 && p <= 65535 {
				r.ports = append(r.ports, int32(p))
			}
		}
		out[rt.Namespace+"/"+rt.Name] = r
	}
	return out
}

// policy resolves a TrafficTarget; nil when it allows nothing.
func (b *builder) policy(tt *accessv1alpha3.TrafficTarget, groups map[string]*routeGroup, routes map[string]*tcpRoute) *Policy {
	const kind = "TrafficTarget"
	if b.report(kind, tt, CheckTargetDestination(tt), targetVoid) ||
		b.report(kind, tt, requireSome("spec.sources", len(tt.Spec.Sources), "source"), targetVoid) ||
		b.report(kind, tt, requireSome("spec.rules", len(tt.Spec.Rules), "rule"), targetVoid) {
		return nil
	}
	p := &Policy{
		Namespace: tt.Namespace, Name: tt.Name,
		Destination: Identity{tt.Namespace, tt.Spec.Destination.Name},
	}
	for i, s := range tt.Spec.Sources {
		if b.report(kind, tt, CheckTargetSource(tt, i), sourceOut) {
			continue
		}
		id := Identity{cmp.Or(s.Namespace, tt.Namespace), s.Name}
		if !b.holdsWorkloads(id.Namespace) {
			// Its workloads hold no certificate of this mesh, unless
			// another mesh shares the issuer: allowing them would let
			// traffic cross meshes.
			b.report(kind, tt, []FieldError{SourceOutsideMesh(i, id.Namespace, b.m.Name, b.elsewhere[id.Namespace])}, "")
			continue
		}
		p.Sources = append(p.Sources, id)
	}
	slices.SortFunc(p.Sources, compareIdentity)
	p.Sources = slices.Compact(p.Sources)
	for i, r := range tt.Spec.Rules {
		if b.report(kind, tt, CheckTargetRule(tt, i), ruleVoid) {
			continue
		}
		key := tt.Namespace + "/" + r.Name
		switch r.Kind {
		case "HTTPRouteGroup":
			g := groups[key]
			var obj *specsv1alpha4.HTTPRouteGroup
			if g != nil {
				obj = g.obj
			}
			b.report(kind, tt, CheckHTTPRule(tt, i, obj), "")
			if g != nil {
				p.HTTP = append(p.HTTP, g.selected(r.Matches)...)
			}
		case "TCPRoute":
			rt := routes[key]
			var obj *specsv1alpha4.TCPRoute
			if rt != nil {
				obj = rt.obj
			}
			b.report(kind, tt, CheckTCPRule(tt, i, obj), "")
			if rt == nil || !TCPRuleMatches(r, rt.obj) {
				continue
			}
			if len(rt.obj.Spec.Matches.Ports) == 0 {
				p.AllowAllTCP = true
			}
			p.TCPPorts = append(p.TCPPorts, rt.ports...)
		}
	}
	slices.Sort(p.TCPPorts)
	p.TCPPorts = slices.Compact(p.TCPPorts)
	if len(p.Sources) == 0 || len(p.HTTP) == 0 && len(p.TCPPorts) == 0 && !p.AllowAllTCP {
		return nil // allows nothing
	}
	return p
}

// holdsWorkloads says whether the mesh's workloads may run in namespace: a
// member namespace, or one holding a MeshVM of the mesh.
func (b *builder) holdsWorkloads(namespace string) bool {
	_, member := b.members[namespace]
	return member || b.vmNamespaces[namespace]
}

// selected are the matches of g a rule naming names allows: those it
// names, all of them when it names none.
func (g *routeGroup) selected(names []string) []HTTPMatch {
	if len(names) == 0 {
		return g.matches
	}
	var out []HTTPMatch
	for _, m := range g.matches {
		if slices.Contains(names, m.Name) {
			out = append(out, m)
		}
	}
	return out
}

// httpMatch is the model of a valid HTTPRouteGroup match.
func httpMatch(m specsv1alpha4.HTTPMatch) HTTPMatch {
	hm := HTTPMatch{Name: m.Name, PathRegex: m.PathRegex}
	for _, meth := range m.Methods {
		meth = strings.ToUpper(meth)
		if meth == "*" {
			hm.Methods = nil
			break
		}
		hm.Methods = append(hm.Methods, meth)
	}
	slices.Sort(hm.Methods)
	if len(m.Headers) > 0 {
		hm.Headers = map[string]string{}
		for k, v := range m.Headers {
			if v == "" {
				v = ".*" // a header named with no value must be present, with any value
			}
			hm.Headers[strings.ToLower(k)] = v
		}
	}
	return hm
}

// collectSplits resolves the TrafficSplits of member namespaces, each as
// PlanSplit decides, and one split per root.
func (b *builder) collectSplits() {
	b.splitObjs = map[ServiceKey]*splitv1alpha4.TrafficSplit{}
	splits := slices.Clone(b.in.TrafficSplits)
	slices.SortFunc(splits, func(a, c *splitv1alpha4.TrafficSplit) int {
		return cmp.Compare(a.Namespace+"/"+a.Name, c.Namespace+"/"+c.Name)
	})
	for _, ts := range splits {
		if _, ok := b.members[ts.Namespace]; !ok || ts.DeletionTimestamp != nil {
			continue
		}
		if sp := b.split(ts); sp != nil {
			b.m.Splits[sp.Root] = sp
			b.splitObjs[sp.Root] = ts
		}
	}
}

// split resolves a TrafficSplit; nil when it is ignored (PlanSplit).
func (b *builder) split(ts *splitv1alpha4.TrafficSplit) *Split {
	const kind = "TrafficSplit"
	if b.report(kind, ts, CheckTrafficSplit(ts), splitIgnored) {
		return nil
	}
	name, _ := SplitService(ts.Spec.Service, ts.Namespace) // CheckTrafficSplit checked it
	root := ServiceKey{ts.Namespace, name}
	// A split is in the model only when its root exists and is not
	// headless, so this one's root passes PlanSplit's checks of it too.
	if prev := b.m.Splits[root]; prev != nil {
		b.report(kind, ts, []FieldError{SplitConflict(root, prev.Name)}, splitIgnored)
		return nil
	}
	plan := PlanSplit(ts, func(name string) (SplitTarget, bool) {
		s := b.m.Service(ServiceKey{ts.Namespace, name})
		if s == nil {
			return SplitTarget{}, false
		}
		return s.splitTarget(), true
	})
	for _, p := range plan.Problems {
		b.report(kind, ts, []FieldError{p.FieldError}, p.Effect)
	}
	if plan.Ignored {
		return nil
	}
	sp := &Split{Namespace: ts.Namespace, Name: ts.Name, Root: root, Ports: plan.Ports}
	for _, be := range ts.Spec.Backends {
		name, _ := SplitService(be.Service, ts.Namespace)
		// CheckTrafficSplit checked that the weight is in 0..MaxUint32.
		sp.Backends = append(sp.Backends, Backend{Service: ServiceKey{ts.Namespace, name}, Weight: uint32(be.Weight)})
	}
	return sp
}

// SplitService is the name of the Service an SMI TrafficSplit of namespace
// names: "name", or a name qualified by the split's own namespace
// ("name.namespace", "name.namespace.svc", or a cluster FQDN). A split
// routes within its namespace: a name qualified by another is an error
// rather than a Service of the same name here.
func SplitService(s, namespace string) (string, error) {
	name, rest, qualified := strings.Cut(s, ".")
	if name == "" {
		return "", fmt.Errorf("service %q has no name", s)
	}
	if !qualified {
		return name, nil
	}
	ns, suffix, _ := strings.Cut(rest, ".")
	if ns != namespace || suffix != "" && suffix != "svc" && !strings.HasPrefix(suffix, "svc.") {
		return "", fmt.Errorf("service %q is not in the split's namespace %s", s, namespace)
	}
	return name, nil
}
