package controllers

import (
	"context"
	"fmt"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	splitv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha4"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// SetupWithManager registers the MeshInstance reconciler: its mesh, what it
// owns (issuers, certificates, the trust bundle), the policy objects and
// members it reports on, and the census of connected proxies.
func (r *MeshInstanceReconciler) SetupWithManager(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr)
	// The Gateway API routes, when the cluster has their CRDs; not their
	// status, which the mesh writes itself.
	for _, obj := range []client.Object{&gwv1.HTTPRoute{}, &gwv1.GRPCRoute{}, &gwv1beta1.ReferenceGrant{}} {
		if served(mgr, obj) {
			b = b.Watches(obj, allMeshes(r.Client), builder.WithPredicates(predicate.GenerationChangedPredicate{}))
		}
	}
	if err := b.
		For(&meshv1alpha1.MeshInstance{}).
		Owns(&cmapi.ClusterIssuer{}).
		Owns(&cmapi.Certificate{}).
		Owns(&corev1.Secret{}). // the trust bundle: what proxies trust is the mesh's
		// Its copy in each namespace of the mesh (trustpublish.go).
		Owns(&corev1.ConfigMap{}).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
			if m := obj.GetLabels()[meshv1alpha1.MonitorLabel]; m != "" {
				return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: m}}}
			}
			return nil
		})).
		// Not their status, which the leader writes (enforced.go).
		Watches(&accessv1alpha3.TrafficTarget{}, allMeshes(r.Client), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&specsv1alpha4.HTTPRouteGroup{}, allMeshes(r.Client), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&specsv1alpha4.TCPRoute{}, allMeshes(r.Client), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&splitv1alpha4.TrafficSplit{}, allMeshes(r.Client), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// Not their status, which the mesh writes itself.
		Watches(&policyv1alpha1.IngressBackend{}, allMeshes(r.Client), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&policyv1alpha1.Egress{}, allMeshes(r.Client), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// What a policy names (a backend, a source, a split's root) may
		// appear or change after it.
		Watches(&corev1.Service{}, allMeshes(r.Client), builder.WithPredicates(serviceChanged)).
		Watches(&meshv1alpha1.MeshMember{}, allMeshes(r.Client)).
		Watches(&meshv1alpha1.ResiliencePolicy{}, allMeshes(r.Client), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&policyv1alpha1.UpstreamTrafficSetting{}, allMeshes(r.Client), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&policyv1alpha1.Retry{}, allMeshes(r.Client), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&meshv1alpha1.MeshVM{}, allMeshes(r.Client)).
		Watches(&cmapi.CertificateRequest{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
			cr := obj.(*cmapi.CertificateRequest)
			if _, other := approvedByAnother(cr); !other {
				return nil
			}
			var list meshv1alpha1.MeshInstanceList
			if err := r.Client.List(ctx, &list); err != nil {
				return nil
			}
			var out []reconcile.Request
			for i := range list.Items {
				if roleOf(&list.Items[i], cr.Spec.IssuerRef) != notTheMesh {
					out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: list.Items[i].Name}})
				}
			}
			return out
		})).
		Watches(&coordinationv1.Lease{}, censusHandler(true, func(ctx context.Context, namespaces []string) []reconcile.Request {
			var out []reconcile.Request
			for _, name := range namespaces {
				ns := &corev1.Namespace{}
				if err := r.Client.Get(ctx, client.ObjectKey{Name: name}, ns); err == nil && ns.Labels[meshv1alpha1.MonitorLabel] != "" {
					out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: ns.Labels[meshv1alpha1.MonitorLabel]}})
				}
			}
			return out
		})).
		Named("meshinstance").
		Complete(r); err != nil {
		return fmt.Errorf("setting up the MeshInstance controller: %w", err)
	}
	return nil
}

// serviceChanged passes a Service's creation, deletion and the change of
// its spec or labels, not of its status (a load balancer's address).
var serviceChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		old, cur := e.ObjectOld.(*corev1.Service), e.ObjectNew.(*corev1.Service)
		return !equality.Semantic.DeepEqual(old.Spec, cur.Spec) || !equality.Semantic.DeepEqual(old.Labels, cur.Labels)
	},
}

// served says whether the API server serves obj's kind, as the manager's
// REST mapper knows it when the manager starts.
func served(mgr ctrl.Manager, obj client.Object) bool {
	gvk, err := apiutil.GVKForObject(obj, mgr.GetScheme())
	if err != nil {
		return false
	}
	_, err = mgr.GetRESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	return err == nil
}
