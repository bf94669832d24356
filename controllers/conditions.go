package controllers

import (
	"context"
	"fmt"
	"slices"
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

// outcome is what a status function concluded of a resource, which
// conditionSet.summarize turns into the kstatus conditions. The zero value
// means ready.
type outcome struct {
	// reason and message explain why the resource is not ready; empty when it is.
	reason, message string
	// stalled is set for what retrying will not fix without a spec change.
	stalled bool
}

func (o outcome) ready() bool { return o.reason == "" }

// meshNotFound is the outcome of a member or VM whose MeshInstance does not
// exist: waiting, since the mesh may be applied next.
func meshNotFound(name string) outcome {
	return outcome{reason: meshv1alpha1.ReasonMeshNotFound, message: fmt.Sprintf("MeshInstance %s not found", name)}
}

// conditionSet builds the conditions a status function returns. It starts
// from the conditions of the status as read, so that a condition the
// reconcile did not get to judge stays as it was; a condition set replaces
// the one of its type where it stands, or comes last. It knows no clock:
// reportStatus gives the transitions their time.
type conditionSet struct {
	list       []metav1.Condition
	generation int64
}

func newConditionSet(prev []metav1.Condition, generation int64) *conditionSet {
	return &conditionSet{list: slices.Clone(prev), generation: generation}
}

// set sets c, a condition of type, status, reason and message, for the
// set's generation.
func (s *conditionSet) set(c metav1.Condition) {
	c.ObservedGeneration, c.LastTransitionTime = s.generation, metav1.Time{}
	if i := slices.IndexFunc(s.list, func(x metav1.Condition) bool { return x.Type == c.Type }); i >= 0 {
		s.list[i] = c
		return
	}
	s.list = append(s.list, c)
}

func (s *conditionSet) remove(t string) {
	s.list = slices.DeleteFunc(s.list, func(c metav1.Condition) bool { return c.Type == t })
}

// summarize sets Ready, Reconciling and Stalled from o the way kstatus
// reads them: Ready=True and the others removed when ready; Ready=False with
// Stalled=True for a terminal problem; Ready=False with Reconciling=True
// while waiting.
func (s *conditionSet) summarize(o outcome) {
	switch {
	case o.ready():
		s.set(condition(meshv1alpha1.ConditionReady, metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "Reconciled"))
		s.remove(meshv1alpha1.ConditionReconciling)
		s.remove(meshv1alpha1.ConditionStalled)
	case o.stalled:
		s.set(condition(meshv1alpha1.ConditionReady, metav1.ConditionFalse, o.reason, o.message))
		s.set(condition(meshv1alpha1.ConditionStalled, metav1.ConditionTrue, o.reason, o.message))
		s.remove(meshv1alpha1.ConditionReconciling)
	default:
		s.set(condition(meshv1alpha1.ConditionReady, metav1.ConditionFalse, o.reason, o.message))
		s.set(condition(meshv1alpha1.ConditionReconciling, metav1.ConditionTrue, o.reason, o.message))
		s.remove(meshv1alpha1.ConditionStalled)
	}
}

// condition is a condition as a status function judges it: its generation
// and time are the conditionSet's and reportStatus's.
func condition(t string, s metav1.ConditionStatus, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg}
}

// applyConditions makes want the conditions of conds the way
// meta.SetStatusCondition does: a condition keeps its lastTransitionTime
// while its status stays, a new status takes now, a new condition comes
// last; and a condition want has not is removed.
func applyConditions(conds *[]metav1.Condition, want []metav1.Condition, now metav1.Time) {
	*conds = slices.DeleteFunc(*conds, func(c metav1.Condition) bool { return meta.FindStatusCondition(want, c.Type) == nil })
	for _, c := range want {
		if c.LastTransitionTime.IsZero() {
			c.LastTransitionTime = now
		}
		meta.SetStatusCondition(conds, c)
	}
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
}

// reportStatus ends a reconcile, the one place a status is written: obj
// holds the status its kind's status function returned, before is obj as
// it was read. It applies the conditions over before's (applyConditions),
// records an Event on a Ready transition, patches the status only when it
// changed, and asks to be run again while the resource is Reconciling.
func reportStatus(ctx context.Context, c client.Client, rec events.EventRecorder, obj, before statusObject) (ctrl.Result, error) {
	conds := obj.StatusConditions()
	want := *conds
	*conds = slices.Clone(*before.StatusConditions())
	applyConditions(conds, want, metav1.Now())
	announce(rec, obj, *before.StatusConditions(), *conds)
	// Pods come and go all the time; an unchanged status costs no write.
	if !equality.Semantic.DeepEqual(before, obj) {
		if err := c.Status().Patch(ctx, obj, client.MergeFrom(before)); err != nil {
			return ctrl.Result{}, fmt.Errorf("patching the status of %s: %w", obj.GetName(), err)
		}
	}
	if w := meta.FindStatusCondition(*conds, meshv1alpha1.ConditionReconciling); w != nil && w.Status == metav1.ConditionTrue {
		logf.FromContext(ctx).V(1).Info("Waiting", "reason", w.Reason, "message", w.Message)
		return ctrl.Result{RequeueAfter: waitRequeue}, nil
	}
	return ctrl.Result{}, nil
}

// waitRequeue is how soon a resource that waits (for an issuer, a
// certificate, a Service) is looked at again, besides its watches.
const waitRequeue = 10 * time.Second

// getMesh reads the MeshInstance a member or VM names: nil when there is
// none (meshNotFound).
func getMesh(ctx context.Context, c client.Client, name string) (*meshv1alpha1.MeshInstance, error) {
	mi := &meshv1alpha1.MeshInstance{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, mi); apierrors.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("reading MeshInstance %s: %w", name, err)
	}
	return mi, nil
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
