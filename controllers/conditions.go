package controllers

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// outcome is what a reconcile concluded, turned into kstatus conditions by
// setConditions. The zero value means ready.
type outcome struct {
	// reason and message explain why the resource is not ready; empty when it is.
	reason, message string
	// stalled is set for what retrying will not fix without a spec change.
	stalled bool
}

func (o outcome) ready() bool { return o.reason == "" }

// setConditions sets Ready, Reconciling and Stalled the way kstatus reads them:
// Ready=True and the others removed when ready; Ready=False with Stalled=True
// for a terminal problem; Ready=False with Reconciling=True while waiting.
func setConditions(conds *[]metav1.Condition, generation int64, o outcome) {
	set := func(t string, s metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(conds, metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: generation})
	}
	switch {
	case o.ready():
		set(meshv1alpha1.ConditionReady, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "Reconciled")
		meta.RemoveStatusCondition(conds, meshv1alpha1.ConditionReconciling)
		meta.RemoveStatusCondition(conds, meshv1alpha1.ConditionStalled)
	case o.stalled:
		set(meshv1alpha1.ConditionReady, metav1.ConditionFalse, o.reason, o.message)
		set(meshv1alpha1.ConditionStalled, metav1.ConditionTrue, o.reason, o.message)
		meta.RemoveStatusCondition(conds, meshv1alpha1.ConditionReconciling)
	default:
		set(meshv1alpha1.ConditionReady, metav1.ConditionFalse, o.reason, o.message)
		set(meshv1alpha1.ConditionReconciling, metav1.ConditionTrue, o.reason, o.message)
		meta.RemoveStatusCondition(conds, meshv1alpha1.ConditionStalled)
	}
}

func setCondition(conds *[]metav1.Condition, generation int64, t string, s metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(conds, metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: generation})
}

// announce records an Event when the Ready condition changed status between
// before and after: the transitions a user wants to see in kubectl describe.
func announce(rec events.EventRecorder, obj runtime.Object, before, after []metav1.Condition) {
	if rec == nil {
		return
	}
	was := meta.FindStatusCondition(before, meshv1alpha1.ConditionReady)
	now := meta.FindStatusCondition(after, meshv1alpha1.ConditionReady)
	if now == nil || was != nil && was.Status == now.Status && was.Reason == now.Reason {
		return
	}
	kind := corev1.EventTypeNormal
	if now.Status != metav1.ConditionTrue {
		kind = corev1.EventTypeWarning
	}
	rec.Eventf(obj, nil, kind, now.Reason, "Reconcile", "%s", now.Message)
}

// statusObject is one of the mesh API's kinds.
type statusObject interface {
	client.Object
	StatusConditions() *[]metav1.Condition
	SetObservedGeneration(int64)
}

// reportStatus ends a reconcile: it sets the kstatus conditions from o,
// records an Event on a Ready transition, patches the status against before
// and asks to be run again while waiting.
func reportStatus(ctx context.Context, c client.Client, rec events.EventRecorder, obj, before statusObject, o outcome) (ctrl.Result, error) {
	setConditions(obj.StatusConditions(), obj.GetGeneration(), o)
	obj.SetObservedGeneration(obj.GetGeneration())
	announce(rec, obj, *before.StatusConditions(), *obj.StatusConditions())
	// Pods come and go all the time; an unchanged status costs no write.
	if !equality.Semantic.DeepEqual(before, obj) {
		if err := c.Status().Patch(ctx, obj, client.MergeFrom(before)); err != nil {
			return ctrl.Result{}, fmt.Errorf("patching the status of %s: %w", obj.GetName(), err)
		}
	}
	if !o.ready() && !o.stalled {
		logf.FromContext(ctx).V(1).Info("Waiting", "reason", o.reason, "message", o.message)
		return ctrl.Result{RequeueAfter: waitRequeue}, nil
	}
	return ctrl.Result{}, nil
}

// waitRequeue is how soon a resource that waits (for an issuer, a
// certificate, a Service) is looked at again, besides its watches.
const waitRequeue = 10 * time.Second

// getMesh reads the MeshInstance a member or VM names. Without one it returns
// nil and the outcome to report (waiting: the mesh may be applied next).
func getMesh(ctx context.Context, c client.Client, name string) (*meshv1alpha1.MeshInstance, outcome, error) {
	mi := &meshv1alpha1.MeshInstance{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, mi); apierrors.IsNotFound(err) {
		return nil, outcome{reason: meshv1alpha1.ReasonMeshNotFound, message: fmt.Sprintf("MeshInstance %s not found", name)}, nil
	} else if err != nil {
		return nil, outcome{}, fmt.Errorf("reading MeshInstance %s: %w", name, err)
	}
	return mi, outcome{}, nil
}

// maxEventNote is the Events API's limit on a note, in bytes: the API
// server drops a longer Event, and the user would see nothing.
const maxEventNote = 1024

// truncate cuts s to at most n bytes, at a character boundary, marking the cut.
func truncate(s string, n int) string {
	const mark = "…"
	if len(s) <= n {
		return s
	}
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
