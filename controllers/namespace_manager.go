package controllers

import (
	"context"
	"fmt"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// SetupWithManager registers the reconciler of namespaces labelled by hand.
func (r *NamespaceReconciler) SetupWithManager(mgr ctrl.Manager) error {
	// Namespaces labelled by hand: identities when they have pods, none once
	// they leave, their mesh goes or a MeshMember takes over.
	namespaceOf := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: obj.GetNamespace()}}}
	})
	labelledFor := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		var list corev1.NamespaceList
		if err := r.Client.List(ctx, &list, client.MatchingLabels{meshv1alpha1.MonitorLabel: obj.GetName()}); err != nil {
			return nil
		}
		out := make([]reconcile.Request, 0, len(list.Items))
		for _, ns := range list.Items {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: ns.Name}})
		}
		return out
	})
	if err := ctrl.NewControllerManagedBy(mgr).
		For(&corev1.Namespace{}).
		Watches(&corev1.Pod{}, namespaceOf).
		Watches(&meshv1alpha1.MeshMember{}, namespaceOf).
		Watches(&cmapi.Certificate{}, namespaceOf).
		Watches(&corev1.Secret{}, namespaceOf).
		Watches(&meshv1alpha1.MeshInstance{}, labelledFor).
		Named("namespace").
		Complete(r); err != nil {
		return fmt.Errorf("setting up the Namespace controller: %w", err)
	}
	return nil
}
