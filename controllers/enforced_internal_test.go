package controllers

import (
	"context"
	"encoding/json"
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
	if wrote, err := w.write(ctx, p, want, time.Now()); err != nil || !wrote {
		t.Fatalf("the first write: wrote %v, %v", wrote, err)
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
	if wrote, _ := w.write(ctx, p, want, time.Now()); wrote {
		t.Error("a write from memory landed on the object made again")
	}
	// Reading first: the object's uid is not the policy's.
	delete(w.written, policyKey{p.Kind, p.Namespace, p.Name, p.UID})
	if wrote, err := w.write(ctx, p, want, time.Now()); wrote || err != nil {
		t.Errorf("a write after a read: wrote %v, %v", wrote, err)
	}
	if st := status(); st != nil {
		raw, _ := json.Marshal(st)
		t.Errorf("the object made again has the first one's status: %s", raw)
	}
}
