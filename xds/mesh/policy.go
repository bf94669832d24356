package mesh

import (
	"cmp"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"

	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	splitv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha4"

	"github.com/open-service-mesh/osm-operator/xds/envoyrules"
)

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
			id := Identity{cmp.Or(s.Namespace, tt.Namespace), s.Name}
			if !b.holdsWorkloads(id.Namespace) {
				// Its workloads hold no certificate of this mesh, unless
				// another mesh shares the issuer: allowing them would let
				// traffic cross meshes.
				where := "not in a mesh"
				if other, ok := b.elsewhere[id.Namespace]; ok {
					where = fmt.Sprintf("a member of mesh %q", other)
				}
				b.problem("TrafficTarget", tt, "source %s: namespace %s is %s, not of mesh %q; it is left out", id, id.Namespace, where, b.m.Name)
				continue
			}
			p.Sources = append(p.Sources, id)
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

// holdsWorkloads says whether the mesh's workloads may run in namespace: a
// member namespace, or one holding a MeshVM of the mesh.
func (b *builder) holdsWorkloads(namespace string) bool {
	_, member := b.members[namespace]
	return member || b.vmNamespaces[namespace]
}

// httpMatches returns the matches of g named in names (all of them when names
// is empty) whose regexes and methods are valid.
func (b *builder) httpMatches(g *specsv1alpha4.HTTPRouteGroup, names []string) []HTTPMatch {
	var out []HTTPMatch
	for _, m := range g.Spec.Matches {
		if len(names) > 0 && !slices.Contains(names, m.Name) {
			continue
		}
		errs := CheckHTTPMatch(m)
		for _, err := range errs {
			b.problem("HTTPRouteGroup", g, "match %q: %v; the match allows nothing", m.Name, err)
		}
		valid := len(errs) == 0
		hm := HTTPMatch{Name: m.Name, PathRegex: m.PathRegex}
		for _, meth := range m.Methods {
			meth = strings.ToUpper(meth)
			if meth == "*" {
				hm.Methods = nil
				break
			}
			hm.Methods = append(hm.Methods, meth)
		}
		if len(m.Headers) > 0 {
			hm.Headers = map[string]string{}
			for k, v := range m.Headers {
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

// CheckHTTPMatch says what of an HTTPRouteGroup match a proxy could not
// enforce: regexes RE2 does not compile, unknown methods, header names that
// are not HTTP tokens. The model leaves such a match out; the admission
// webhook denies it.
func CheckHTTPMatch(m specsv1alpha4.HTTPMatch) []error {
	var errs []error
	if m.PathRegex != "" {
		if err := checkRegex(m.PathRegex); err != nil {
			errs = append(errs, fmt.Errorf("pathRegex: %w", err))
		}
	}
	for _, meth := range m.Methods {
		if !knownMethods[strings.ToUpper(meth)] {
			errs = append(errs, fmt.Errorf("unknown method %q", meth))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m.Headers)) {
		if !headerName.MatchString(k) {
			errs = append(errs, fmt.Errorf("%q is not an HTTP header name", k))
		}
		if err := checkRegex(m.Headers[k]); err != nil {
			errs = append(errs, fmt.Errorf("header %q: %w", k, err))
		}
	}
	return errs
}

// checkRegex says whether the mesh's proxies accept a regex: RE2 (Envoy's
// engine) compiles it into a program no larger than the limit their
// bootstraps set, counted as RE2 counts it.
func checkRegex(re string) error {
	regexChecks.mu.Lock()
	err, ok := regexChecks.m[re]
	regexChecks.mu.Unlock()
	if ok {
		return err
	}
	err = compileRegex(re)
	regexChecks.mu.Lock()
	defer regexChecks.mu.Unlock()
	if len(regexChecks.m) >= 4096 { // bounded: a fresh start costs one compile each
		clear(regexChecks.m)
	}
	regexChecks.m[re] = err
	return err
}

// regexChecks remembers what checkRegex found: every model build checks
// every HTTPRouteGroup, and the regexes rarely change.
var regexChecks = struct {
	mu sync.Mutex
	m  map[string]error
}{m: map[string]error{}}

func compileRegex(re string) error {
	if _, err := regexp.Compile(re); err != nil {
		return err
	}
	size, err := envoyrules.RE2ProgramSize(re)
	if err != nil {
		return err
	}
	if size > envoyrules.MeshRegexLimit {
		return fmt.Errorf("%q compiles to an RE2 program of %d instructions; the mesh's proxies accept at most %d", re, size, envoyrules.MeshRegexLimit)
	}
	return nil
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
		name, err := SplitService(ts.Spec.Service, ts.Namespace)
		if err != nil {
			b.problem("TrafficSplit", ts, "root service: %w; the split is ignored", err)
			continue
		}
		root := ServiceKey{ts.Namespace, name}
		rootSvc := b.m.Service(root)
		if rootSvc == nil {
			b.problem("TrafficSplit", ts, "root service %q not found in the mesh; the split is ignored", ts.Spec.Service)
			continue
		}
		if err := CheckSplitRoot(rootSvc.splitTarget()); err != nil {
			b.problem("TrafficSplit", ts, "spec.service: %w; the split is ignored", err)
			continue
		}
		if prev := b.m.Splits[root]; prev != nil {
			b.problem("TrafficSplit", ts, "service %q is already split by %s; the split is ignored", root.Name, prev.Name)
			continue
		}
		sp := &Split{Namespace: ts.Namespace, Name: ts.Name, Root: root}
		var total uint64
		ok := true
		for i, be := range ts.Spec.Backends {
			w, valid := clampWeight(be.Weight)
			name, err := SplitService(be.Service, ts.Namespace)
			key := ServiceKey{ts.Namespace, name}
			svc := b.m.Service(key)
			switch {
			case err != nil:
				b.problem("TrafficSplit", ts, "backend: %w", err)
				ok = false
			case !valid:
				b.problem("TrafficSplit", ts, "backend %q: weight %d is out of range 0..%d", be.Service, be.Weight, uint32(1<<32-1))
				ok = false
			case svc == nil:
				b.problem("TrafficSplit", ts, "backend service %q not found in the mesh", be.Service)
				ok = false
			default:
				if err := CheckSplitBackend(rootSvc.splitTarget(), svc.splitTarget()); err != nil {
					b.problem("TrafficSplit", ts, "spec.backends[%d].service: %w; the split is ignored", i, err)
					ok = false
				}
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
