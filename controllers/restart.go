package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/webhooks/inject"
)

// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets,verbs=list;watch;patch
// +kubebuilder:rbac:groups=apps,resources=replicasets,verbs=list;watch

// RestartedForAnnotation on a workload's pod template records the mesh the
// operator rolled it for, so that it rolls each workload once.
const RestartedForAnnotation = "mesh.openservicemesh.io/restarted-for"

// restartWorkloads rolls the Deployments, StatefulSets and DaemonSets of a
// member namespace whose pods run without a sidecar (by their spec, whatever
// their annotations say), by annotating their pod templates, so that their
// pods are recreated and injected. Each workload is rolled once per mesh. It
// returns how many it rolled.
func (r *MeshMemberReconciler) restartWorkloads(ctx context.Context, mm *meshv1alpha1.MeshMember, sel labels.Selector, pods []corev1.Pod) (int, error) {
	var rss appsv1.ReplicaSetList
	if err := r.List(ctx, &rss, client.InNamespace(mm.Namespace)); err != nil {
		return 0, fmt.Errorf("listing ReplicaSets: %w", err)
	}
	deploymentOf := map[string]string{}
	for _, rs := range rss.Items {
		if ref := metav1.GetControllerOf(&rs); ref != nil && ref.Kind == "Deployment" {
			deploymentOf[rs.Name] = ref.Name
		}
	}
	// The workloads (kind/name) that run a pod without a sidecar.
	uninjected := map[string]bool{}
	for _, p := range pods {
		ref := metav1.GetControllerOf(&p)
		if ref == nil || inject.Injected(&p) ||
			p.Annotations[meshv1alpha1.SidecarInjectionAnnotation] == meshv1alpha1.SidecarInjectionDisabled {
			continue
		}
		if d, ok := deploymentOf[ref.Name]; ok && ref.Kind == "ReplicaSet" {
			uninjected["Deployment/"+d] = true
		} else {
			uninjected[ref.Kind+"/"+ref.Name] = true
		}
	}
	var deps appsv1.DeploymentList
	var sets appsv1.StatefulSetList
	var daemons appsv1.DaemonSetList
	for _, l := range []client.ObjectList{&deps, &sets, &daemons} {
		if err := r.List(ctx, l, client.InNamespace(mm.Namespace)); err != nil {
			return 0, fmt.Errorf("listing workloads: %w", err)
		}
	}
	type workload struct {
		kind string
		obj  client.Object
		tmpl *corev1.PodTemplateSpec
	}
	var all []workload
	for i := range deps.Items {
		all = append(all, workload{"Deployment", &deps.Items[i], &deps.Items[i].Spec.Template})
	}
	for i := range sets.Items {
		all = append(all, workload{"StatefulSet", &sets.Items[i], &sets.Items[i].Spec.Template})
	}
	for i := range daemons.Items {
		all = append(all, workload{"DaemonSet", &daemons.Items[i], &daemons.Items[i].Spec.Template})
	}
	rolled := 0
	for _, w := range all {
		if !uninjected[w.kind+"/"+w.obj.GetName()] || w.tmpl.Annotations[RestartedForAnnotation] == mm.Spec.Mesh ||
			w.tmpl.Annotations[meshv1alpha1.SidecarInjectionAnnotation] == meshv1alpha1.SidecarInjectionDisabled ||
			!sel.Matches(labels.Set(w.tmpl.Labels)) {
			continue
		}
		patch := client.MergeFrom(w.obj.DeepCopyObject().(client.Object))
		if w.tmpl.Annotations == nil {
			w.tmpl.Annotations = map[string]string{}
		}
		w.tmpl.Annotations[RestartedForAnnotation] = mm.Spec.Mesh
		if err := r.Patch(ctx, w.obj, patch); err != nil {
			return rolled, fmt.Errorf("rolling %s %s: %w", w.kind, w.obj.GetName(), err)
		}
		rolled++
	}
	return rolled, nil
}
