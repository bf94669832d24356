package mesh_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
)

// routeTo is an HTTPRoute in ns, of parent (ns/name) port 8080, sending
// everything to backend (ns/name).
func routeTo(ns, name string, parent, backend mesh.ServiceKey) *gwv1.HTTPRoute {
	return &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: gwv1.HTTPRouteSpec{
		CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Group: ptr.To(gwv1.Group("")), Kind: ptr.To(gwv1.Kind("Service")),
			Name: gwv1.ObjectName(parent.Name), Namespace: ptr.To(gwv1.Namespace(parent.Namespace))}}},
		Rules: []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{
			Name: gwv1.ObjectName(backend.Name), Namespace: ptr.To(gwv1.Namespace(backend.Namespace)), Port: ptr.To(gwv1.PortNumber(8080))}}}}}},
	}}
}

// TestRoutesCannotReachPastTheirScope: what a namespace's routes can do to
// others' traffic. A route in another namespace than its Service's is a
// consumer route: it routes its own namespace's callers and nobody else's.
// A route sends to a third namespace only where a ReferenceGrant there
// lets it (its requests are answered 500 otherwise); a grant of another
// kind, namespace or Service lets nothing. A route in a namespace of no
// mesh routes nothing.
func TestRoutesCannotReachPastTheirScope(t *testing.T) {
	in := meshtest.Synthetic(meshtest.Size{Namespaces: 3, Services: 6, PodsPerService: 1, IdentitiesPerService: 1, Permissive: true})
	shop0 := mesh.ServiceKey{Namespace: "ns-0", Name: "svc-0"}
	evilBackend := mesh.ServiceKey{Namespace: "ns-1", Name: "svc-1"}
	third := mesh.ServiceKey{Namespace: "ns-2", Name: "svc-2"}
	in.Namespaces = append(in.Namespaces, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "outside"}})
	in.HTTPRoutes = append(in.HTTPRoutes,
		// ns-1 reroutes ns-0's svc-0 to its own svc-1: for ns-1's callers only.
		routeTo("ns-1", "hijack", shop0, evilBackend),
		// ns-0's own route of svc-0 to ns-2's svc-2, with no grant.
		routeTo("ns-0", "to-third", mesh.ServiceKey{Namespace: "ns-0", Name: "svc-3"}, third),
		// A namespace of no mesh.
		routeTo("outside", "from-outside", mesh.ServiceKey{Namespace: "ns-0", Name: "svc-3"}, evilBackend),
	)
	// Grants that do not fit: another kind, another namespace, another Service.
	for _, from := range []gwv1beta1.ReferenceGrantFrom{
		{Group: gwv1.GroupName, Kind: "GRPCRoute", Namespace: "ns-0"},
		{Group: gwv1.GroupName, Kind: "HTTPRoute", Namespace: "ns-1"},
	} {
		in.ReferenceGrants = append(in.ReferenceGrants, &gwv1beta1.ReferenceGrant{ObjectMeta: metav1.ObjectMeta{Name: string(from.Kind) + "-" + string(from.Namespace), Namespace: "ns-2"},
			Spec: gwv1beta1.ReferenceGrantSpec{From: []gwv1beta1.ReferenceGrantFrom{from}, To: []gwv1beta1.ReferenceGrantTo{{Kind: "Service"}}}})
	}
	in.ReferenceGrants = append(in.ReferenceGrants, &gwv1beta1.ReferenceGrant{ObjectMeta: metav1.ObjectMeta{Name: "other-service", Namespace: "ns-2"},
		Spec: gwv1beta1.ReferenceGrantSpec{From: []gwv1beta1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: "HTTPRoute", Namespace: "ns-0"}},
			To: []gwv1beta1.ReferenceGrantTo{{Kind: "Service", Name: ptr.To(gwv1.ObjectName("svc-5"))}}}})

	m, problems := mesh.Build(in)
	for _, ns := range []string{"ns-0", "ns-2"} {
		if tb := m.RouteTable(ns, shop0, 8080); tb != nil {
			t.Errorf("the callers of %s see %v for svc-0: another namespace's route", ns, tb.Routes)
		}
	}
	if tb := m.RouteTable("ns-1", shop0, 8080); tb == nil || tb.Entries[0].Action.Backends[0].Service != evilBackend {
		t.Errorf("ns-1's own callers do not get ns-1's consumer route: %+v", tb)
	}
	tb := m.RouteTable("ns-0", mesh.ServiceKey{Namespace: "ns-0", Name: "svc-3"}, 8080)
	if tb == nil || len(tb.Routes) != 1 || !tb.Entries[0].Action.Backends[0].Invalid {
		t.Fatalf("svc-3's route to a namespace that granted nothing fitting: %+v", tb)
	}
	var said string
	for _, p := range problems {
		said += p.Error() + "\n"
	}
	if !strings.Contains(said, "no ReferenceGrant there allows HTTPRoutes of ns-0") {
		t.Errorf("the refused reference is not reported:\n%s", said)
	}
	if strings.Contains(said, "outside") {
		t.Errorf("a route of a namespace of no mesh was read:\n%s", said)
	}

	// The fitting grant resolves it.
	in.ReferenceGrants = append(in.ReferenceGrants, &gwv1beta1.ReferenceGrant{ObjectMeta: metav1.ObjectMeta{Name: "fits", Namespace: "ns-2"},
		Spec: gwv1beta1.ReferenceGrantSpec{From: []gwv1beta1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: "HTTPRoute", Namespace: "ns-0"}},
			To: []gwv1beta1.ReferenceGrantTo{{Kind: "Service", Name: ptr.To(gwv1.ObjectName("svc-2"))}}}})
	m, _ = mesh.Build(in)
	if tb := m.RouteTable("ns-0", mesh.ServiceKey{Namespace: "ns-0", Name: "svc-3"}, 8080); tb == nil || tb.Entries[0].Action.Backends[0].Invalid {
		t.Errorf("a fitting grant does not resolve the backend: %+v", tb)
	}
}
