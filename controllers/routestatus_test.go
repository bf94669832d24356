package controllers_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
)

// TestRouteStatusSaysWhatTheMeshMadeOfEachParent: the leader writes, on
// each HTTPRoute and GRPCRoute of a mesh's namespaces, one status.parents
// entry per parentRef naming a Service, with Accepted and ResolvedRefs and
// the reason Gateway API defines, at the route's generation, next to the
// entries of other controllers, which it keeps. A ReferenceGrant made later
// resolves what it grants.
func TestRouteStatusSaysWhatTheMeshMadeOfEachParent(t *testing.T) {
	ctx := context.Background()
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "route-status"}}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, map[string]string{meshv1alpha1.MonitorLabel: mi.Name})
	other := newNamespace(t, map[string]string{meshv1alpha1.MonitorLabel: mi.Name})
	for _, s := range []struct{ ns, name string }{{ns, "echo"}, {ns, "echo-v1"}, {other, "ext"}} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.ns}, Spec: corev1.ServiceSpec{
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, AppProtocol: ptr.To("http")}}}}
		if err := k8s.Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
	}
	svcRef := func(name string, port *gwv1.PortNumber) gwv1.ParentReference {
		return gwv1.ParentReference{Group: ptr.To(gwv1.Group("")), Kind: ptr.To(gwv1.Kind("Service")), Name: gwv1.ObjectName(name), Port: port}
	}
	backend := func(ns, name string) gwv1.HTTPBackendRef {
		ref := gwv1.HTTPBackendRef{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(name), Port: ptr.To(gwv1.PortNumber(80))}}}
		if ns != "" {
			ref.Namespace = ptr.To(gwv1.Namespace(ns))
		}
		return ref
	}
	route := func(name string, parents []gwv1.ParentReference, rule gwv1.HTTPRouteRule) *gwv1.HTTPRoute {
		return &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: parents}, Rules: []gwv1.HTTPRouteRule{rule}}}
	}
	gatewayRef := gwv1.ParentReference{Name: "ingress"}
	routes := []*gwv1.HTTPRoute{
		route("good", []gwv1.ParentReference{svcRef("echo", ptr.To(gwv1.PortNumber(80))), gatewayRef},
			gwv1.HTTPRouteRule{BackendRefs: []gwv1.HTTPBackendRef{backend("", "echo-v1")}}),
		route("missing-backend", []gwv1.ParentReference{svcRef("echo", nil)},
			gwv1.HTTPRouteRule{BackendRefs: []gwv1.HTTPBackendRef{backend("", "ghost")}}),
		route("no-parent", []gwv1.ParentReference{svcRef("ghost", nil), svcRef("echo", ptr.To(gwv1.PortNumber(8080)))},
			gwv1.HTTPRouteRule{BackendRefs: []gwv1.HTTPBackendRef{backend("", "echo-v1")}}),
		route("cors", []gwv1.ParentReference{svcRef("echo-v1", nil)}, gwv1.HTTPRouteRule{
			Filters:     []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterCORS, CORS: &gwv1.HTTPCORSFilter{AllowOrigins: []gwv1.CORSOrigin{"https://example.com"}}}},
			BackendRefs: []gwv1.HTTPBackendRef{backend("", "echo-v1")}}),
		route("cross-namespace", []gwv1.ParentReference{svcRef("echo", nil)},
			gwv1.HTTPRouteRule{BackendRefs: []gwv1.HTTPBackendRef{backend(other, "ext")}}),
	}
	for _, r := range routes {
		if err := k8s.Create(ctx, r); err != nil {
			t.Fatalf("creating HTTPRoute %s: %v", r.Name, err)
		}
	}
	// A Gateway's controller has written its entry on the good route.
	good := routes[0]
	gatewayEntry := gwv1.RouteParentStatus{ParentRef: gatewayRef, ControllerName: "example.com/gateway", Conditions: []metav1.Condition{{
		Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", Message: "by the gateway", LastTransitionTime: metav1.Now(), ObservedGeneration: 1}}}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(good), good); err != nil {
			return err
		}
		if len(good.Status.Parents) == 0 {
			return fmt.Errorf("no status yet")
		}
		good.Status.Parents = append(good.Status.Parents, gatewayEntry)
		return k8s.Status().Update(ctx, good)
	})

	type want struct {
		parent                   int
		accepted, resolved       metav1.ConditionStatus
		acceptedWhy, resolvedWhy gwv1.RouteConditionReason
		says                     string
	}
	expect := map[string][]want{
		"good":            {{0, metav1.ConditionTrue, metav1.ConditionTrue, gwv1.RouteReasonAccepted, gwv1.RouteReasonResolvedRefs, "every caller"}},
		"missing-backend": {{0, metav1.ConditionTrue, metav1.ConditionFalse, gwv1.RouteReasonAccepted, gwv1.RouteReasonBackendNotFound, "ghost"}},
		"no-parent": {
			{0, metav1.ConditionFalse, metav1.ConditionTrue, gwv1.RouteReasonNoMatchingParent, gwv1.RouteReasonResolvedRefs, "is not a Service of mesh"},
			{1, metav1.ConditionFalse, metav1.ConditionTrue, gwv1.RouteReasonNoMatchingParent, gwv1.RouteReasonResolvedRefs, "has no port 8080"},
		},
		"cors":            {{0, metav1.ConditionFalse, metav1.ConditionTrue, gwv1.RouteReasonUnsupportedValue, gwv1.RouteReasonResolvedRefs, "spec.rules[0].filters[0]: filter CORS is not supported"}},
		"cross-namespace": {{0, metav1.ConditionTrue, metav1.ConditionFalse, gwv1.RouteReasonAccepted, gwv1.RouteReasonRefNotPermitted, "no ReferenceGrant"}},
	}
	check := func(name string, wants []want) error {
		hr := &gwv1.HTTPRoute{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, hr); err != nil {
			return err
		}
		var ours []gwv1.RouteParentStatus
		for _, p := range hr.Status.Parents {
			if p.ControllerName == meshv1alpha1.RouteControllerName {
				ours = append(ours, p)
			}
		}
		if len(ours) != len(wants) {
			return fmt.Errorf("HTTPRoute %s: %d entries of ours, want %d: %+v", name, len(ours), len(wants), hr.Status.Parents)
		}
		for i, w := range wants {
			p := ours[i]
			if p.ParentRef.Name != hr.Spec.ParentRefs[w.parent].Name || ptr.Deref(p.ParentRef.Port, 0) != ptr.Deref(hr.Spec.ParentRefs[w.parent].Port, 0) {
				return fmt.Errorf("HTTPRoute %s: entry %d is of parent %+v, want %+v", name, i, p.ParentRef, hr.Spec.ParentRefs[w.parent])
			}
			a := meta.FindStatusCondition(p.Conditions, string(gwv1.RouteConditionAccepted))
			r := meta.FindStatusCondition(p.Conditions, string(gwv1.RouteConditionResolvedRefs))
			if a == nil || r == nil {
				return fmt.Errorf("HTTPRoute %s: conditions %+v", name, p.Conditions)
			}
			if a.Status != w.accepted || a.Reason != string(w.acceptedWhy) || r.Status != w.resolved || r.Reason != string(w.resolvedWhy) {
				return fmt.Errorf("HTTPRoute %s parent %d: Accepted %s/%s, ResolvedRefs %s/%s; want %s/%s, %s/%s (%q; %q)", name, w.parent,
					a.Status, a.Reason, r.Status, r.Reason, w.accepted, w.acceptedWhy, w.resolved, w.resolvedWhy, a.Message, r.Message)
			}
			if !strings.Contains(a.Message+" "+r.Message, w.says) {
				return fmt.Errorf("HTTPRoute %s parent %d: %q and %q do not say %q", name, w.parent, a.Message, r.Message, w.says)
			}
			if a.ObservedGeneration != hr.Generation || r.ObservedGeneration != hr.Generation {
				return fmt.Errorf("HTTPRoute %s: observedGeneration %d/%d, generation %d", name, a.ObservedGeneration, r.ObservedGeneration, hr.Generation)
			}
		}
		if name == "good" {
			// Kept wherever it stands: the mesh rewrites the list only when
			// a reconcile of its own comes, and the order means nothing.
			if len(hr.Status.Parents) != 2 || !slices.ContainsFunc(hr.Status.Parents, func(p gwv1.RouteParentStatus) bool { return p.ControllerName == gatewayEntry.ControllerName }) {
				return fmt.Errorf("the gateway's entry is not kept: %+v", hr.Status.Parents)
			}
			// kstatus (Flux's health check) reads a route as it reads any
			// object with no conditions of its own at the top.
			u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(hr)
			if err != nil {
				return err
			}
			res, err := status.Compute(&unstructured.Unstructured{Object: u})
			if err != nil || res.Status != status.CurrentStatus {
				return fmt.Errorf("kstatus: %v %v", res, err)
			}
		}
		return nil
	}
	for name, wants := range expect {
		testenv.Eventually(t, 30*time.Second, func() error { return check(name, wants) })
	}

	// A ReferenceGrant in the backend's namespace resolves it; a new
	// generation of a route is observed.
	grant := &gwv1beta1.ReferenceGrant{ObjectMeta: metav1.ObjectMeta{Name: "routes-of-" + ns, Namespace: other}, Spec: gwv1beta1.ReferenceGrantSpec{
		From: []gwv1beta1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: "HTTPRoute", Namespace: gwv1.Namespace(ns)}},
		To:   []gwv1beta1.ReferenceGrantTo{{Group: "", Kind: "Service", Name: ptr.To(gwv1.ObjectName("ext"))}},
	}}
	if err := k8s.Create(ctx, grant); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		return check("cross-namespace", []want{{0, metav1.ConditionTrue, metav1.ConditionTrue, gwv1.RouteReasonAccepted, gwv1.RouteReasonResolvedRefs, "Every backend resolves"}})
	})
	cors := &gwv1.HTTPRoute{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "cors"}, cors); err != nil {
		t.Fatal(err)
	}
	cors.Spec.Rules[0].Filters = nil
	if err := k8s.Update(ctx, cors); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		return check("cors", []want{{0, metav1.ConditionTrue, metav1.ConditionTrue, gwv1.RouteReasonAccepted, gwv1.RouteReasonResolvedRefs, "every caller"}})
	})
}

// TestResiliencePolicyStatusSaysWhichApplies: each targetRef of a
// ResiliencePolicy gets a status.ancestors entry: Accepted; Conflicted
// when an older policy holds the Service's port; TargetNotFound for a
// Service or port that is not there. Deleting the older policy accepts the
// newer one.
func TestResiliencePolicyStatusSaysWhichApplies(t *testing.T) {
	ctx := context.Background()
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "resilience-status"}}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, map[string]string{meshv1alpha1.MonitorLabel: mi.Name})
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: ns}, Spec: corev1.ServiceSpec{
		Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
	if err := k8s.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	target := func(name string, section *gwv1.SectionName) gwv1.LocalPolicyTargetReferenceWithSectionName {
		return gwv1.LocalPolicyTargetReferenceWithSectionName{LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{Group: "", Kind: "Service", Name: gwv1.ObjectName(name)}, SectionName: section}
	}
	policy := func(name string, refs ...gwv1.LocalPolicyTargetReferenceWithSectionName) *meshv1alpha1.ResiliencePolicy {
		return &meshv1alpha1.ResiliencePolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: meshv1alpha1.ResiliencePolicySpec{
			TargetRefs: refs, Resilience: meshv1alpha1.Resilience{Connections: &meshv1alpha1.ConnectionLimits{MaxRequests: ptr.To(int32(10))}}}}
	}
	older := policy("older", target("api", nil))
	if err := k8s.Create(ctx, older); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // creation timestamps are in seconds
	newer := policy("newer", target("api", nil), target("ghost", nil), target("api", ptr.To(gwv1.SectionName("grpc"))))
	if err := k8s.Create(ctx, newer); err != nil {
		t.Fatal(err)
	}
	check := func(name string, want ...gwv1.PolicyConditionReason) error {
		p := &meshv1alpha1.ResiliencePolicy{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, p); err != nil {
			return err
		}
		if len(p.Status.Ancestors) != len(want) {
			return fmt.Errorf("%s: %d ancestors, want %d: %+v", name, len(p.Status.Ancestors), len(want), p.Status.Ancestors)
		}
		for i, w := range want {
			a := p.Status.Ancestors[i]
			c := meta.FindStatusCondition(a.Conditions, string(gwv1.PolicyConditionAccepted))
			if a.ControllerName != meshv1alpha1.RouteControllerName || c == nil || c.Reason != string(w) || (c.Status == metav1.ConditionTrue) != (w == gwv1.PolicyReasonAccepted) || c.ObservedGeneration != p.Generation {
				return fmt.Errorf("%s ancestor %d (%s): %+v, want %s", name, i, a.AncestorRef.Name, c, w)
			}
		}
		return nil
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		return errors.Join(check("older", gwv1.PolicyReasonAccepted),
			check("newer", gwv1.PolicyReasonConflicted, gwv1.PolicyReasonTargetNotFound, gwv1.PolicyReasonTargetNotFound))
	})
	if err := k8s.Delete(ctx, older); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		return check("newer", gwv1.PolicyReasonAccepted, gwv1.PolicyReasonTargetNotFound, gwv1.PolicyReasonTargetNotFound)
	})
}

// TestAPIServerRefusesInvalidRoutes: what Gateway API's own CRDs, as the
// mesh installs them, refuse before the mesh sees it, naming the field.
func TestAPIServerRefusesInvalidRoutes(t *testing.T) {
	route := func(rule gwv1.HTTPRouteRule) func(string) client.Object {
		return func(ns string) client.Object {
			return &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "bad", Namespace: ns}, Spec: gwv1.HTTPRouteSpec{
				CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Group: ptr.To(gwv1.Group("")), Kind: ptr.To(gwv1.Kind("Service")), Name: "echo"}}},
				Rules:           []gwv1.HTTPRouteRule{rule}}}
		}
	}
	backend := []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "echo-v1", Port: ptr.To(gwv1.PortNumber(80))}}}}
	testenv.ExpectInvalid(t, k8s, newNamespace(t, nil), []testenv.Invalid{
		{Name: "a backend request timeout longer than the request's", Obj: route(gwv1.HTTPRouteRule{BackendRefs: backend,
			Timeouts: &gwv1.HTTPRouteTimeouts{Request: ptr.To(gwv1.Duration("1s")), BackendRequest: ptr.To(gwv1.Duration("2s"))}}),
			Field: "spec.rules[0].timeouts", Message: "backendRequest timeout cannot be longer than request timeout"},
		{Name: "a redirect and a rewrite", Obj: route(gwv1.HTTPRouteRule{Filters: []gwv1.HTTPRouteFilter{
			{Type: gwv1.HTTPRouteFilterRequestRedirect, RequestRedirect: &gwv1.HTTPRequestRedirectFilter{Scheme: ptr.To("https")}},
			{Type: gwv1.HTTPRouteFilterURLRewrite, URLRewrite: &gwv1.HTTPURLRewriteFilter{Hostname: ptr.To(gwv1.PreciseHostname("x.example"))}}}}),
			Field: "spec.rules[0].filters", Message: "May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both"},
		{Name: "a path that is not one", Obj: route(gwv1.HTTPRouteRule{BackendRefs: backend, Matches: []gwv1.HTTPRouteMatch{{
			Path: &gwv1.HTTPPathMatch{Type: ptr.To(gwv1.PathMatchPathPrefix), Value: ptr.To("no-slash")}}}}),
			Field: "spec.rules[0].matches[0].path", Message: "value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']"},
		{Name: "a retry code out of range", Obj: route(gwv1.HTTPRouteRule{BackendRefs: backend, Retry: &gwv1.HTTPRouteRetry{Codes: []gwv1.HTTPRouteRetryStatusCode{200}}}),
			Field: "spec.rules[0].retry.codes[0]", Message: "should be greater than or equal to 400"},
	})
}
