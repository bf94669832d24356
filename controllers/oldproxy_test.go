package controllers_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/webhooks/inject"
)

// Member pods whose sidecar runs another Envoy than the mesh's are counted
// and named on their MeshMember, against the mesh's effective image: the
// operator's default while the mesh names none, the mesh's once it does.
// They do not make the member not Ready: an older proxy still works.
func TestPodsWithAnOldProxyAreCounted(t *testing.T) {
	ctx := context.Background()
	mi := readyMesh(t, "upgraded")
	ns := newNamespace(t, nil)
	const older = "envoyproxy/envoy-distroless:v1.30.0"
	old := pod(ns, "old-1", "web")
	pinned := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "upgraded"}}
	pinned.Spec.Sidecar.Image = older
	if err := inject.Pod(old, inject.ConfigFor(pinned, operatorNamespace, inject.Images{})); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*corev1.Pod{meshedPod("upgraded", ns, "current-1", "web"), old, pod(ns, "plain-1", "web")} {
		if err := k8s.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	mm := &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "upgraded"}}
	if err := k8s.Create(ctx, mm); err != nil {
		t.Fatal(err)
	}
	outdated := func(want string, image string) {
		t.Helper()
		testenv.Eventually(t, 60*time.Second, func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(mm), mm); err != nil {
				return err
			}
			if mm.Status.PodsWithOldProxy != 1 || !slices.Equal(mm.Status.PodsWithOldProxyNames, []string{want}) {
				return fmt.Errorf("pods with an old proxy %d %v, want 1 [%s]", mm.Status.PodsWithOldProxy, mm.Status.PodsWithOldProxyNames, want)
			}
			c := meta.FindStatusCondition(mm.Status.Conditions, meshv1alpha1.ConditionProxiesUpToDate)
			if c == nil || c.Status != metav1.ConditionFalse || c.Reason != meshv1alpha1.ReasonProxyImageOutdated ||
				!strings.Contains(c.Message, want) || !strings.Contains(c.Message, image) {
				return fmt.Errorf("ProxiesUpToDate %+v, want False naming %s and %s", c, want, image)
			}
			return ready(mm.Status.Conditions)
		})
	}
	// The suite's operator has no --sidecar-image: the build's Envoy.
	outdated("old-1", inject.DefaultSidecarImage)

	// The mesh pins the older Envoy: now the other pod is not the mesh's.
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
		t.Fatal(err)
	}
	mi.Spec.Sidecar.Image = older
	if err := k8s.Update(ctx, mi); err != nil {
		t.Fatal(err)
	}
	outdated("current-1", older)
}
