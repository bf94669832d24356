package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/controllers"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/webhooks/inject"
)

// TestRestartExistingWorkloads: with restartExistingWorkloads, a Deployment
// whose pod has no sidecar is rolled (once), and a StatefulSet whose pod has
// one is left alone. A pod has a sidecar by its spec: a Deployment whose pod
// only carries the injector's annotation is rolled too, and the MeshMember
// counts only the pod with a proxy as injected. envtest runs no workload
// controllers, so the test makes the ReplicaSets and pods itself.
func TestRestartExistingWorkloads(t *testing.T) {
	ctx := context.Background()
	if err := k8s.Create(ctx, &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "rolling"}}); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, nil)
	tmpl := func(app string) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}},
		}
	}
	sel := func(app string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
	}
	web := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: appsv1.DeploymentSpec{Selector: sel("web"), Template: tmpl("web")}}
	forged := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "forged", Namespace: ns}, Spec: appsv1.DeploymentSpec{Selector: sel("forged"), Template: tmpl("forged")}}
	db := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns}, Spec: appsv1.StatefulSetSpec{Selector: sel("db"), Template: tmpl("db")}}
	for _, o := range []client.Object{web, forged, db} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	owner := func(o client.Object, kind string) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: o.GetName(), UID: o.GetUID(), Controller: ptr.To(true)}}
	}
	replicaSet := func(d *appsv1.Deployment, name string) *appsv1.ReplicaSet {
		rs := &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, OwnerReferences: owner(d, "Deployment")},
			Spec:       appsv1.ReplicaSetSpec{Selector: d.Spec.Selector, Template: d.Spec.Template},
		}
		if err := k8s.Create(ctx, rs); err != nil {
			t.Fatal(err)
		}
		return rs
	}
	webPod := pod(ns, "web-5d9c-x1", "default")
	webPod.Labels, webPod.OwnerReferences = map[string]string{"app": "web"}, owner(replicaSet(web, "web-5d9c"), "ReplicaSet")
	// What a pod's author can write: the annotation, and no proxy.
	forgedPod := pod(ns, "forged-7f8b-x1", "default")
	forgedPod.Labels, forgedPod.OwnerReferences = map[string]string{"app": "forged"}, owner(replicaSet(forged, "forged-7f8b"), "ReplicaSet")
	forgedPod.Annotations = map[string]string{meshv1alpha1.InjectedAnnotation: "rolling"}
	// What the injector writes: the proxy, and the annotation.
	dbPod := pod(ns, "db-0", "default")
	dbPod.Labels, dbPod.OwnerReferences = map[string]string{"app": "db"}, owner(db, "StatefulSet")
	dbPod.Annotations = map[string]string{meshv1alpha1.InjectedAnnotation: "rolling"}
	dbPod.Spec.InitContainers = []corev1.Container{{Name: inject.ProxyContainer, Image: "envoy", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}}
	mm := &meshv1alpha1.MeshMember{
		ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: ns},
		Spec:       meshv1alpha1.MeshMemberSpec{Mesh: "rolling", RestartExistingWorkloads: true},
	}
	for _, o := range []client.Object{webPod, forgedPod, dbPod, mm} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, d := range []*appsv1.Deployment{web, forged} {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
				return err
			}
			if got := d.Spec.Template.Annotations[controllers.RestartedForAnnotation]; got != "rolling" {
				return fmt.Errorf("the Deployment %s was not rolled: template annotations %v", d.Name, d.Spec.Template.Annotations)
			}
		}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mm), mm); err != nil {
			return err
		}
		if mm.Status.PodsInjected != 1 {
			return fmt.Errorf("the MeshMember counts %d pods injected, want 1 (db-0)", mm.Status.PodsInjected)
		}
		return nil
	})
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(db), db); err != nil {
		t.Fatal(err)
	}
	if _, rolled := db.Spec.Template.Annotations[controllers.RestartedForAnnotation]; rolled {
		t.Error("the StatefulSet whose pod has a sidecar was rolled")
	}
	generation := web.Generation
	time.Sleep(2 * time.Second) // further reconciles must not roll it again
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(web), web); err != nil {
		t.Fatal(err)
	}
	if web.Generation != generation {
		t.Errorf("the Deployment was rolled again: generation %d -> %d", generation, web.Generation)
	}
}
