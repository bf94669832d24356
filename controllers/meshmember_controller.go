package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/webhooks/inject"
)

// +kubebuilder:rbac:groups=mesh.openservicemesh.io,resources=meshmembers/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=list;watch;patch

// memberFinalizer lets the operator take its namespace label back before a
// MeshMember goes.
const memberFinalizer = "mesh.openservicemesh.io/member"

// MeshMemberReconciler makes a namespace a member of a mesh: the monitor
// label, set by server-side apply under the operator's field manager, and one
// cert-manager Certificate per service account that member pods run as.
type MeshMemberReconciler struct {
	client.Client
	// Recorder records Events on transitions; nil records none.
	Recorder events.EventRecorder
	// Namespace is the operator's own, where the xDS replicas count their
	// connected proxies.
	Namespace string
	// SidecarImage is the operator's Envoy for meshes that name none;
	// empty means the build's.
	SidecarImage string
}

// Reconcile implements reconcile.Reconciler.
func (r *MeshMemberReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	mm := &meshv1alpha1.MeshMember{}
	if err := r.Get(ctx, req.NamespacedName, mm); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !mm.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.leave(ctx, mm)
	}
	if !controllerutil.ContainsFinalizer(mm, memberFinalizer) {
		controllerutil.AddFinalizer(mm, memberFinalizer)
		return ctrl.Result{}, r.Update(ctx, mm) // the update triggers the next pass
	}
	f, err := r.join(ctx, mm)
	if err != nil {
		return ctrl.Result{}, err
	}
	before := mm.DeepCopy()
	mm.Status = memberStatus(before, f)
	r.warnPodsWithoutProxy(mm, before.Status.PodsWithoutProxy)
	return reportStatus(ctx, r.Client, r.Recorder, mm, before)
}

// join labels the namespace and issues the identities of its member pods,
// and gathers what memberStatus needs.
func (r *MeshMemberReconciler) join(ctx context.Context, mm *meshv1alpha1.MeshMember) (memberFacts, error) {
	var f memberFacts
	mi, err := getMesh(ctx, r.Client, mm.Spec.Mesh)
	if mi == nil {
		return f, err
	}
	f.mesh = mi
	if err := r.applyLabel(ctx, mm.Namespace, map[string]string{meshv1alpha1.MonitorLabel: mi.Name}); err != nil {
		return f, err
	}
	sel := labels.Everything()
	if mm.Spec.Selector != nil {
		s, err := metav1.LabelSelectorAsSelector(mm.Spec.Selector)
		if err != nil {
			f.selectorErr = err
			return f, nil
		}
		sel = s
	}
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(mm.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return f, fmt.Errorf("listing member pods: %w", err)
	}
	f.pods = pods.Items
	if mm.Spec.RestartExistingWorkloads && mm.Spec.Injection != meshv1alpha1.InjectionDisabled {
		n, err := r.restartWorkloads(ctx, mm, sel, pods.Items)
		if err != nil {
			return f, err
		}
		if n > 0 {
			logf.FromContext(ctx).Info("Rolled workloads so that their pods get a sidecar", "count", n)
		}
	}
	f.identities = ensureIdentities(ctx, r.Client, mi, mm.Namespace, pods.Items, mm, true)
	if f.identities.invalid != "" {
		return f, nil
	}
	recordFailedIdentities(r.Recorder, mm, f.identities.failed)
	f.namespace = &corev1.Namespace{}
	if err := r.Get(ctx, client.ObjectKey{Name: mm.Namespace}, f.namespace); err != nil {
		return f, fmt.Errorf("reading namespace %s: %w", mm.Namespace, err)
	}
	var members meshv1alpha1.MeshMemberList
	if err := r.List(ctx, &members, client.InNamespace(mm.Namespace)); err != nil {
		return f, fmt.Errorf("listing the MeshMembers of %s: %w", mm.Namespace, err)
	}
	f.members = members.Items
	f.image = inject.SidecarImage(mi.Spec.Sidecar, r.SidecarImage)
	f.census, err = readCensus(ctx, r.Client, r.Namespace)
	return f, err
}

// warnPodsWithoutProxy records a warning Event when more member pods run
// without a sidecar than before, the count of the status as read.
func (r *MeshMemberReconciler) warnPodsWithoutProxy(mm *meshv1alpha1.MeshMember, before int32) {
	if n := mm.Status.PodsWithoutProxy; n > before && r.Recorder != nil {
		r.Recorder.Eventf(mm, nil, corev1.EventTypeWarning, "PodsWithoutProxy", "Inject", "%s", truncate(fmt.Sprintf(
			"%d member pods run without a sidecar, created while the injector was unreachable or before the namespace joined; roll them (first: %v)", n, mm.Status.PodsWithoutProxyNames), maxEventNote))
	}
}

// leave takes back the namespace label the operator set, and only that: a
// label a user set too stays. The identity Certificates the MeshMember owns
// go with their Secrets, unless a MeshVM of the namespace co-owns them.
func (r *MeshMemberReconciler) leave(ctx context.Context, mm *meshv1alpha1.MeshMember) error {
	if !controllerutil.ContainsFinalizer(mm, memberFinalizer) {
		return nil
	}
	// Applying to a namespace that is gone would create it again.
	ns := &corev1.Namespace{}
	err := r.Get(ctx, client.ObjectKey{Name: mm.Namespace}, ns)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading namespace %s: %w", mm.Namespace, err)
	}
	if err == nil && ns.DeletionTimestamp.IsZero() {
		if err := r.applyLabel(ctx, mm.Namespace, nil); err != nil {
			return err
		}
	}
	if err := releaseCertificates(ctx, r.Client, mm, mm.Namespace); err != nil {
		return err
	}
	controllerutil.RemoveFinalizer(mm, memberFinalizer)
	return r.Update(ctx, mm)
}

// applyLabel applies the operator's labels of a namespace: applying none
// releases them.
func (r *MeshMemberReconciler) applyLabel(ctx context.Context, namespace string, lbls map[string]string) error {
	ns := corev1ac.Namespace(namespace)
	if lbls != nil {
		ns.WithLabels(lbls)
	}
	if err := r.Apply(ctx, ns, client.FieldOwner(meshv1alpha1.FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying the labels of namespace %s: %w", namespace, err)
	}
	return nil
}
