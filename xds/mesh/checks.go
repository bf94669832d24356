package mesh

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	splitv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha4"
	corev1 "k8s.io/api/core/v1"
)

// The checks of SMI objects, in one place for the model and the admission
// webhooks: pure functions that say what is wrong. The webhooks refuse or
// warn; the model leaves out what cannot be used and reports it (an object
// applied before the webhooks ran, or while they were down, is never
// refused, so the model must see everything the webhooks would).

// FieldError is what is wrong with one field of an object.
type FieldError struct {
	// Field is the field's path, as kubectl explain names it: "spec.backends[1].service".
	Field string
	Err   error
}

func (e FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

func (e FieldError) Unwrap() error { return e.Err }

func fieldError(field, format string, args ...any) FieldError {
	return FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// SplitTarget is what a TrafficSplit needs of a Service it names: whether
// clients reach it through a virtual IP, and the ports the proxies carry.
type SplitTarget struct {
	Key ServiceKey
	// Headless is true for a Service without a virtual IP (headless or
	// ExternalName).
	Headless bool
	// Ports are the Service's TCP ports, sorted.
	Ports []int32
}

// SplitTargetOf is the split target of a Service as the API holds it.
func SplitTargetOf(s *corev1.Service) SplitTarget {
	t := SplitTarget{
		Key:      ServiceKey{s.Namespace, s.Name},
		Headless: s.Spec.ClusterIP == "" || s.Spec.ClusterIP == corev1.ClusterIPNone || s.Spec.Type == corev1.ServiceTypeExternalName,
	}
	for _, p := range s.Spec.Ports {
		if proxied(p) && p.Port >= 1 && p.Port <= 65535 {
			t.Ports = append(t.Ports, p.Port)
		}
	}
	slices.Sort(t.Ports)
	t.Ports = slices.Compact(t.Ports)
	return t
}

// splitTarget is the split target of a Service of the model.
func (s *Service) splitTarget() SplitTarget {
	t := SplitTarget{Key: s.Key, Headless: s.Headless()}
	for _, p := range s.Ports {
		t.Ports = append(t.Ports, p.Port)
	}
	slices.Sort(t.Ports)
	return t
}

// proxied says whether the proxies carry a Service port: TCP only; UDP
// and SCTP pass by.
func proxied(p corev1.ServicePort) bool {
	return p.Protocol == "" || p.Protocol == corev1.ProtocolTCP
}

// CheckSplitRoot says why a Service cannot be the root of a split: a
// headless Service's clients dial its endpoints themselves, so no proxy
// sees a destination it could split.
func CheckSplitRoot(root SplitTarget) error {
	if root.Headless {
		return fmt.Errorf("Service %s is headless: its clients pick its endpoints themselves, so nothing can split its traffic", root.Key)
	}
	return nil
}

// CheckSplitBackend says why a split of root cannot send traffic to
// backend. A split routes each port of the root to the same port of each
// backend (SMI matches ports, it does not map them), and a backend's
// cluster exists only for the ports it serves through its virtual IP: a
// backend without a virtual IP would get a share of the traffic for a
// cluster no proxy has, and so would one without some of the root's ports
// (a *SplitPortsError), for those ports. The split routes only the ports
// every backend serves (SplitPorts).
func CheckSplitBackend(root, backend SplitTarget) error {
	if backend.Key == root.Key {
		return nil
	}
	if backend.Headless {
		return fmt.Errorf("Service %s is headless: traffic for the root's virtual IP cannot be sent to it", backend.Key)
	}
	var missing []int32
	for _, p := range root.Ports {
		if _, ok := slices.BinarySearch(backend.Ports, p); !ok {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return &SplitPortsError{Backend: backend.Key, Root: root.Key, Missing: missing}
}

// SplitPortsError is the error of a split backend that does not serve some
// of the root's ports.
type SplitPortsError struct {
	Backend, Root ServiceKey
	// Missing are the root's ports the backend does not serve, sorted.
	Missing []int32
}

func (e *SplitPortsError) Error() string {
	return fmt.Sprintf("Service %s does not serve %s of the root Service %s", e.Backend, PortList(e.Missing), e.Root)
}

// PortList is "port 80" or "ports 80, 443".
func PortList(ports []int32) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(int(p))
	}
	if len(s) == 1 {
		return "port " + s[0]
	}
	return "ports " + strings.Join(s, ", ")
}

// SplitPorts are the ports of root, sorted, that a split routes when
// unserved are CheckSplitBackend's errors of its backends without some of
// the root's ports: those every backend serves. The others keep the root's
// traffic, as with no split.
func SplitPorts(root SplitTarget, unserved []*SplitPortsError) []int32 {
	out := slices.Clone(root.Ports)
	for _, e := range unserved {
		out = slices.DeleteFunc(out, func(p int32) bool {
			_, missing := slices.BinarySearch(e.Missing, p)
			return missing
		})
	}
	return out
}

// SplitProblem is what is wrong with a field of a TrafficSplit, with what
// it does to the split (Effect): the split is ignored, or the root keeps
// its traffic on some ports.
type SplitProblem struct {
	FieldError
	Effect string
}

func (p SplitProblem) Error() string { return p.FieldError.Error() + "; " + p.Effect }

// SplitPlan is how a TrafficSplit applies to the ports of its root.
type SplitPlan struct {
	// Ignored is true when the split routes nothing: its root keeps all
	// of its traffic, as with no split.
	Ignored bool
	// Ports are the root's ports the split routes, sorted (SplitPorts);
	// none when Ignored.
	Ports []int32
	// Problems are what is wrong, field by field, then the backends
	// without some of the root's ports.
	Problems []SplitProblem
}

// PlanSplit is how TrafficSplit ts, which CheckTrafficSplit passed,
// applies per port of its root: the one decision the model routes by and
// the webhook warns by. target is the split target of the Service of ts's
// namespace of that name, false when there is none. A split the proxies
// cannot route as written is ignored whole (a root or backend that does
// not exist or is headless): its root keeps its traffic, as with no
// split, rather than some share of it going astray. So does each port of
// the root that not every backend serves, while the split routes the
// others; with no port left, the split is ignored.
func PlanSplit(ts *splitv1alpha4.TrafficSplit, target func(name string) (SplitTarget, bool)) SplitPlan {
	var plan SplitPlan
	ignore := func(e FieldError) {
		plan.Ignored = true
		plan.Problems = append(plan.Problems, SplitProblem{FieldError: e, Effect: splitIgnored})
	}
	rootName, _ := SplitService(ts.Spec.Service, ts.Namespace) // CheckTrafficSplit checked it
	root, rootFound := target(rootName)
	if !rootFound {
		ignore(missingService("spec.service", ServiceKey{ts.Namespace, rootName}))
	} else if err := CheckSplitRoot(root); err != nil {
		ignore(FieldError{Field: "spec.service", Err: err})
	}
	var partial []FieldError
	var unserved []*SplitPortsError
	for i, be := range ts.Spec.Backends {
		field := fmt.Sprintf("spec.backends[%d].service", i)
		name, _ := SplitService(be.Service, ts.Namespace)
		t, ok := target(name)
		if !ok {
			ignore(missingService(field, ServiceKey{ts.Namespace, name}))
			continue
		}
		if !rootFound {
			continue // nothing to serve the ports of
		}
		var ports *SplitPortsError
		switch err := CheckSplitBackend(root, t); {
		case errors.As(err, &ports):
			partial, unserved = append(partial, FieldError{Field: field, Err: err}), append(unserved, ports)
		case err != nil:
			ignore(FieldError{Field: field, Err: err})
		}
	}
	if !plan.Ignored {
		plan.Ports = SplitPorts(root, unserved)
		plan.Ignored = len(unserved) > 0 && len(plan.Ports) == 0
	}
	for i, e := range partial {
		effect := splitIgnored
		if !plan.Ignored {
			effect = "the root keeps its traffic on " + PortList(unserved[i].Missing)
		}
		plan.Problems = append(plan.Problems, SplitProblem{FieldError: e, Effect: effect})
	}
	if plan.Ignored {
		plan.Ports = nil
	}
	return plan
}

// requireSome says that a list field must not be empty.
func requireSome(field string, n int, what string) []FieldError {
	if n > 0 {
		return nil
	}
	return []FieldError{fieldError(field, "at least one %s is required", what)}
}

// CheckTrafficTarget says what is wrong with a TrafficTarget on its own:
// what the mesh cannot enforce. The model leaves out what it names and
// reports it; the webhook refuses it.
func CheckTrafficTarget(tt *accessv1alpha3.TrafficTarget) []FieldError {
	var errs []FieldError
	errs = append(errs, CheckTargetDestination(tt)...)
	errs = append(errs, requireSome("spec.sources", len(tt.Spec.Sources), "source")...)
	for i := range tt.Spec.Sources {
		errs = append(errs, CheckTargetSource(tt, i)...)
	}
	errs = append(errs, requireSome("spec.rules", len(tt.Spec.Rules), "rule")...)
	for i := range tt.Spec.Rules {
		errs = append(errs, CheckTargetRule(tt, i)...)
	}
	return errs
}

// CheckTargetDestination says what is wrong with a TrafficTarget's
// destination: it must be a service account of the target's namespace
// (whoever may write a TrafficTarget in a namespace governs calls to it,
// not to another).
func CheckTargetDestination(tt *accessv1alpha3.TrafficTarget) []FieldError {
	var errs []FieldError
	d := tt.Spec.Destination
	if d.Kind != "ServiceAccount" {
		errs = append(errs, fieldError("spec.destination.kind", "%q: only ServiceAccount is supported", d.Kind))
	}
	if d.Namespace != "" && d.Namespace != tt.Namespace {
		errs = append(errs, fieldError("spec.destination.namespace", "%q: the destination must be in the TrafficTarget's namespace %s", d.Namespace, tt.Namespace))
	}
	return errs
}

// CheckTargetSource says what is wrong with source i of a TrafficTarget:
// SMI sources are service accounts, the mesh's identities.
func CheckTargetSource(tt *accessv1alpha3.TrafficTarget, i int) []FieldError {
	if k := tt.Spec.Sources[i].Kind; k != "ServiceAccount" {
		return []FieldError{fieldError(fmt.Sprintf("spec.sources[%d].kind", i), "%q: only ServiceAccount is supported", k)}
	}
	return nil
}

// CheckTargetRule says what is wrong with rule i of a TrafficTarget on its own.
func CheckTargetRule(tt *accessv1alpha3.TrafficTarget, i int) []FieldError {
	if k := tt.Spec.Rules[i].Kind; k != "HTTPRouteGroup" && k != "TCPRoute" {
		return []FieldError{fieldError(fmt.Sprintf("spec.rules[%d].kind", i), "%q: only HTTPRouteGroup and TCPRoute are supported", k)}
	}
	return nil
}

// CheckHTTPRule says what of rule i of a TrafficTarget, an HTTPRouteGroup
// rule, allows nothing given g, the route group it names (nil when it does
// not exist): a rule allows the matches it names, all of them when it
// names none.
func CheckHTTPRule(tt *accessv1alpha3.TrafficTarget, i int, g *specsv1alpha4.HTTPRouteGroup) []FieldError {
	r := tt.Spec.Rules[i]
	field := fmt.Sprintf("spec.rules[%d]", i)
	if g == nil {
		return []FieldError{fieldError(field, "HTTPRouteGroup %s/%s does not exist; the rule allows nothing until it does", tt.Namespace, r.Name)}
	}
	if len(g.Spec.Matches) == 0 {
		return []FieldError{fieldError(field, "HTTPRouteGroup %s/%s has no matches; the rule allows nothing", g.Namespace, g.Name)}
	}
	var have []string
	for _, m := range g.Spec.Matches {
		have = append(have, m.Name)
	}
	return missingMatches(field, "HTTPRouteGroup", g.Namespace+"/"+g.Name, r.Matches, have)
}

// CheckTCPRule is CheckHTTPRule for a TCPRoute rule: rt is the route it
// names, nil when it does not exist. A TCPRoute has one match; a rule that
// names matches must name it.
func CheckTCPRule(tt *accessv1alpha3.TrafficTarget, i int, rt *specsv1alpha4.TCPRoute) []FieldError {
	r := tt.Spec.Rules[i]
	field := fmt.Sprintf("spec.rules[%d]", i)
	if rt == nil {
		return []FieldError{fieldError(field, "TCPRoute %s/%s does not exist; the rule allows nothing until it does", tt.Namespace, r.Name)}
	}
	return missingMatches(field, "TCPRoute", rt.Namespace+"/"+rt.Name, r.Matches, []string{rt.Spec.Matches.Name})
}

// TCPRuleMatches says whether a TCPRoute rule allows the route's match.
func TCPRuleMatches(r accessv1alpha3.TrafficTargetRule, rt *specsv1alpha4.TCPRoute) bool {
	return len(r.Matches) == 0 || slices.Contains(r.Matches, rt.Spec.Matches.Name)
}

func missingMatches(field, kind, name string, want, have []string) []FieldError {
	var errs []FieldError
	for j, m := range want {
		if !slices.Contains(have, m) {
			errs = append(errs, fieldError(fmt.Sprintf("%s.matches[%d]", field, j), "%s %s has no match %q", kind, name, m))
		}
	}
	return errs
}

// CheckHTTPRouteGroup says what is wrong with the matches of an
// HTTPRouteGroup (CheckRouteGroupMatch, for each).
func CheckHTTPRouteGroup(g *specsv1alpha4.HTTPRouteGroup) []FieldError {
	var errs []FieldError
	for i := range g.Spec.Matches {
		errs = append(errs, CheckRouteGroupMatch(g, i)...)
	}
	return errs
}

// CheckRouteGroupMatch says what is wrong with match i of an
// HTTPRouteGroup: what a proxy could not enforce (CheckHTTPMatch), or a
// name an earlier match has, which a TrafficTarget could not tell apart.
func CheckRouteGroupMatch(g *specsv1alpha4.HTTPRouteGroup, i int) []FieldError {
	m := g.Spec.Matches[i]
	field := fmt.Sprintf("spec.matches[%d] (%q)", i, m.Name)
	var errs []FieldError
	if j := slices.IndexFunc(g.Spec.Matches[:i], func(o specsv1alpha4.HTTPMatch) bool { return o.Name == m.Name }); j >= 0 {
		errs = append(errs, fieldError(fmt.Sprintf("spec.matches[%d].name", i), "%q is also spec.matches[%d]", m.Name, j))
	}
	for _, err := range CheckHTTPMatch(m) {
		errs = append(errs, FieldError{Field: field, Err: err})
	}
	return errs
}

// CheckTCPRoute says what is wrong with a TCPRoute: ports out of range
// (the CRD's schema refuses them; an object stored before it may have them).
func CheckTCPRoute(rt *specsv1alpha4.TCPRoute) []FieldError {
	var errs []FieldError
	for i, p := range rt.Spec.Matches.Ports {
		if p < 1 || p > 65535 {
			errs = append(errs, fieldError(fmt.Sprintf("spec.matches.ports[%d]", i), "port %d is out of range 1..65535", p))
		}
	}
	return errs
}

// CheckTrafficSplit says what is wrong with a TrafficSplit on its own: a
// split that cannot route (no root, no backends, weights out of range or
// all zero, a backend named twice, a Service of another namespace). The
// model ignores such a split and reports it; the webhook refuses it.
func CheckTrafficSplit(ts *splitv1alpha4.TrafficSplit) []FieldError {
	var errs []FieldError
	if ts.Spec.Service == "" {
		errs = append(errs, fieldError("spec.service", "the root Service is required"))
	} else if _, err := SplitService(ts.Spec.Service, ts.Namespace); err != nil {
		errs = append(errs, FieldError{Field: "spec.service", Err: err})
	}
	errs = append(errs, requireSome("spec.backends", len(ts.Spec.Backends), "backend")...)
	var total uint64
	weighed := true // every weight is in range, so the total means something
	seen := map[string]int{}
	for i, b := range ts.Spec.Backends {
		if b.Weight < 0 || uint64(b.Weight) > math.MaxUint32 {
			errs = append(errs, fieldError(fmt.Sprintf("spec.backends[%d].weight", i), "%d is out of range 0..%d", b.Weight, uint32(math.MaxUint32)))
			weighed = false
		} else {
			total += uint64(b.Weight)
		}
		field := fmt.Sprintf("spec.backends[%d].service", i)
		name, err := SplitService(b.Service, ts.Namespace)
		if err != nil {
			errs = append(errs, FieldError{Field: field, Err: err})
			continue
		}
		if j, dup := seen[name]; dup {
			errs = append(errs, fieldError(field, "%q is also spec.backends[%d]", b.Service, j))
			continue
		}
		seen[name] = i
	}
	switch {
	case len(ts.Spec.Backends) == 0 || !weighed:
	case total == 0:
		errs = append(errs, fieldError("spec.backends", "every weight is 0, so no traffic could be routed"))
	case total > math.MaxUint32:
		errs = append(errs, fieldError("spec.backends", "the weights add up to %d, more than %d", total, uint32(math.MaxUint32)))
	}
	return errs
}

// missingService is the error of a field naming a Service that does not exist.
func missingService(field string, k ServiceKey) FieldError {
	return fieldError(field, "Service %s does not exist", k)
}

// SplitConflict is the error of a split of a Service another split, named
// other, already splits: a Service has one split, so that its traffic's
// shares are the ones its split says.
func SplitConflict(root ServiceKey, other string) FieldError {
	return fieldError("spec.service", "Service %s is already split by TrafficSplit %s; a Service has one split", root, other)
}

// SourceOutsideMesh is the error of source i of a TrafficTarget of mesh,
// in a namespace holding no workload of it: a member of mesh other, or of
// none when other is empty. Its workloads hold no certificate of this
// mesh, unless another mesh shares the issuer: allowing them would let
// traffic cross meshes, so the source is left out.
func SourceOutsideMesh(i int, namespace, mesh, other string) FieldError {
	where := "is not in a mesh"
	if other != "" {
		where = fmt.Sprintf("is a member of mesh %q", other)
	}
	return fieldError(fmt.Sprintf("spec.sources[%d].namespace", i), "namespace %s %s, not of mesh %q; the source is left out", namespace, where, mesh)
}
