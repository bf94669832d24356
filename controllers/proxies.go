package controllers

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/open-service-mesh/osm-operator/xds/census"
)

// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete

// connectedSidecars reads the census of the xDS replicas' Leases.
func connectedSidecars(ctx context.Context, r client.Reader, namespace string) (census.Counts, error) {
	c, err := census.Read(ctx, r, namespace, time.Now())
	if err != nil {
		return nil, err
	}
	for _, err := range c.Invalid {
		logf.FromContext(ctx).Error(err, "Ignoring an xDS replica Lease")
	}
	return c.Counts, nil
}

// ReplicaLeaseReconciler deletes the Lease of an xDS replica that stopped
// renewing it (a replica that died without cleaning up), so that the mesh
// statuses stop counting its proxies, and the deletion tells them so.
type ReplicaLeaseReconciler struct {
	client.Client
}

// Reconcile implements reconcile.Reconciler.
func (r *ReplicaLeaseReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	l := &coordinationv1.Lease{}
	if err := r.Get(ctx, req.NamespacedName, l); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if wait := time.Until(census.Expiry(l)); wait > 0 {
		return ctrl.Result{RequeueAfter: wait + time.Second}, nil
	}
	logf.FromContext(ctx).Info("Deleting the Lease of an xDS replica that stopped renewing it", "holder", l.Spec.HolderIdentity)
	// The precondition keeps a renewal that just landed.
	err := r.Delete(ctx, l, client.Preconditions{ResourceVersion: &l.ResourceVersion})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return ctrl.Result{}, fmt.Errorf("deleting expired Lease %s: %w", req.NamespacedName, err)
	}
	return ctrl.Result{}, nil
}

// censusHandler enqueues, for a replica Lease event that changes counts,
// what toRequests returns for the namespaces whose counts changed.
func censusHandler(toRequests func(ctx context.Context, namespaces []string) []reconcile.Request) handler.EventHandler {
	enqueue := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], old, new client.Object) {
		var before, after census.Counts
		if l, ok := old.(*coordinationv1.Lease); ok && l != nil {
			before, _ = census.Decode(l)
		}
		if l, ok := new.(*coordinationv1.Lease); ok && l != nil {
			after, _ = census.Decode(l)
		}
		var changed []string
		for ns, n := range before {
			if after[ns] != n {
				changed = append(changed, ns)
			}
		}
		for ns := range after {
			if _, ok := before[ns]; !ok {
				changed = append(changed, ns)
			}
		}
		if len(changed) == 0 {
			return
		}
		for _, req := range toRequests(ctx, changed) {
			q.Add(req)
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, q, nil, e.Object)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, q, e.ObjectOld, e.ObjectNew)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, q, e.Object, nil)
		},
	}
}
