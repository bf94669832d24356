package controllers

import (
	"context"
	"fmt"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// SetupWithManager registers the MeshVM reconciler: its VM, the EndpointSlices
// and Secrets it owns, the Certificates and Services of its namespace and the
// census of connected proxies.
func (r *MeshVMReconciler) SetupWithManager(mgr ctrl.Manager) error {
	vmsIn := func(ctx context.Context, namespaces []string) []reconcile.Request {
		var out []reconcile.Request
		for _, ns := range namespaces {
			var list meshv1alpha1.MeshVMList
			if err := r.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
				continue
			}
			for _, v := range list.Items {
				out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&v)})
			}
		}
		return out
	}
	vmsInNamespace := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		return vmsIn(ctx, []string{obj.GetNamespace()})
	})
	if err := ctrl.NewControllerManagedBy(mgr).
		For(&meshv1alpha1.MeshVM{}).
		Owns(&discoveryv1.EndpointSlice{}).
		Owns(&corev1.Secret{}).
		Watches(&cmapi.Certificate{}, vmsInNamespace).
		Watches(&corev1.Service{}, vmsInNamespace).
		// What decides the mesh of a VM's namespace (meshConflict): its
		// label, its MeshMembers, its other MeshVMs.
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
			return vmsIn(ctx, []string{obj.GetName()})
		})).
		Watches(&meshv1alpha1.MeshMember{}, vmsInNamespace).
		Watches(&meshv1alpha1.MeshVM{}, vmsInNamespace).
		// The mesh's trust bundle, what a VM's files say it trusts.
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
			m := obj.GetLabels()[meshv1alpha1.TrustBundleSecretLabel]
			if m == "" || obj.GetNamespace() != r.Namespace {
				return nil
			}
			var list meshv1alpha1.MeshVMList
			if err := r.Client.List(ctx, &list, client.MatchingFields{meshIndex: m}); err != nil {
				return nil
			}
			out := make([]reconcile.Request, 0, len(list.Items))
			for _, v := range list.Items {
				out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&v)})
			}
			return out
		})).
		// A VM's status shows its own connection, not the census's counts.
		Watches(&coordinationv1.Lease{}, censusHandler(false, vmsIn)).
		Named("meshvm").
		Complete(r); err != nil {
		return fmt.Errorf("setting up the MeshVM controller: %w", err)
	}
	return nil
}
