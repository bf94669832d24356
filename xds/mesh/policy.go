package mesh

import (
	"cmp"
	"regexp"
	"slices"
	"strings"

	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	splitv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha4"
)

// Envoy matches regexes with RE2, as Go's regexp does, so a pattern Go compiles
// is one Envoy accepts.
// headerName is an HTTP header name (an RFC 9110 token), as Envoy requires.
var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

var knownMethods = map[string]bool{
	"*": true, "GET": true, "HEAD": true, "PUT": true, "POST": true, "DELETE": true,
	"CONNECT": true, "OPTIONS": true, "TRACE": true, "PATCH": true,
}

// collectPolicies resolves the TrafficTargets of member namespaces against their
// HTTPRouteGroups and TCPRoutes. A rule that cannot be resolved allows nothing.
func (b *builder) collectPolicies() {
	routeGroups := map[string]*specsv1alpha4.HTTPRouteGroup{}
	for _, g := range b.in.HTTPRouteGroups {
		routeGroups[g.Namespace+"/"+g.Name] = g
	}
	tcpRoutes := map[string]*specsv1alpha4.TCPRoute{}
	for _, r := range b.in.TCPRoutes {
		tcpRoutes[r.Namespace+"/"+r.Name] = r
	}
	for _, tt := range b.in.TrafficTargets {
		if _, ok := b.members[tt.Namespace]; !ok || tt.DeletionTimestamp != nil {
			continue
		}
		d := tt.Spec.Destination
		if d.Kind != "ServiceAccount" {
			b.problem("TrafficTarget", tt, "destination kind %q is not ServiceAccount; the target allows nothing", d.Kind)
			continue
		}
		p := &Policy{
			Namespace: tt.Namespace, Name: tt.Name,
			Destination: Identity{cmp.Or(d.Namespace, tt.Namespace), d.Name},
		}
		if p.Destination.Namespace != tt.Namespace {
			b.problem("TrafficTarget", tt, "destination namespace %q differs from the target's namespace; the target allows nothing", d.Namespace)
			continue
		}
		for _, s := range tt.Spec.Sources {
			if s.Kind != "ServiceAccount" {
				b.problem("TrafficTarget", tt, "source kind %q is not ServiceAccount; it is left out", s.Kind)
				continue
			}
			p.Sources = append(p.Sources, Identity{cmp.Or(s.Namespace, tt.Namespace), s.Name})
		}
		slices.SortFunc(p.Sources, compareIdentity)
		p.Sources = slices.Compact(p.Sources)
		for _, r := range tt.Spec.Rules {
			key := tt.Namespace + "/" + r.Name
			switch r.Kind {
			case "HTTPRouteGroup":
				g := routeGroups[key]
				if g == nil {
					b.problem("TrafficTarget", tt, "HTTPRouteGroup %q not found; its rule allows nothing", r.Name)
					continue
				}
				p.HTTP = append(p.HTTP, b.httpMatches(g, r.Matches)...)
			case "TCPRoute":
				rt := tcpRoutes[key]
				if rt == nil {
					b.problem("TrafficTarget", tt, "TCPRoute %q not found; its rule allows nothing", r.Name)
					continue
				}
				if len(rt.Spec.Matches.Ports) == 0 {
					p.AllowAllTCP = true
				}
				for _, port := range rt.Spec.Matches.Ports {
					if port < 1 || port > 65535 {
						b.problem("TCPRoute", rt, "port %d is out of range; it is left out", port)
						continue
					}
					p.TCPPorts = append(p.TCPPorts, int32(port))
				}
			default:
				b.problem("TrafficTarget", tt, "rule kind %q is neither HTTPRouteGroup nor TCPRoute; it allows nothing", r.Kind)
			}
		}
		slices.Sort(p.TCPPorts)
		p.TCPPorts = slices.Compact(p.TCPPorts)
		if len(p.Sources) == 0 || len(p.HTTP) == 0 && len(p.TCPPorts) == 0 && !p.AllowAllTCP {
			continue // allows nothing
		}
		b.m.Policies = append(b.m.Policies, p)
	}
	slices.SortFunc(b.m.Policies, func(a, c *Policy) int {
		return cmp.Compare(a.Namespace+"/"+a.Name, c.Namespace+"/"+c.Name)
	})
}

// httpMatches returns the matches of g named in names (all of them when names
// is empty) whose regexes and methods are valid.
func (b *builder) httpMatches(g *specsv1alpha4.HTTPRouteGroup, names []string) []HTTPMatch {
	var out []HTTPMatch
	for _, m := range g.Spec.Matches {
		if len(names) > 0 && !slices.Contains(names, m.Name) {
			continue
		}
		hm := HTTPMatch{Name: m.Name, PathRegex: m.PathRegex}
		valid := true
		if m.PathRegex != "" {
			if _, err := regexp.Compile(m.PathRegex); err != nil {
				b.problem("HTTPRouteGroup", g, "match %q: pathRegex: %v; the match allows nothing", m.Name, err)
				valid = false
			}
		}
		for _, meth := range m.Methods {
			meth = strings.ToUpper(meth)
			if !knownMethods[meth] {
				b.problem("HTTPRouteGroup", g, "match %q: unknown method %q; the match allows nothing", m.Name, meth)
				valid = false
			}
			if meth == "*" {
				hm.Methods = nil
				break
			}
			hm.Methods = append(hm.Methods, meth)
		}
		if len(m.Headers) > 0 {
			hm.Headers = map[string]string{}
			for k, v := range m.Headers {
				if !headerName.MatchString(k) {
					b.problem("HTTPRouteGroup", g, "match %q: %q is not an HTTP header name; the match allows nothing", m.Name, k)
					valid = false
				}
				if _, err := regexp.Compile(v); err != nil {
					b.problem("HTTPRouteGroup", g, "match %q: header %q: %v; the match allows nothing", m.Name, k, err)
					valid = false
				}
				if v == "" {
					v = ".*" // a header named with no value must be present, with any value
				}
				hm.Headers[strings.ToLower(k)] = v
			}
		}
		if valid {
			slices.Sort(hm.Methods)
			out = append(out, hm)
		}
	}
	return out
}

// collectSplits resolves the TrafficSplits of member namespaces.
func (b *builder) collectSplits() {
	splits := slices.Clone(b.in.TrafficSplits)
	slices.SortFunc(splits, func(a, c *splitv1alpha4.TrafficSplit) int {
		return cmp.Compare(a.Namespace+"/"+a.Name, c.Namespace+"/"+c.Name)
	})
	for _, ts := range splits {
		if _, ok := b.members[ts.Namespace]; !ok || ts.DeletionTimestamp != nil {
			continue
		}
		root := ServiceKey{ts.Namespace, ServiceName(ts.Spec.Service)}
		if b.m.Service(root) == nil {
			b.problem("TrafficSplit", ts, "root service %q not found in the mesh; the split is ignored", ts.Spec.Service)
			continue
		}
		if prev := b.m.Splits[root]; prev != nil {
			b.problem("TrafficSplit", ts, "service %q is already split by %s; the split is ignored", root.Name, prev.Name)
			continue
		}
		sp := &Split{Namespace: ts.Namespace, Name: ts.Name, Root: root}
		var total uint64
		ok := true
		for _, be := range ts.Spec.Backends {
			w, valid := clampWeight(be.Weight)
			key := ServiceKey{ts.Namespace, ServiceName(be.Service)}
			switch {
			case !valid:
				b.problem("TrafficSplit", ts, "backend %q: weight %d is out of range 0..%d", be.Service, be.Weight, uint32(1<<32-1))
				ok = false
			case b.m.Service(key) == nil:
				b.problem("TrafficSplit", ts, "backend service %q not found in the mesh", be.Service)
				ok = false
			}
			total += uint64(w)
			sp.Backends = append(sp.Backends, Backend{Service: key, Weight: w})
		}
		if ok && (total == 0 || total > 1<<32-1) {
			b.problem("TrafficSplit", ts, "backend weights add up to %d; they must add up to 1..%d", total, uint32(1<<32-1))
			ok = false
		}
		if ok {
			b.m.Splits[root] = sp
		}
	}
}

// serviceName takes the service name out of "name", "name.ns" or an FQDN.
// ServiceName is the Service an SMI TrafficSplit names: "name", or a name
// qualified by its namespace, "name.namespace" (the split's own).
func ServiceName(s string) string {
	name, _, _ := strings.Cut(s, ".")
	return name
}
