package controllers

import (
	"context"
	"fmt"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// SetupWithManager registers the MeshMember reconciler: its member, the
// identity Certificates it owns, its mesh, the pods of its namespace and the
// census of connected proxies.
func (r *MeshMemberReconciler) SetupWithManager(mgr ctrl.Manager) error {
	membersOfMesh := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		var list meshv1alpha1.MeshMemberList
		if err := r.Client.List(ctx, &list, client.MatchingFields{meshIndex: obj.GetName()}); err != nil {
			return nil
		}
		return requests(list.Items)
	})
	membersInNamespace := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		var list meshv1alpha1.MeshMemberList
		if err := r.Client.List(ctx, &list, client.InNamespace(obj.GetNamespace())); err != nil {
			return nil
		}
		return requests(list.Items)
	})
	if err := ctrl.NewControllerManagedBy(mgr).
		For(&meshv1alpha1.MeshMember{}).
		Owns(&cmapi.Certificate{}).
		Watches(&meshv1alpha1.MeshInstance{}, membersOfMesh).
		Watches(&corev1.Pod{}, membersInNamespace).
		Watches(&coordinationv1.Lease{}, censusHandler(true, func(ctx context.Context, namespaces []string) []reconcile.Request {
			var out []reconcile.Request
			for _, ns := range namespaces {
				var list meshv1alpha1.MeshMemberList
				if err := r.Client.List(ctx, &list, client.InNamespace(ns)); err == nil {
					out = append(out, requests(list.Items)...)
				}
			}
			return out
		})).
		Named("meshmember").
		Complete(r); err != nil {
		return fmt.Errorf("setting up the MeshMember controller: %w", err)
	}
	return nil
}
