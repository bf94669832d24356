package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// +kubebuilder:rbac:groups=policy.openservicemesh.io,resources=ingressbackends/status;egresses/status;upstreamtrafficsettings/status;retries/status,verbs=patch

// Each policy of the kinds (IngressBackend, Egress, UpstreamTrafficSetting,
// Retry) has one writer of its status at a time:
// the mesh its namespace is labelled for, when that MeshInstance exists
// (its reconcile builds the model that says what resolved), else the
// policy reconciler, which says that no mesh reads the policy. Both run on
// the leader only, as every reconciler does (cmd/elected.go).

// writePolicyStatuses writes the statuses the mesh computed, each only when
// it changed.
func writePolicyStatuses(ctx context.Context, c client.Client, reports []policyReport) error {
	var errs []error
	for _, p := range reports {
		if _, err := reportStatus(ctx, c, nil, p.obj, p.before); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// policy is a policy kind of the policy.openservicemesh.io API, by pointer.
type policy[T any] interface {
	*T
	statusObject
}

// PolicyReconciler writes the status of the policies of kind T that no
// mesh reads: their namespace is labelled for no mesh, or for one that
// does not exist.
type PolicyReconciler[T any, P policy[T]] struct {
	client.Client
	// Recorder records Events on transitions; nil records none.
	Recorder events.EventRecorder
	// kind names the policy kind; setStatus sets the status of p that f
	// means; list lists the policies of a namespace.
	kind      string
	setStatus func(p P, f policyFacts)
	list      func(ctx context.Context, c client.Reader, namespace string) ([]client.ObjectKey, error)
}

// NewIngressBackendReconciler, NewEgressReconciler,
// NewUpstreamTrafficSettingReconciler and NewRetryReconciler make the
// policy reconcilers of the kinds.
func NewIngressBackendReconciler(c client.Client, rec events.EventRecorder) *PolicyReconciler[policyv1alpha1.IngressBackend, *policyv1alpha1.IngressBackend] {
	return newPolicyReconciler(c, rec, "IngressBackend",
		func(ib *policyv1alpha1.IngressBackend, f policyFacts) { ib.Status = ingressBackendStatus(ib, f) },
		func(l *policyv1alpha1.IngressBackendList) []policyv1alpha1.IngressBackend { return l.Items })
}

func NewEgressReconciler(c client.Client, rec events.EventRecorder) *PolicyReconciler[policyv1alpha1.Egress, *policyv1alpha1.Egress] {
	return newPolicyReconciler(c, rec, "Egress",
		func(eg *policyv1alpha1.Egress, f policyFacts) { eg.Status = egressStatus(eg, f) },
		func(l *policyv1alpha1.EgressList) []policyv1alpha1.Egress { return l.Items })
}

func NewUpstreamTrafficSettingReconciler(c client.Client, rec events.EventRecorder) *PolicyReconciler[policyv1alpha1.UpstreamTrafficSetting, *policyv1alpha1.UpstreamTrafficSetting] {
	return newPolicyReconciler(c, rec, "UpstreamTrafficSetting",
		func(u *policyv1alpha1.UpstreamTrafficSetting, f policyFacts) {
			u.Status = upstreamTrafficSettingStatus(u, f)
		},
		func(l *policyv1alpha1.UpstreamTrafficSettingList) []policyv1alpha1.UpstreamTrafficSetting {
			return l.Items
		})
}

func NewRetryReconciler(c client.Client, rec events.EventRecorder) *PolicyReconciler[policyv1alpha1.Retry, *policyv1alpha1.Retry] {
	return newPolicyReconciler(c, rec, "Retry",
		func(r *policyv1alpha1.Retry, f policyFacts) { r.Status = retryStatus(r, f) },
		func(l *policyv1alpha1.RetryList) []policyv1alpha1.Retry { return l.Items })
}

// newPolicyReconciler is the reconciler of the policies of kind, whose list
// type is L, with items its policies.
func newPolicyReconciler[T any, P policy[T], L any, PL interface {
	*L
	client.ObjectList
}](c client.Client, rec events.EventRecorder, kind string, setStatus func(P, policyFacts), items func(PL) []T) *PolicyReconciler[T, P] {
	return &PolicyReconciler[T, P]{Client: c, Recorder: rec, kind: kind, setStatus: setStatus,
		list: func(ctx context.Context, c client.Reader, ns string) ([]client.ObjectKey, error) {
			l := PL(new(L))
			err := c.List(ctx, l, client.InNamespace(ns))
			var out []client.ObjectKey
			for o := range mesh.Items(items(l)) {
				out = append(out, client.ObjectKeyFromObject(P(o)))
			}
			return out, err
		}}
}

// Reconcile implements reconcile.Reconciler.
func (r *PolicyReconciler[T, P]) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := P(new(T))
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.GetDeletionTimestamp().IsZero() {
		return ctrl.Result{}, nil
	}
	label, read, err := r.meshOf(ctx, obj.GetNamespace())
	if err != nil || read {
		return ctrl.Result{}, err // the mesh writes it
	}
	before := obj.DeepCopyObject().(P)
	r.setStatus(obj, policyFacts{label: label})
	return reportStatus(ctx, r.Client, r.Recorder, obj, before)
}

// meshOf says which mesh namespace is labelled for, and whether that mesh
// exists, so that it reads the namespace's policies.
func (r *PolicyReconciler[T, P]) meshOf(ctx context.Context, namespace string) (string, bool, error) {
	ns := &corev1.Namespace{}
	if err := r.Get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil {
		return "", false, client.IgnoreNotFound(err)
	}
	label := ns.Labels[meshv1alpha1.MonitorLabel]
	if label == "" || !ns.DeletionTimestamp.IsZero() {
		return "", false, nil
	}
	mi, err := getMesh(ctx, r.Client, label)
	if err != nil {
		return "", false, err
	}
	return label, mi != nil && mi.DeletionTimestamp.IsZero(), nil
}

// SetupWithManager registers the reconciler: its policies, their
// namespaces, and the meshes that come and go.
func (r *PolicyReconciler[T, P]) SetupWithManager(mgr ctrl.Manager) error {
	inNamespaces := func(ctx context.Context, namespaces ...string) []reconcile.Request {
		var out []reconcile.Request
		for _, ns := range namespaces {
			ks, err := r.list(ctx, r.Client, ns)
			if err != nil {
				continue
			}
			for _, k := range ks {
				out = append(out, reconcile.Request{NamespacedName: k})
			}
		}
		return out
	}
	if err := ctrl.NewControllerManagedBy(mgr).
		For(P(new(T))).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
			return inNamespaces(ctx, obj.GetName())
		})).
		// A mesh that appears or goes moves the policies of the
		// namespaces labelled for it between the two writers.
		Watches(&meshv1alpha1.MeshInstance{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
			var nss corev1.NamespaceList
			if err := r.List(ctx, &nss, client.MatchingLabels{meshv1alpha1.MonitorLabel: obj.GetName()}); err != nil {
				return nil
			}
			names := make([]string, 0, len(nss.Items))
			for _, ns := range nss.Items {
				names = append(names, ns.Name)
			}
			return inNamespaces(ctx, names...)
		}), builder.WithPredicates(meshComesOrGoes)).
		Named(strings.ToLower(r.kind)).
		Complete(r); err != nil {
		return fmt.Errorf("setting up the %s status controller: %w", r.kind, err)
	}
	return nil
}

// meshComesOrGoes passes a MeshInstance's creation, its deletion and the
// start of it; not its status, which changes all the time.
var meshComesOrGoes = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetDeletionTimestamp().IsZero() != e.ObjectNew.GetDeletionTimestamp().IsZero()
	},
}
