package mesh

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
)

// Scope is what one policy object of the mesh configures: the proxies of
// its identities, and the callers of its services (the groups whose config
// depends on them). How many of those proxies run a config that includes
// the policy's generation is what its Enforced condition says.
type Scope struct {
	Kind, Namespace, Name string
	UID                   types.UID
	// Generation is the generation of the object the model was built from.
	Generation int64
	// Identities are those whose proxies the policy configures.
	Identities []Identity
	// Services are those whose callers' proxies the policy configures;
	// Within, when set, narrows those callers to one namespace's (a
	// consumer route configures only its own namespace's callers).
	Services []ServiceKey
	Within   string
	// Inactive says why the mesh enforces nothing of the policy; "" when
	// it does.
	Inactive string
}

// Ref is the policy as "<Kind> <namespace>/<name>", as Problems name it.
func (s Scope) Ref() string { return s.Kind + " " + s.Namespace + "/" + s.Name }

// Scopes are the scopes of the policies of the mesh's member namespaces
// that in holds: SMI's, OSM's, the Gateway API routes (by the Services they
// are attached to) and the ResiliencePolicies (by their target Services),
// sorted by kind, namespace and name. A policy the model left out entirely
// configures no proxy: its scope is empty.
func Scopes(in *Inputs, m *Mesh) []Scope {
	var out []Scope
	add := func(kind string, obj client.Object, ids []Identity, services []ServiceKey, inactive string) {
		if !m.Member(obj.GetNamespace()) || obj.GetDeletionTimestamp() != nil {
			return
		}
		ids = slices.Clone(ids)
		slices.SortFunc(ids, compareIdentities)
		slices.SortFunc(services, compareServiceKeys)
		out = append(out, Scope{
			Kind: kind, Namespace: obj.GetNamespace(), Name: obj.GetName(), UID: obj.GetUID(), Generation: obj.GetGeneration(),
			Identities: slices.Compact(ids), Services: slices.Compact(services), Inactive: inactive,
		})
	}
	var permissive string
	if m.Mode == ModePermissive {
		permissive = fmt.Sprintf("mesh %s is Permissive: every workload may call every service, and no TrafficTarget is enforced", m.Name)
	}
	resolved := map[string]*Policy{}
	for _, p := range m.Policies {
		resolved[p.Namespace+"/"+p.Name] = p
	}
	policyIDs := func(namespace, name string) []Identity {
		p := resolved[namespace+"/"+name]
		if p == nil {
			return nil
		}
		return append([]Identity{p.Destination}, p.Sources...)
	}
	for _, tt := range in.TrafficTargets {
		add("TrafficTarget", tt, policyIDs(tt.Namespace, tt.Name), nil, permissive)
	}
	// A route group configures what the policies naming it allow: the
	// TrafficTargets', the Egresses' and the IngressBackends' of its
	// namespace.
	users := map[string][]Identity{} // by "<kind> <namespace>/<name>"
	use := func(kind, namespace, name string, ids ...Identity) {
		k := kind + " " + namespace + "/" + name
		users[k] = append(users[k], ids...)
	}
	if m.Mode != ModePermissive {
		for _, tt := range in.TrafficTargets {
			for _, r := range tt.Spec.Rules {
				use(r.Kind, tt.Namespace, r.Name, policyIDs(tt.Namespace, tt.Name)...)
			}
		}
	}
	for _, eg := range in.Egresses {
		for _, r := range eg.Spec.Matches {
			use(r.Kind, eg.Namespace, r.Name, egressSources(eg)...)
		}
	}
	for _, ib := range in.IngressBackends {
		for _, r := range ib.Spec.Matches {
			use(r.Kind, ib.Namespace, r.Name, m.backers(ingressBackends(ib))...)
		}
	}
	for _, g := range in.HTTPRouteGroups {
		add("HTTPRouteGroup", g, users["HTTPRouteGroup "+g.Namespace+"/"+g.Name], nil, "")
	}
	for _, r := range in.TCPRoutes {
		add("TCPRoute", r, users["TCPRoute "+r.Namespace+"/"+r.Name], nil, permissive)
	}
	roots := map[string]ServiceKey{}
	for _, sp := range m.Splits {
		roots[sp.Namespace+"/"+sp.Name] = sp.Root
	}
	for _, ts := range in.TrafficSplits {
		var services []ServiceKey
		if root, ok := roots[ts.Namespace+"/"+ts.Name]; ok {
			services = append(services, root)
		}
		add("TrafficSplit", ts, nil, services, "")
	}
	for _, ib := range in.IngressBackends {
		add("IngressBackend", ib, m.backers(ingressBackends(ib)), nil, "")
	}
	for _, eg := range in.Egresses {
		add("Egress", eg, egressSources(eg), nil, "")
	}
	for _, u := range in.UpstreamTrafficSettings {
		var services []ServiceKey
		suffix := ".svc." + m.ClusterDomain
		if name, ns, ok := strings.Cut(strings.TrimSuffix(strings.ToLower(u.Spec.Host), suffix), "."); ok && ns == u.Namespace {
			services = append(services, ServiceKey{ns, name})
		}
		add("UpstreamTrafficSetting", u, nil, services, "")
	}
	for _, r := range in.Retries {
		// A Retry of another namespace's source is left out (retry.go).
		var ids []Identity
		if src := r.Spec.Source; src.Kind == policyv1alpha1.RetrySourceServiceAccount && src.Namespace == r.Namespace {
			ids = append(ids, Identity{Namespace: r.Namespace, ServiceAccount: ServiceAccountOf(src.Name)})
		}
		add("Retry", r, ids, nil, "")
	}
	// A route configures the callers of the Services it is attached to:
	// every caller's for a producer route (of the Service's namespace),
	// its own namespace's callers' for a consumer route.
	type routeKey struct {
		kind            RouteKind
		namespace, name string
	}
	attached := map[routeKey][]ServiceKey{}
	for _, st := range m.RouteStatuses {
		if st.Accepted.OK {
			k := routeKey{st.Kind, st.Namespace, st.Name}
			attached[k] = append(attached[k], ServiceKey{string(ptrOr(st.ParentRef.Namespace, gwv1.Namespace(st.Namespace))), string(st.ParentRef.Name)})
		}
	}
	addRoute := func(kind RouteKind, obj client.Object) {
		services := attached[routeKey{kind, obj.GetNamespace(), obj.GetName()}]
		before := len(out)
		add(string(kind), obj, nil, services, "")
		if len(out) > before && len(services) > 0 && !slices.ContainsFunc(services, func(k ServiceKey) bool { return k.Namespace == obj.GetNamespace() }) {
			out[len(out)-1].Within = obj.GetNamespace()
		}
	}
	for _, hr := range in.HTTPRoutes {
		addRoute(KindHTTPRoute, hr)
	}
	for _, gr := range in.GRPCRoutes {
		addRoute(KindGRPCRoute, gr)
	}
	targets := map[string][]ServiceKey{}
	for _, st := range m.ResilienceStatuses {
		if st.Accepted.OK {
			targets[st.Namespace+"/"+st.Name] = append(targets[st.Namespace+"/"+st.Name], ServiceKey{st.Namespace, string(st.Target.Name)})
		}
	}
	for _, p := range in.ResiliencePolicies {
		add("ResiliencePolicy", p, nil, targets[p.Namespace+"/"+p.Name], "")
	}
	slices.SortFunc(out, func(a, b Scope) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// egressSources are the sources of eg the model takes (egress.go): the
// service accounts of its own namespace.
func egressSources(eg *policyv1alpha1.Egress) []Identity {
	var ids []Identity
	for _, s := range eg.Spec.Sources {
		if s.Kind == policyv1alpha1.EgressSourceServiceAccount && s.Name != "" && s.Namespace == eg.Namespace {
			ids = append(ids, Identity{Namespace: s.Namespace, ServiceAccount: s.Name})
		}
	}
	return ids
}

func ingressBackends(ib *policyv1alpha1.IngressBackend) []ServiceKey {
	var out []ServiceKey
	for _, b := range ib.Spec.Backends {
		out = append(out, ServiceKey{ib.Namespace, b.Name})
	}
	return out
}

// backers are the identities backing the services of keys.
func (m *Mesh) backers(keys []ServiceKey) []Identity {
	var ids []Identity
	for _, k := range keys {
		if s := m.Service(k); s != nil {
			ids = append(ids, s.Identities...)
		}
	}
	return ids
}

func compareIdentities(a, b Identity) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.ServiceAccount, b.ServiceAccount))
}

func compareServiceKeys(a, b ServiceKey) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}
