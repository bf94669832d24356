package controllers

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// want is a condition a status function must return: its status and
// reason, and a part of its message when msg is set.
type want struct {
	status metav1.ConditionStatus
	reason string
	msg    string
}

// checkConditions compares got with wants, by type; a type wanted with the
// zero want must be absent.
func checkConditions(t *testing.T, got []metav1.Condition, wants map[string]want) {
	t.Helper()
	for typ, w := range wants {
		c := meta.FindStatusCondition(got, typ)
		switch {
		case w == (want{}):
			if c != nil {
				t.Errorf("%s = %s %s %q, want none", typ, c.Status, c.Reason, c.Message)
			}
		case c == nil:
			t.Errorf("%s missing, want %s %s", typ, w.status, w.reason)
		case c.Status != w.status || c.Reason != w.reason || !strings.Contains(c.Message, w.msg):
			t.Errorf("%s = %s %s %q, want %s %s containing %q", typ, c.Status, c.Reason, c.Message, w.status, w.reason, w.msg)
		}
	}
}

// The summary, as kstatus reads it: Ready alone when ready; Stalled beside
// Ready for what a retry will not fix; Reconciling beside it while waiting.
func TestSummarize(t *testing.T) {
	stale := []metav1.Condition{
		{Type: meshv1alpha1.ConditionReconciling, Status: metav1.ConditionTrue, Reason: "Old"},
		{Type: meshv1alpha1.ConditionStalled, Status: metav1.ConditionTrue, Reason: "Old"},
	}
	for _, c := range []struct {
		name string
		o    outcome
		want map[string]want
	}{
		{"ready", outcome{}, map[string]want{
			meshv1alpha1.ConditionReady:       {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "Reconciled"},
			meshv1alpha1.ConditionReconciling: {}, meshv1alpha1.ConditionStalled: {},
		}},
		{"stalled", outcome{reason: "Bad", message: "bad spec", stalled: true}, map[string]want{
			meshv1alpha1.ConditionReady:       {metav1.ConditionFalse, "Bad", "bad spec"},
			meshv1alpha1.ConditionStalled:     {metav1.ConditionTrue, "Bad", "bad spec"},
			meshv1alpha1.ConditionReconciling: {},
		}},
		{"waiting", outcome{reason: "Later", message: "not yet"}, map[string]want{
			meshv1alpha1.ConditionReady:       {metav1.ConditionFalse, "Later", "not yet"},
			meshv1alpha1.ConditionReconciling: {metav1.ConditionTrue, "Later", "not yet"},
			meshv1alpha1.ConditionStalled:     {},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newConditionSet(stale, 7)
			s.summarize(c.o)
			checkConditions(t, s.list, c.want)
			for _, got := range s.list {
				if got.ObservedGeneration != 7 && got.Reason != "Old" {
					t.Errorf("%s observed generation %d, want 7", got.Type, got.ObservedGeneration)
				}
			}
			if stale[0].Reason != "Old" || stale[1].Reason != "Old" || len(stale) != 2 {
				t.Errorf("summarize changed the conditions it started from: %+v", stale)
			}
		})
	}
}

// reportStatus applies a status function's conditions as
// meta.SetStatusCondition would set them one by one: a condition whose
// status stays keeps its time, one that changes or is new takes now, a new
// one comes last, and one the function removed goes.
func TestApplyConditions(t *testing.T) {
	then := metav1.NewTime(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	now := metav1.NewTime(then.Add(time.Hour))
	prev := []metav1.Condition{
		{Type: "Same", Status: metav1.ConditionTrue, Reason: "A", Message: "old", LastTransitionTime: then, ObservedGeneration: 1},
		{Type: "Flips", Status: metav1.ConditionTrue, Reason: "A", LastTransitionTime: then, ObservedGeneration: 1},
		{Type: "Untouched", Status: metav1.ConditionFalse, Reason: "B", LastTransitionTime: then, ObservedGeneration: 1},
		{Type: "Goes", Status: metav1.ConditionTrue, Reason: "C", LastTransitionTime: then, ObservedGeneration: 1},
	}
	s := newConditionSet(prev, 2)
	s.set(condition("New", metav1.ConditionTrue, "D", "new"))
	s.set(condition("Flips", metav1.ConditionFalse, "E", "flipped"))
	s.set(condition("Same", metav1.ConditionTrue, "F", "new message"))
	s.remove("Goes")

	conds := append([]metav1.Condition(nil), prev...)
	applyConditions(&conds, s.list, now)
	var order []string
	for _, c := range conds {
		order = append(order, c.Type)
	}
	if got := strings.Join(order, ","); got != "Same,Flips,Untouched,New" {
		t.Errorf("order %s, want Same,Flips,Untouched,New", got)
	}
	for _, c := range []struct {
		typ    string
		since  metav1.Time
		reason string
		gen    int64
	}{
		{"Same", then, "F", 2},
		{"Flips", now, "E", 2},
		{"Untouched", then, "B", 1},
		{"New", now, "D", 2},
	} {
		got := meta.FindStatusCondition(conds, c.typ)
		if got == nil || !got.LastTransitionTime.Equal(&c.since) || got.Reason != c.reason || got.ObservedGeneration != c.gen {
			t.Errorf("%s = %+v, want since %s, reason %s, generation %d", c.typ, got, c.since, c.reason, c.gen)
		}
	}
	if prev[0].Message != "old" || prev[1].Status != metav1.ConditionTrue || len(prev) != 4 {
		t.Errorf("applying changed the conditions of the status function's input: %+v", prev)
	}
}
