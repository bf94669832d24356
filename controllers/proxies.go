package controllers

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/census"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete

// readCensus reads the census of the xDS replicas' Leases.
func readCensus(ctx context.Context, r client.Reader, namespace string) (census.Census, error) {
	c, err := census.Read(ctx, r, namespace, time.Now())
	if err != nil {
		return census.Census{}, err
	}
	for _, err := range c.Invalid {
		logf.FromContext(ctx).Error(err, "Ignoring an xDS replica Lease")
	}
	return c, nil
}

// proxyConfigReady is the ProxyConfigReady condition of the groups of
// namespaces, from those the census says failed, and the outcome it means.
func proxyConfigReady(failing census.Failing, namespaces map[string]bool) (metav1.Condition, outcome) {
	groups := 0
	var shown []string
	for _, ns := range slices.Sorted(maps.Keys(failing)) {
		if !namespaces[ns] {
			continue
		}
		f := failing[ns]
		groups += f.Groups
		for _, g := range slices.Sorted(maps.Keys(f.Errors)) {
			if len(shown) < maxProblemsShown {
				shown = append(shown, g+": "+f.Errors[g])
			}
		}
	}
	if groups == 0 {
		return condition(meshv1alpha1.ConditionProxyConfigReady, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "The config of every proxy group is published"), outcome{}
	}
	msg := fmt.Sprintf("%d proxy groups keep their last good config, their translation failed: %s", groups, strings.Join(shown, "; "))
	if groups > len(shown) {
		msg += "; …"
	}
	// Retrying the same inputs fails the same way: it takes a change.
	return condition(meshv1alpha1.ConditionProxyConfigReady, metav1.ConditionFalse, meshv1alpha1.ReasonTranslationFailed, msg),
		outcome{reason: meshv1alpha1.ReasonTranslationFailed, message: msg, stalled: true}
}

// groupConfigReady is the ProxyConfigReady condition of one proxy group, a
// VM's, from the census, and the outcome it means. A Lease names at most
// census.MaxErrors failing groups of a namespace: when more fail and this
// one is not named, the condition says it cannot tell.
func groupConfigReady(failing census.Failing, g mesh.Group) (metav1.Condition, outcome) {
	f := failing[g.Identity.Namespace]
	if e, ok := f.Errors[g.String()]; ok {
		msg := fmt.Sprintf("the proxy keeps its last good config, the translation of its group %s failed: %s", g, e)
		return condition(meshv1alpha1.ConditionProxyConfigReady, metav1.ConditionFalse, meshv1alpha1.ReasonTranslationFailed, msg),
			outcome{reason: meshv1alpha1.ReasonTranslationFailed, message: msg, stalled: true}
	}
	if f.Groups > len(f.Errors) {
		msg := fmt.Sprintf("%d proxy groups of namespace %s failed their translation and the census names only %d; group %s may be one of the others",
			f.Groups, g.Identity.Namespace, len(f.Errors), g)
		return condition(meshv1alpha1.ConditionProxyConfigReady, metav1.ConditionUnknown, meshv1alpha1.ReasonTranslationFailed, msg), outcome{}
	}
	return condition(meshv1alpha1.ConditionProxyConfigReady, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "The proxy's config is published"), outcome{}
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

// censusHandler enqueues, for a replica Lease event that changes the failing
// groups of some namespaces, or their counts when counts is set, what
// toRequests returns for them. Counts change whenever a sidecar connects:
// a status that shows none need not follow them.
func censusHandler(counts bool, toRequests func(ctx context.Context, namespaces []string) []reconcile.Request) handler.EventHandler {
	enqueue := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], old, new client.Object) {
		var before, after census.Report
		if l, ok := old.(*coordinationv1.Lease); ok && l != nil {
			before, _ = census.Decode(l)
		}
		if l, ok := new.(*coordinationv1.Lease); ok && l != nil {
			after, _ = census.Decode(l)
		}
		namespaces := map[string]bool{}
		for _, r := range []census.Report{before, after} {
			for ns := range r.Counts {
				namespaces[ns] = true
			}
			for ns := range r.Failing {
				namespaces[ns] = true
			}
		}
		var changed []string
		for ns := range namespaces {
			_, was := before.Counts[ns]
			_, is := after.Counts[ns]
			countsChanged := was != is || before.Counts[ns] != after.Counts[ns]
			if counts && countsChanged || !equality.Semantic.DeepEqual(before.Failing[ns], after.Failing[ns]) {
				changed = append(changed, ns)
			}
		}
		// A MeshVM's connection shows in its status, whatever counts says.
		for _, ns := range vmConnectionsChanged(before.VMs, after.VMs) {
			if !slices.Contains(changed, ns) {
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

// SetupWithManager registers the reconciler of the xDS replicas' Leases.
func (r *ReplicaLeaseReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := ctrl.NewControllerManagedBy(mgr).
		For(&coordinationv1.Lease{}).
		Named("xds-replica-lease").
		Complete(r); err != nil {
		return fmt.Errorf("setting up the xDS replica Lease controller: %w", err)
	}
	return nil
}

// vmConnectionsChanged are the namespaces of the MeshVMs whose connection
// differs between two reports of a replica.
func vmConnectionsChanged(before, after census.VMs) []string {
	var out []string
	for _, vms := range []census.VMs{before, after} {
		for key := range vms {
			if before[key] != after[key] {
				ns, _, _ := strings.Cut(key, "/")
				if !slices.Contains(out, ns) {
					out = append(out, ns)
				}
			}
		}
	}
	return out
}
