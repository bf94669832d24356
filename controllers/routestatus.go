package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/equality"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes/status;grpcroutes/status,verbs=patch

// The operator writes status.parents entries of controller
// meshv1alpha1.RouteControllerName on the Gateway API routes attached to a
// mesh's Services: one per parentRef naming a Service. The entries of other
// controllers (a Gateway's) are theirs, and kept.

// The status of a route has one writer among meshes: the mesh whose member
// namespace holds the route, in its reconcile (on the leader), from the
// model it builds (mesh.RouteParentStatus).

// routeReport is a route as read (before) and with the status the mesh
// means (obj).
type routeReport struct {
	obj, before client.Object
}

// meshRouteReports are the statuses of the routes of the mesh's member
// namespaces: the entries of the parentRefs naming a Service, from m, next
// to the entries of other controllers. A route holding none of either
// writes nothing.
func meshRouteReports(namespaces []string, in mesh.Inputs, m *mesh.Mesh) []routeReport {
	members := make(map[string]bool, len(namespaces))
	for _, ns := range namespaces {
		members[ns] = true
	}
	byRoute := map[string][]mesh.RouteParentStatus{}
	for _, st := range m.RouteStatuses {
		k := string(st.Kind) + "/" + st.Namespace + "/" + st.Name
		byRoute[k] = append(byRoute[k], st)
	}
	var out []routeReport
	for _, hr := range in.HTTPRoutes {
		if !members[hr.Namespace] || hr.DeletionTimestamp != nil {
			continue
		}
		parents := routeParents(hr.Status.Parents, byRoute[string(mesh.KindHTTPRoute)+"/"+hr.Namespace+"/"+hr.Name])
		if parents == nil && len(hr.Status.Parents) == 0 {
			continue
		}
		obj := hr.DeepCopy()
		obj.Status.Parents = parents
		out = append(out, routeReport{obj: obj, before: hr.DeepCopy()})
	}
	for _, gr := range in.GRPCRoutes {
		if !members[gr.Namespace] || gr.DeletionTimestamp != nil {
			continue
		}
		parents := routeParents(gr.Status.Parents, byRoute[string(mesh.KindGRPCRoute)+"/"+gr.Namespace+"/"+gr.Name])
		if parents == nil && len(gr.Status.Parents) == 0 {
			continue
		}
		obj := gr.DeepCopy()
		obj.Status.Parents = parents
		out = append(out, routeReport{obj: obj, before: gr.DeepCopy()})
	}
	return out
}

// routeParents are the status.parents of a route: prev's entries of other
// controllers, then the mesh's, one per parentRef naming a Service, in
// spec order. A condition keeps its lastTransitionTime while its status
// does not change.
func routeParents(prev []gwv1.RouteParentStatus, ours []mesh.RouteParentStatus) []gwv1.RouteParentStatus {
	var out []gwv1.RouteParentStatus
	for _, p := range prev {
		if p.ControllerName != meshv1alpha1.RouteControllerName {
			out = append(out, p)
		}
	}
	for _, st := range ours {
		entry := gwv1.RouteParentStatus{ParentRef: st.ParentRef, ControllerName: meshv1alpha1.RouteControllerName}
		if i := slices.IndexFunc(prev, func(p gwv1.RouteParentStatus) bool {
			return p.ControllerName == meshv1alpha1.RouteControllerName && equality.Semantic.DeepEqual(p.ParentRef, st.ParentRef)
		}); i >= 0 {
			entry.Conditions = slices.Clone(prev[i].Conditions)
		}
		for _, c := range []struct {
			typ gwv1.RouteConditionType
			rc  mesh.RouteCondition
		}{{gwv1.RouteConditionAccepted, st.Accepted}, {gwv1.RouteConditionResolvedRefs, st.ResolvedRefs}} {
			status := metav1.ConditionFalse
			if c.rc.OK {
				status = metav1.ConditionTrue
			}
			meta.SetStatusCondition(&entry.Conditions, metav1.Condition{
				Type: string(c.typ), Status: status, Reason: c.rc.Reason,
				Message: truncate(c.rc.Message, maxPolicyMessage), ObservedGeneration: st.Generation,
			})
		}
		out = append(out, entry)
	}
	return out
}

// writeRouteStatuses writes the routes' statuses that changed, each with
// the resourceVersion it was read at: status.parents is a list other
// controllers write too, which a merge patch replaces whole. A conflict is
// retried by the next reconcile (the route's update brings one).
func writeRouteStatuses(ctx context.Context, c client.Client, reports []routeReport) error {
	var errs []error
	for _, r := range reports {
		if equality.Semantic.DeepEqual(r.obj, r.before) {
			continue
		}
		patch := client.MergeFromWithOptions(r.before, client.MergeFromWithOptimisticLock{})
		if err := c.Status().Patch(ctx, r.obj, patch); err != nil && !kerrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("patching the status of %T %s/%s: %w", r.obj, r.obj.GetNamespace(), r.obj.GetName(), err))
		}
	}
	return errors.Join(errs...)
}

// +kubebuilder:rbac:groups=mesh.openservicemesh.io,resources=resiliencepolicies/status,verbs=patch

// meshResilienceReports are the statuses of the ResiliencePolicies of the
// mesh's member namespaces: one status.ancestors entry per targetRef, the
// Service, next to other controllers' entries.
func meshResilienceReports(namespaces []string, in mesh.Inputs, m *mesh.Mesh) []routeReport {
	members := make(map[string]bool, len(namespaces))
	for _, ns := range namespaces {
		members[ns] = true
	}
	byPolicy := map[string][]mesh.PolicyAncestorStatus{}
	for _, st := range m.ResilienceStatuses {
		byPolicy[st.Namespace+"/"+st.Name] = append(byPolicy[st.Namespace+"/"+st.Name], st)
	}
	var out []routeReport
	for _, p := range in.ResiliencePolicies {
		if !members[p.Namespace] || p.DeletionTimestamp != nil {
			continue
		}
		obj := p.DeepCopy()
		obj.Status.Ancestors = nil
		for _, a := range p.Status.Ancestors {
			if a.ControllerName != meshv1alpha1.RouteControllerName {
				obj.Status.Ancestors = append(obj.Status.Ancestors, a)
			}
		}
		for _, st := range byPolicy[p.Namespace+"/"+p.Name] {
			ref := gwv1.ParentReference{Group: ptrTo(st.Target.Group), Kind: ptrTo(st.Target.Kind), Name: st.Target.Name, SectionName: st.Target.SectionName}
			entry := gwv1.PolicyAncestorStatus{AncestorRef: ref, ControllerName: meshv1alpha1.RouteControllerName}
			if i := slices.IndexFunc(p.Status.Ancestors, func(a gwv1.PolicyAncestorStatus) bool {
				return a.ControllerName == meshv1alpha1.RouteControllerName && equality.Semantic.DeepEqual(a.AncestorRef, ref)
			}); i >= 0 {
				entry.Conditions = slices.Clone(p.Status.Ancestors[i].Conditions)
			}
			status := metav1.ConditionFalse
			if st.Accepted.OK {
				status = metav1.ConditionTrue
			}
			meta.SetStatusCondition(&entry.Conditions, metav1.Condition{
				Type: string(gwv1.PolicyConditionAccepted), Status: status, Reason: st.Accepted.Reason,
				Message: truncate(st.Accepted.Message, maxPolicyMessage), ObservedGeneration: st.Generation,
			})
			obj.Status.Ancestors = append(obj.Status.Ancestors, entry)
		}
		out = append(out, routeReport{obj: obj, before: p.DeepCopy()})
	}
	return out
}
