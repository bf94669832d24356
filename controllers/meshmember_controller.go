package controllers

import (
	"context"
	"fmt"
	"slices"

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
	before := mm.DeepCopy()
	o, err := r.join(ctx, mm)
	if err != nil {
		return ctrl.Result{}, err
	}
	return reportStatus(ctx, r.Client, r.Recorder, mm, before, o)
}

// join labels the namespace and issues the identities of its member pods.
func (r *MeshMemberReconciler) join(ctx context.Context, mm *meshv1alpha1.MeshMember) (outcome, error) {
	mi, o, err := getMesh(ctx, r.Client, mm.Spec.Mesh)
	if mi == nil {
		return o, err
	}
	if err := r.applyLabel(ctx, mm.Namespace, map[string]string{meshv1alpha1.MonitorLabel: mi.Name}); err != nil {
		return outcome{}, err
	}
	sel := labels.Everything()
	if mm.Spec.Selector != nil {
		s, err := metav1.LabelSelectorAsSelector(mm.Spec.Selector)
		if err != nil {
			return outcome{reason: meshv1alpha1.ReasonInvalidSpec, message: fmt.Sprintf("spec.selector: %v", err), stalled: true}, nil
		}
		sel = s
	}
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(mm.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return outcome{}, fmt.Errorf("listing member pods: %w", err)
	}
	if mm.Spec.RestartExistingWorkloads && mm.Spec.Injection != meshv1alpha1.InjectionDisabled {
		n, err := r.restartWorkloads(ctx, mm, sel, pods.Items)
		if err != nil {
			return outcome{}, err
		}
		if n > 0 {
			logf.FromContext(ctx).Info("Rolled workloads so that their pods get a sidecar", "count", n)
		}
	}
	ids := ensureIdentities(ctx, r.Client, mi, mm.Namespace, pods.Items, mm, true)
	if ids.invalid != "" {
		return outcome{reason: meshv1alpha1.ReasonInvalidSpec, message: ids.invalid, stalled: true}, nil
	}
	recordFailedIdentities(r.Recorder, mm, ids.failed)
	if err := r.podsWithoutProxy(ctx, mm, pods.Items); err != nil {
		return outcome{}, err
	}
	podsWithOldProxy(mm, pods.Items, inject.SidecarImage(mi.Spec.Sidecar, r.SidecarImage))
	c, err := readCensus(ctx, r.Client, r.Namespace)
	if err != nil {
		return outcome{}, err
	}
	setIdentityStatus(&mm.Status, ids)
	mm.Status.ProxiesConnected = c.Counts[mm.Namespace]
	config := proxyConfig(&mm.Status.Conditions, mm.Generation, c.Failing, map[string]bool{mm.Namespace: true})
	idStatus, idReason, idMsg := identitiesCondition(ids)
	setCondition(&mm.Status.Conditions, mm.Generation, meshv1alpha1.ConditionIdentitiesReady, idStatus, idReason, idMsg)
	if idStatus != metav1.ConditionTrue {
		return outcome{reason: idReason, message: idMsg}, nil
	}
	return config, nil
}

// setIdentityStatus writes the identity counts of a MeshMember's status.
func setIdentityStatus(st *meshv1alpha1.MeshMemberStatus, ids identities) {
	st.Identities, st.IdentitiesReady, st.PodsInjected = int32(ids.accounts), int32(ids.ready), int32(ids.injected)
	failed := ids.failedAccounts()
	st.IdentitiesFailed = int32(len(failed))
	st.IdentitiesFailedNames = firstNames(failed)
}

// identitiesCondition is a MeshMember's IdentitiesReady: False while an
// identity failed, or waits for cert-manager.
func identitiesCondition(ids identities) (metav1.ConditionStatus, string, string) {
	if failed := ids.failedAccounts(); len(failed) > 0 {
		return metav1.ConditionFalse, meshv1alpha1.ReasonIdentityFailed, fmt.Sprintf(
			"the identity Certificates of %d of %d service accounts could not be written (the others are issued on their own); their Events say why: %v",
			len(failed), ids.accounts, firstNames(failed))
	}
	if n := len(ids.waiting); n > 0 {
		return metav1.ConditionFalse, meshv1alpha1.ReasonCertificatePending, fmt.Sprintf("waiting for %d of %d identities: %v", n, ids.accounts, firstNames(ids.waiting))
	}
	return metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, fmt.Sprintf("%d identities issued", ids.ready)
}

// maxStatusNames bounds the names a MeshMember's status lists, in its
// fields and its conditions' messages.
const maxStatusNames = 20

// firstNames are the first maxStatusNames of names, which are sorted.
func firstNames(names []string) []string {
	return names[:min(len(names), maxStatusNames)]
}

// podsWithoutProxy counts and names the member pods the injector would give
// a sidecar (inject.Decide, the injector's own rule) but that run without
// one, and records a warning Event when there are more than before.
func (r *MeshMemberReconciler) podsWithoutProxy(ctx context.Context, mm *meshv1alpha1.MeshMember, pods []corev1.Pod) error {
	ns := &corev1.Namespace{}
	if err := r.Get(ctx, client.ObjectKey{Name: mm.Namespace}, ns); err != nil {
		return fmt.Errorf("reading namespace %s: %w", mm.Namespace, err)
	}
	var members meshv1alpha1.MeshMemberList
	if err := r.List(ctx, &members, client.InNamespace(mm.Namespace)); err != nil {
		return fmt.Errorf("listing the MeshMembers of %s: %w", mm.Namespace, err)
	}
	var names []string
	for i := range pods {
		p := &pods[i]
		if !live(p) {
			continue
		}
		if d, err := inject.Decide(p, ns, members.Items); err == nil && d.Inject {
			names = append(names, p.Name)
		}
	}
	slices.Sort(names)
	before := mm.Status.PodsWithoutProxy
	mm.Status.PodsWithoutProxy = int32(len(names))
	mm.Status.PodsWithoutProxyNames = firstNames(names)
	if n := mm.Status.PodsWithoutProxy; n > before && r.Recorder != nil {
		r.Recorder.Eventf(mm, nil, corev1.EventTypeWarning, "PodsWithoutProxy", "Inject", "%s", truncate(fmt.Sprintf(
			"%d member pods run without a sidecar, created while the injector was unreachable or before the namespace joined; roll them (first: %v)", n, mm.Status.PodsWithoutProxyNames), maxEventNote))
	}
	return nil
}

// live says whether a pod runs or will: not being deleted, not ended.
func live(p *corev1.Pod) bool {
	return p.DeletionTimestamp.IsZero() && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

// podsWithOldProxy counts and names the member pods whose Envoy sidecar
// runs another image than image, the mesh's, and sets ProxiesUpToDate. It
// leaves Ready alone: those proxies still work.
func podsWithOldProxy(mm *meshv1alpha1.MeshMember, pods []corev1.Pod, image string) {
	var names []string
	for i := range pods {
		p := &pods[i]
		if got, ok := inject.ProxyImage(p); ok && live(p) && got != image {
			names = append(names, p.Name)
		}
	}
	slices.Sort(names)
	mm.Status.PodsWithOldProxy = int32(len(names))
	mm.Status.PodsWithOldProxyNames = firstNames(names)
	if len(names) == 0 {
		setCondition(&mm.Status.Conditions, mm.Generation, meshv1alpha1.ConditionProxiesUpToDate, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded,
			fmt.Sprintf("Every member sidecar runs the mesh's Envoy, %s", image))
		return
	}
	setCondition(&mm.Status.Conditions, mm.Generation, meshv1alpha1.ConditionProxiesUpToDate, metav1.ConditionFalse, meshv1alpha1.ReasonProxyImageOutdated,
		fmt.Sprintf("%d member pods run another Envoy than the mesh's %s (first: %v): roll them to move them to it", len(names), image, mm.Status.PodsWithOldProxyNames))
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
