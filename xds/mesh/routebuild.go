package mesh

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// RouteParentStatus is what the mesh makes of one parentRef of a route that
// names a Service: the route's status.parents entry for it.
type RouteParentStatus struct {
	Kind            RouteKind
	Namespace, Name string
	Generation      int64
	// Parent is the index of the parentRef in spec.parentRefs.
	Parent    int
	ParentRef gwv1.ParentReference
	// Accepted and ResolvedRefs are the entry's conditions.
	Accepted, ResolvedRefs RouteCondition
}

// RouteCondition is a condition of a route's parent status.
type RouteCondition struct {
	OK              bool
	Reason, Message string
}

// collectRoutes reads the HTTPRoutes and GRPCRoutes of member namespaces
// whose parentRefs name a Service, into the route tables and the routes'
// statuses. A route the mesh cannot carry out in full is not accepted and
// routes nothing (its parent routes as if it were not there); a backend that
// does not resolve keeps its share of requests, answered 500. Routes win
// over a TrafficSplit of the same port (the split is told).
func (b *builder) collectRoutes() {
	var sources []*routeSource
	for _, hr := range b.in.HTTPRoutes {
		if _, ok := b.members[hr.Namespace]; ok && hr.DeletionTimestamp == nil {
			sources = append(sources, httpRouteSource(hr))
		}
	}
	for _, gr := range b.in.GRPCRoutes {
		if _, ok := b.members[gr.Namespace]; ok && gr.DeletionTimestamp == nil {
			sources = append(sources, grpcRouteSource(gr))
		}
	}
	if len(sources) == 0 {
		return
	}
	grants := b.grantsFrom()
	entries := map[RouteTableKey][]*orderedEntry{}
	for _, src := range sources {
		for i, pr := range src.parents {
			if !isServiceRef(ptrOr(pr.Group, gwv1.GroupName), ptrOr(pr.Kind, "Gateway")) {
				continue // a Gateway's, not the mesh's
			}
			st := b.routeParent(src, i, pr, grants, entries)
			b.m.RouteStatuses = append(b.m.RouteStatuses, st)
		}
	}
	b.m.Routes = map[RouteTableKey]*RouteTable{}
	b.m.routeConsumers = map[RouteTableKey][]string{}
	b.m.faultyPorts = map[PortKey]bool{}
	for key, es := range entries {
		slices.SortFunc(es, routeOrder)
		t := &RouteTable{Key: key}
		for _, e := range es {
			if e.Action.Fault != nil {
				b.m.faultyPorts[PortKey{key.Service, key.Port}] = true
			}
			t.Entries = append(t.Entries, e.RouteEntry)
			t.Routes = append(t.Routes, e.Ref.Object())
		}
		slices.Sort(t.Routes)
		t.Routes = slices.Compact(t.Routes)
		b.m.Routes[key] = t
		if key.Consumer != "" {
			k := RouteTableKey{Service: key.Service, Port: key.Port}
			b.m.routeConsumers[k] = append(b.m.routeConsumers[k], key.Consumer)
		}
	}
	for _, c := range b.m.routeConsumers {
		slices.Sort(c)
	}
	slices.SortFunc(b.m.RouteStatuses, func(a, c RouteParentStatus) int {
		return cmp.Or(cmp.Compare(a.Kind, c.Kind), cmp.Compare(a.Namespace, c.Namespace), cmp.Compare(a.Name, c.Name), cmp.Compare(a.Parent, c.Parent))
	})
	b.splitsUnderRoutes()
}

// routeParent attaches src to its i-th parentRef pr, a Service, adding its
// entries to the tables, and returns the parent's status.
func (b *builder) routeParent(src *routeSource, i int, pr gwv1.ParentReference, grants grantIndex, entries map[RouteTableKey][]*orderedEntry) RouteParentStatus {
	ns := src.obj.GetNamespace()
	st := RouteParentStatus{Kind: src.kind, Namespace: ns, Name: src.obj.GetName(), Generation: src.obj.GetGeneration(), Parent: i, ParentRef: pr}
	st.ResolvedRefs = RouteCondition{OK: true, Reason: string(gwv1.RouteReasonResolvedRefs), Message: "Every backend resolves"}
	reject := func(reason gwv1.RouteConditionReason, format string, args ...any) RouteParentStatus {
		st.Accepted = RouteCondition{Reason: string(reason), Message: fmt.Sprintf(format, args...)}
		b.problem(string(src.kind), src.obj, "parentRefs[%d]: %s; the route is not accepted there", i, st.Accepted.Message)
		return st
	}
	parent := ServiceKey{string(ptrOr(pr.Namespace, gwv1.Namespace(ns))), string(pr.Name)}
	svc := b.m.Service(parent)
	if svc == nil {
		return reject(gwv1.RouteReasonNoMatchingParent, "Service %s is not a Service of mesh %s", parent, b.m.Name)
	}
	if svc.Headless() {
		return reject(gwv1.RouteReasonUnsupportedValue, "Service %s is headless: mesh routes attach to a Service with a cluster IP", parent)
	}
	var ports []int32
	for _, p := range svc.Ports {
		if pr.Port != nil && int32(*pr.Port) != p.Port || pr.SectionName != nil && string(*pr.SectionName) != p.Name {
			continue
		}
		if !p.Protocol.IsHTTP() {
			if pr.Port != nil || pr.SectionName != nil {
				return reject(gwv1.RouteReasonUnsupportedValue, "port %d of Service %s is %s, not HTTP: set its appProtocol or name for HTTP", p.Port, parent, p.Protocol)
			}
			continue
		}
		ports = append(ports, p.Port)
	}
	if len(ports) == 0 {
		if pr.Port != nil || pr.SectionName != nil {
			return reject(gwv1.RouteReasonNoMatchingParent, "Service %s has no port %s", parent, portName(pr))
		}
		return reject(gwv1.RouteReasonUnsupportedValue, "Service %s has no HTTP port", parent)
	}
	if len(src.unsupported) > 0 {
		return reject(gwv1.RouteReasonUnsupportedValue, "%s", strings.Join(src.unsupported, "; "))
	}
	consumer := ""
	if parent.Namespace != ns {
		consumer = ns
	}
	var unresolved []string
	refsReason := ""
	resolve := func(field string, ref gwv1.BackendObjectReference) (ServiceKey, int32, bool) {
		key, port, reason, why := b.resolveBackend(src, parent.Namespace, ref, grants)
		if why != "" {
			unresolved = append(unresolved, field+": "+why)
			refsReason = cmp.Or(refsReason, string(reason))
			return key, port, false
		}
		return key, port, true
	}
	// The faults the rules' ExtensionRef filters name, all before any entry.
	faults := make([]*meshv1alpha1.Fault, len(src.rules))
	for ri, r := range src.rules {
		if r.faultPolicy == "" {
			continue
		}
		rp := b.resiliencePolicy(ns, r.faultPolicy)
		if rp == nil || rp.Spec.Fault == nil {
			return reject(gwv1.RouteReasonUnsupportedValue, "spec.rules[%d]: ResiliencePolicy %s/%s, which its ExtensionRef filter names, does not exist or injects no fault", ri, ns, r.faultPolicy)
		}
		faults[ri] = rp.Spec.Fault
	}
	created := src.obj.GetCreationTimestamp().Time
	for ri, r := range src.rules {
		action := r.action
		action.Fault = faults[ri]
		for _, sb := range r.backends {
			key, port, ok := resolve(sb.field, sb.ref)
			action.Backends = append(action.Backends, RouteBackend{Service: key, Port: port, Weight: uint32(max(sb.weight, 0)), RequestHeaders: sb.headers, Invalid: !ok})
		}
		for _, sm := range r.mirrors {
			if key, port, ok := resolve(sm.field, sm.ref); ok {
				action.Mirrors = append(action.Mirrors, Mirror{Service: key, Port: port, Numerator: sm.numerator, Denominator: sm.denominator})
			}
		}
		act := &action
		ref := RouteRef{Kind: src.kind, Namespace: ns, Name: src.obj.GetName(), Rule: ri, RuleName: r.name}
		for _, port := range ports {
			key := RouteTableKey{parent, port, consumer}
			for mi, m := range r.matches {
				entries[key] = append(entries[key], &orderedEntry{RouteEntry: &RouteEntry{Ref: ref, Match: m, Action: act}, created: created, match: mi})
			}
		}
	}
	st.Accepted = RouteCondition{OK: true, Reason: string(gwv1.RouteReasonAccepted), Message: fmt.Sprintf("Routes %s of Service %s in mesh %s", routeScope(consumer), parent, b.m.Name)}
	if len(unresolved) > 0 {
		st.ResolvedRefs = RouteCondition{Reason: refsReason, Message: strings.Join(unresolved, "; ")}
		b.problem(string(src.kind), src.obj, "parentRefs[%d]: %s; their requests are answered 500", i, st.ResolvedRefs.Message)
	}
	return st
}

func routeScope(consumer string) string {
	if consumer == "" {
		return "every caller's requests"
	}
	return "the requests of namespace " + consumer + "'s callers"
}

func portName(pr gwv1.ParentReference) string {
	var parts []string
	if pr.Port != nil {
		parts = append(parts, fmt.Sprint(*pr.Port))
	}
	if pr.SectionName != nil {
		parts = append(parts, fmt.Sprintf("named %q", *pr.SectionName))
	}
	return strings.Join(parts, " ")
}

// resolveBackend resolves a backendRef of src attached to a Service of
// namespace parentNS: a Service port of the mesh, in the route's namespace
// or the parent's, or in another that a ReferenceGrant opens to the route.
// why is "" when it resolves, else why not, with the status reason.
func (b *builder) resolveBackend(src *routeSource, parentNS string, ref gwv1.BackendObjectReference, grants grantIndex) (ServiceKey, int32, gwv1.RouteConditionReason, string) {
	ns := src.obj.GetNamespace()
	key := ServiceKey{string(ptrOr(ref.Namespace, gwv1.Namespace(ns))), string(ref.Name)}
	if !isServiceRef(ptrOr(ref.Group), ptrOr(ref.Kind, "Service")) {
		return key, 0, gwv1.RouteReasonInvalidKind, fmt.Sprintf("%s %s is not a Service", ptrOr(ref.Kind), ref.Name)
	}
	if key.Namespace != ns && key.Namespace != parentNS && !grants.allows(src.kind, ns, key) {
		return key, 0, gwv1.RouteReasonRefNotPermitted, fmt.Sprintf("Service %s is in another namespace, and no ReferenceGrant there allows %ss of %s to refer to it", key, src.kind, ns)
	}
	svc := b.m.Service(key)
	if svc == nil {
		return key, 0, gwv1.RouteReasonBackendNotFound, fmt.Sprintf("Service %s is not a Service of mesh %s", key, b.m.Name)
	}
	if ref.Port == nil {
		return key, 0, gwv1.RouteReasonUnsupportedValue, fmt.Sprintf("Service %s needs a port", key)
	}
	port := int32(*ref.Port)
	if !slices.ContainsFunc(svc.Ports, func(p Port) bool { return p.Port == port }) {
		return key, port, gwv1.RouteReasonBackendNotFound, fmt.Sprintf("Service %s has no port %d", key, port)
	}
	if svc.Headless() {
		return key, port, gwv1.RouteReasonUnsupportedValue, fmt.Sprintf("Service %s is headless", key)
	}
	return key, port, "", ""
}

func isServiceRef(g gwv1.Group, k gwv1.Kind) bool { return (g == "" || g == "core") && k == "Service" }

// grantIndex are the ReferenceGrants of the mesh's namespaces, by the
// namespace they open.
type grantIndex map[string][]*gwv1beta1.ReferenceGrant

func (b *builder) grantsFrom() grantIndex {
	out := grantIndex{}
	for _, g := range b.in.ReferenceGrants {
		if g.DeletionTimestamp == nil {
			out[g.Namespace] = append(out[g.Namespace], g)
		}
	}
	return out
}

// allows says whether a ReferenceGrant in to's namespace lets routes of
// kind in namespace from refer to the Service to.
func (gi grantIndex) allows(kind RouteKind, from string, to ServiceKey) bool {
	for _, g := range gi[to.Namespace] {
		fromOK := slices.ContainsFunc(g.Spec.From, func(f gwv1beta1.ReferenceGrantFrom) bool {
			return f.Group == gwv1.GroupName && string(f.Kind) == string(kind) && string(f.Namespace) == from
		})
		toOK := slices.ContainsFunc(g.Spec.To, func(t gwv1beta1.ReferenceGrantTo) bool {
			return (t.Group == "" || t.Group == "core") && t.Kind == "Service" && (t.Name == nil || string(*t.Name) == to.Name)
		})
		if fromOK && toOK {
			return true
		}
	}
	return false
}

// splitsUnderRoutes tells each TrafficSplit whose root's port a route
// table routes that the route wins there.
func (b *builder) splitsUnderRoutes() {
	for _, root := range slices.SortedFunc(maps.Keys(b.m.Splits), compareServiceKey) {
		sp := b.m.Splits[root]
		for _, port := range sp.Ports {
			if t := b.m.Routes[RouteTableKey{Service: root, Port: port}]; t != nil {
				b.problem("TrafficSplit", b.splitObjs[sp.Root], "port %d of %s is routed by %s, which wins over the split for every caller", port, root, strings.Join(t.Routes, ", "))
			}
			if c := b.m.routeConsumers[RouteTableKey{Service: root, Port: port}]; len(c) > 0 {
				b.problem("TrafficSplit", b.splitObjs[sp.Root], "port %d of %s is routed by consumer routes for the callers of %s, which win over the split for them", port, root, strings.Join(c, ", "))
			}
		}
	}
}

// resiliencePolicy is the ResiliencePolicy ns/name, or nil.
func (b *builder) resiliencePolicy(ns, name string) *meshv1alpha1.ResiliencePolicy {
	for _, p := range b.in.ResiliencePolicies {
		if p.Namespace == ns && p.Name == name && p.DeletionTimestamp == nil {
			return p
		}
	}
	return nil
}
