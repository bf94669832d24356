package controllers_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
)

// Pods that the injector would give a sidecar but that run without one (the
// OLM bundle's injector fails open; pods created before the namespace
// joined) are counted and named on their MeshMember. A pod that opted out
// is not, and a pod that only carries the injected annotation is: a pod
// has a proxy because its spec has one.
func TestPodsWithoutProxyAreReported(t *testing.T) {
	ctx := context.Background()
	readyMesh(t, "visible")
	ns := newNamespace(t, nil)
	mm := &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "visible"}}
	if err := k8s.Create(ctx, mm); err != nil {
		t.Fatal(err)
	}
	plain := pod(ns, "plain-1", "app")
	forged := pod(ns, "forged-1", "app")
	forged.Annotations = map[string]string{meshv1alpha1.InjectedAnnotation: "visible"}
	optedOut := pod(ns, "out-1", "app")
	optedOut.Annotations = map[string]string{meshv1alpha1.SidecarInjectionAnnotation: meshv1alpha1.SidecarInjectionDisabled}
	for _, p := range []client.Object{plain, forged, optedOut} {
		if err := k8s.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mm), mm); err != nil {
			return err
		}
		if want := []string{"forged-1", "plain-1"}; mm.Status.PodsWithoutProxy != 2 || !slices.Equal(mm.Status.PodsWithoutProxyNames, want) {
			return fmt.Errorf("pods without proxy %d %v, want 2 %v", mm.Status.PodsWithoutProxy, mm.Status.PodsWithoutProxyNames, want)
		}
		return nil
	})
}

// The warning Event about pods without a proxy names the first of them:
// with long pod names it would pass the API server's 1 kB limit on an
// Event's note, and be dropped.
func TestPodsWithoutProxyOfLongNamesAreAnnounced(t *testing.T) {
	ctx := context.Background()
	readyMesh(t, "visible-long")
	ns := newNamespace(t, nil)
	for i := range 5 {
		p := pod(ns, fmt.Sprintf("%s-%d", strings.Repeat("p", 240), i), "app")
		if err := k8s.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	mm := &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "visible-long"}}
	if err := k8s.Create(ctx, mm); err != nil {
		t.Fatal(err)
	}
	eventAbout(t, "MeshMember", mm.Name, "PodsWithoutProxy", strings.Repeat("p", 240)+"-0")
}
