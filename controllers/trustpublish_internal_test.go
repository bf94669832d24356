package controllers

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// TestPlanBundles: which namespaces get the mesh's bundle written, and
// whose ConfigMap goes.
func TestPlanBundles(t *testing.T) {
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "shop", UID: types.UID("mesh-uid")}}
	other := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "shop", UID: types.UID("another-uid")}}
	pem := []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	name := meshv1alpha1.TrustBundleConfigMapName("shop")
	ns := func(name string) corev1.Namespace { return corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}} }
	bundle := func(ns string, change func(*corev1.ConfigMap)) corev1.ConfigMap {
		cm := corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: bundleLabels("shop"),
				OwnerReferences: []metav1.OwnerReference{{APIVersion: meshv1alpha1.GroupVersion.String(), Kind: "MeshInstance", Name: "shop", UID: mi.UID, Controller: ptr.To(true)}}},
			Data: map[string]string{meshv1alpha1.TrustBundleKey: string(pem)},
		}
		if change != nil {
			change(&cm)
		}
		return cm
	}
	terminating := ns("terminating")
	terminating.DeletionTimestamp = ptr.To(metav1.Now())
	for _, tc := range []struct {
		name       string
		pem        []byte
		members    []corev1.Namespace
		have       []corev1.ConfigMap
		write      []string
		removeFrom []string
	}{
		{name: "a member without it", pem: pem, members: []corev1.Namespace{ns("a"), ns("b")}, have: []corev1.ConfigMap{bundle("b", nil)}, write: []string{"a"}},
		{name: "a user's key beside ca.crt is left alone", pem: pem, members: []corev1.Namespace{ns("a")},
			have: []corev1.ConfigMap{bundle("a", func(cm *corev1.ConfigMap) { cm.Data["notes"] = "mine" })}},
		{name: "another CA added", pem: pem, members: []corev1.Namespace{ns("a")},
			have: []corev1.ConfigMap{bundle("a", func(cm *corev1.ConfigMap) { cm.Data[meshv1alpha1.TrustBundleKey] += "rogue" })}, write: []string{"a"}},
		{name: "made immutable", pem: pem, members: []corev1.Namespace{ns("a")},
			have: []corev1.ConfigMap{bundle("a", func(cm *corev1.ConfigMap) { cm.Immutable = ptr.To(true) })}, write: []string{"a"}},
		{name: "a label taken off", pem: pem, members: []corev1.Namespace{ns("a")},
			have: []corev1.ConfigMap{bundle("a", func(cm *corev1.ConfigMap) { delete(cm.Labels, managedByLabel) })}, write: []string{"a"}},
		{name: "controlled by a mesh of the same name before", pem: pem, members: []corev1.Namespace{ns("a")},
			have: []corev1.ConfigMap{bundle("a", func(cm *corev1.ConfigMap) { cm.OwnerReferences[0].UID = other.UID })}, write: []string{"a"}},
		{name: "another name is not the bundle", pem: pem, members: []corev1.Namespace{ns("a")},
			have: []corev1.ConfigMap{bundle("a", func(cm *corev1.ConfigMap) { cm.Name = "copy" })}, write: []string{"a"}},
		{name: "no bundle known: nothing written, leavers still lose theirs", members: []corev1.Namespace{ns("a")},
			have: []corev1.ConfigMap{bundle("left", nil)}, removeFrom: []string{"left"}},
		{name: "a namespace that left", pem: pem, members: []corev1.Namespace{ns("a")},
			have: []corev1.ConfigMap{bundle("a", nil), bundle("left", nil), bundle("gone", nil)}, removeFrom: []string{"gone", "left"}},
		{name: "what only carries the mesh's labels is not removed", pem: pem,
			have: []corev1.ConfigMap{bundle("x", func(cm *corev1.ConfigMap) { cm.OwnerReferences = nil })}},
		{name: "a terminating namespace gets nothing, and keeps its own", pem: pem, members: []corev1.Namespace{terminating},
			have: []corev1.ConfigMap{bundle("terminating", func(cm *corev1.ConfigMap) { cm.Data = nil })}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := planBundles(mi, tc.pem, tc.members, tc.have)
			var remove []client.ObjectKey
			for _, ns := range tc.removeFrom {
				remove = append(remove, client.ObjectKey{Namespace: ns, Name: name})
			}
			if !slices.Equal(p.write, tc.write) || !slices.Equal(p.remove, remove) {
				t.Errorf("write %v, remove %v; want %v, %v", p.write, p.remove, tc.write, remove)
			}
		})
	}
}
