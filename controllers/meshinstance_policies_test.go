package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	splitv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha4"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
)

// TestEveryObjectLeftOutIsCountedAndHasAnEvent: PoliciesValid names a few
// of the objects the mesh left out, but counts every one by kind, and each
// has a Warning Event of its own, recorded when its problem appears or
// changes, not on every reconcile. A user's object cannot make the
// condition or an Event too long for the API server to store.
func TestEveryObjectLeftOutIsCountedAndHasAnEvent(t *testing.T) {
	ctx := context.Background()
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "many-policies"}}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, map[string]string{meshv1alpha1.MonitorLabel: mi.Name})
	target := func(name string, rule accessv1alpha3.TrafficTargetRule) *accessv1alpha3.TrafficTarget {
		return &accessv1alpha3.TrafficTarget{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: accessv1alpha3.TrafficTargetSpec{
				Destination: accessv1alpha3.IdentityBindingSubject{Kind: "ServiceAccount", Name: "store"},
				Sources:     []accessv1alpha3.IdentityBindingSubject{{Kind: "ServiceAccount", Name: "buyer"}},
				Rules:       []accessv1alpha3.TrafficTargetRule{rule},
			},
		}
	}
	// Seven targets naming route groups that do not exist, a split of a
	// Service that does not exist, and a route group whose regex (quoted
	// in its problem) is 40 kB long.
	var objs []client.Object
	for i := range 7 {
		objs = append(objs, target(fmt.Sprintf("tt-%d", i), accessv1alpha3.TrafficTargetRule{Kind: "HTTPRouteGroup", Name: fmt.Sprintf("routes-%d", i)}))
	}
	objs = append(objs,
		&splitv1alpha4.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "canary", Namespace: ns}, Spec: splitv1alpha4.TrafficSplitSpec{
			Service: "ghost", Backends: []splitv1alpha4.TrafficSplitBackend{{Service: "ghost", Weight: 1}}}},
		&specsv1alpha4.HTTPRouteGroup{ObjectMeta: metav1.ObjectMeta{Name: "huge", Namespace: ns}, Spec: specsv1alpha4.HTTPRouteGroupSpec{
			Matches: []specsv1alpha4.HTTPMatch{{Name: "huge", PathRegex: "(" + strings.Repeat("a", 40000)}}}},
	)
	for _, o := range objs {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	conds := func() []metav1.Condition { return mi.Status.Conditions }
	testenv.Eventually(t, 30*time.Second, func() error {
		c := condition(t, mi, conds, meshv1alpha1.ConditionPoliciesValid)
		if c == nil || c.Status != metav1.ConditionFalse ||
			!strings.HasPrefix(c.Message, "1 HTTPRouteGroup, 1 TrafficSplit, 7 TrafficTargets left out") ||
			!strings.Contains(c.Message, "; and 4 more (each has a Warning Event)") {
			return fmt.Errorf("PoliciesValid = %+v", c)
		}
		if len(c.Message) > 4096 {
			return fmt.Errorf("a PoliciesValid message of %d bytes", len(c.Message))
		}
		return nil
	})

	// events are the Events on each object left out, by kind/name.
	events := func() (map[string][]eventsv1.Event, error) {
		var l eventsv1.EventList
		if err := k8s.List(ctx, &l, client.InNamespace(ns)); err != nil {
			return nil, err
		}
		out := map[string][]eventsv1.Event{}
		for _, e := range l.Items {
			if e.Reason == "LeftOutOfMesh" && e.Type == corev1.EventTypeWarning {
				out[e.Regarding.Kind+"/"+e.Regarding.Name] = append(out[e.Regarding.Kind+"/"+e.Regarding.Name], e)
			}
		}
		return out, nil
	}
	want := map[string]string{"TrafficSplit/canary": "spec.service: Service " + ns + "/ghost does not exist", "HTTPRouteGroup/huge": "error parsing regexp"}
	for i := range 7 {
		want[fmt.Sprintf("TrafficTarget/tt-%d", i)] = fmt.Sprintf("spec.rules[0]: HTTPRouteGroup %s/routes-%d does not exist", ns, i)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		got, err := events()
		if err != nil {
			return err
		}
		for obj, note := range want {
			if len(got[obj]) != 1 || !strings.Contains(got[obj][0].Note, note) || got[obj][0].Related == nil || got[obj][0].Related.Name != mi.Name {
				return fmt.Errorf("%s: events %+v; want one naming %q, related to the mesh", obj, got[obj], note)
			}
			if n := len(got[obj][0].Note); n > 1024 {
				return fmt.Errorf("%s: a note of %d bytes", obj, n)
			}
		}
		return nil
	})

	// Two changes, two reconciles: one target's problem is fixed, another's
	// changes. The changed one has a second Event; the others none, and no
	// series (an Event recorded again is a series).
	if err := k8s.Create(ctx, &specsv1alpha4.HTTPRouteGroup{ObjectMeta: metav1.ObjectMeta{Name: "routes-0", Namespace: ns}, Spec: specsv1alpha4.HTTPRouteGroupSpec{
		Matches: []specsv1alpha4.HTTPMatch{{Name: "all", PathRegex: ".*"}}}}); err != nil {
		t.Fatal(err)
	}
	changed := &accessv1alpha3.TrafficTarget{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "tt-1"}, changed); err != nil {
		t.Fatal(err)
	}
	changed.Spec.Rules = []accessv1alpha3.TrafficTargetRule{{Kind: "TCPRoute", Name: "db"}}
	if err := k8s.Update(ctx, changed); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		c := condition(t, mi, conds, meshv1alpha1.ConditionPoliciesValid)
		if c == nil || !strings.HasPrefix(c.Message, "1 HTTPRouteGroup, 1 TrafficSplit, 6 TrafficTargets left out") {
			return fmt.Errorf("PoliciesValid = %+v", c)
		}
		got, err := events()
		if err != nil {
			return err
		}
		if e := got["TrafficTarget/tt-1"]; len(e) != 2 || !strings.Contains(e[0].Note+e[1].Note, "TCPRoute "+ns+"/db does not exist") {
			return fmt.Errorf("tt-1: events %+v; want a second one naming the TCPRoute", e)
		}
		return nil
	})
	time.Sleep(2 * time.Second) // a repeated Event would be patched by now
	got, err := events()
	if err != nil {
		t.Fatal(err)
	}
	for obj := range want {
		if obj == "TrafficTarget/tt-1" {
			continue
		}
		for _, e := range got[obj] {
			if len(got[obj]) != 1 || e.Series != nil {
				t.Errorf("%s: events %+v; want the first one only, recorded once", obj, got[obj])
			}
		}
	}
}
