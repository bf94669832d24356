package controllers

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/xds/enforcement"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/runner"
)

// An SMI policy deleted and made again under its name is another object:
// what the writer judged of the first never lands on the second, whether
// it writes from what it wrote last or reads the object first.
func TestEnforcedNeverLandsOnAPolicyMadeAgain(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ctx, k := context.Background(), env.Client
	if err := k.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
		t.Fatal(err)
	}
	target := func() *accessv1alpha3.TrafficTarget {
		return &accessv1alpha3.TrafficTarget{ObjectMeta: metav1.ObjectMeta{Name: "buyer-to-store", Namespace: "shop"}, Spec: accessv1alpha3.TrafficTargetSpec{
			Destination: accessv1alpha3.IdentityBindingSubject{Kind: "ServiceAccount", Name: "store"}}}
	}
	first := target()
	if err := k.Create(ctx, first); err != nil {
		t.Fatal(err)
	}
	w := &EnforcedWriter{Client: k, APIReader: k, Log: logr.Discard()}
	w.init()
	p := runner.Policy{Scope: mesh.Scope{Kind: "TrafficTarget", Namespace: "shop", Name: "buyer-to-store", UID: first.UID, Generation: first.Generation}, Mesh: "demo"}
	want := policyStatusConditions(p, enforcement.Facts{Namespace: "shop", Generation: p.Generation})
	if err := w.write(ctx, p, want, time.Now()); err != nil {
		t.Fatalf("the first write: %v", err)
	}
	status := func() map[string]any {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("access.smi-spec.io/v1alpha3")
		u.SetKind("TrafficTarget")
		if err := k.Get(ctx, client.ObjectKeyFromObject(first), u); err != nil {
			t.Fatal(err)
		}
		st, _ := u.Object["status"].(map[string]any)
		return st
	}
	if st := status(); st == nil {
		t.Fatal("no status written")
	}

	if err := k.Delete(ctx, first); err != nil {
		t.Fatal(err)
	}
	second := target()
	if err := k.Create(ctx, second); err != nil {
		t.Fatal(err)
	}
	// From what it wrote last (no read): the uid test refuses it.
	if err := w.write(ctx, p, want, time.Now()); err == nil {
		t.Error("a write from memory was not refused on the object made again")
	}
	// Reading first: the object's uid is not the policy's.
	delete(w.written, policyKey{p.Kind, p.Namespace, p.Name, p.UID})
	if err := w.write(ctx, p, want, time.Now()); err != nil {
		t.Errorf("a write after a read: %v", err)
	}
	if st := status(); st != nil {
		raw, _ := json.Marshal(st)
		t.Errorf("the object made again has the first one's status: %s", raw)
	}
}

// A pass that ran out of budget starts the next where it stopped, so no
// namespace's policies always come first; every element comes once.
func TestRotate(t *testing.T) {
	s := []int{0, 1, 2, 3, 4}
	for n, want := range map[int][]int{0: {0, 1, 2, 3, 4}, 2: {2, 3, 4, 0, 1}, 7: {2, 3, 4, 0, 1}} {
		if got := rotate(s, n); !slices.Equal(got, want) {
			t.Errorf("rotate by %d: %v, want %v", n, got, want)
		}
	}
	if !slices.Equal(s, []int{0, 1, 2, 3, 4}) {
		t.Errorf("rotate changed its input: %v", s)
	}
	if got := rotate([]int(nil), 3); len(got) != 0 {
		t.Errorf("rotate of none: %v", got)
	}
}

// A verdict is a condition's type, status, reason and generation: counts
// that moved in the message are not a new verdict.
func TestSameVerdicts(t *testing.T) {
	a := []metav1.Condition{{Type: "Enforced", Status: metav1.ConditionTrue, Reason: "Enforced", Message: "3/3 proxies", ObservedGeneration: 2}}
	b := slices.Clone(a)
	b[0].Message = "4/4 proxies"
	if !sameVerdicts(a, b) || sameConditions(a, b) {
		t.Error("moved counts: a new verdict, or the same conditions")
	}
	b[0].ObservedGeneration = 3
	if sameVerdicts(a, b) {
		t.Error("a new generation is no new verdict")
	}
}
