package controllers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"k8s.io/apimachinery/pkg/types"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// Every namespace of a mesh holds the mesh's trust bundle in a ConfigMap,
// meshv1alpha1.TrustBundleConfigMapName, which the injector projects beside
// the pod's identity certificate and key: what a sidecar trusts the xDS
// server by, and a proxyless gRPC application its peers, is the mesh's
// bundle, not the ca.crt of its identity Secret (which an issuer may leave
// empty, and anyone who may write Secrets in the namespace may change). The
// MeshInstance reconciler is its only writer; server-side apply, so that a
// ConfigMap the cache does not see (its labels removed by hand) is put back
// all the same. An apply that creates the ConfigMap is a patch that the API
// server also authorizes as a create.
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=list;watch;create;patch;delete

// bundleConfigMaps keeps the cache's ConfigMaps to the meshes' trust
// bundles: a cluster's other ConfigMaps stay out of the operator's memory.
func bundleConfigMaps() cache.ByObject {
	bundle, err := labels.NewRequirement(meshv1alpha1.TrustBundleSecretLabel, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant key always makes a requirement
	}
	return cache.ByObject{Label: labels.SelectorFromSet(labels.Set{managedByLabel: managedBy}).Add(*bundle)}
}

// bundlePlan is what publishing a mesh's bundle does: the namespaces whose
// ConfigMap is missing or is not the mesh's bundle, and the mesh's
// ConfigMaps of namespaces that left it.
type bundlePlan struct {
	write  []string
	remove []client.ObjectKey
}

// planBundles compares the mesh's ConfigMaps (have) with what the
// namespaces labelled for the mesh (members) should hold: pem, the bundle,
// under the mesh's labels and controlled by the mesh. With no bundle known
// (pem empty) nothing is written, and nothing made up; a terminating
// namespace gets nothing either. Only the ConfigMaps the mesh controls are
// removed, not those that merely carry its labels.
func planBundles(mi *meshv1alpha1.MeshInstance, pem []byte, members []corev1.Namespace, have []corev1.ConfigMap) bundlePlan {
	name := meshv1alpha1.TrustBundleConfigMapName(mi.Name)
	current := map[string]*corev1.ConfigMap{}
	for i := range have {
		if have[i].Name == name {
			current[have[i].Namespace] = &have[i]
		}
	}
	var p bundlePlan
	member := map[string]bool{}
	for _, ns := range members {
		member[ns.Name] = true
		if len(pem) > 0 && ns.DeletionTimestamp.IsZero() && !holdsBundle(current[ns.Name], mi, pem) {
			p.write = append(p.write, ns.Name)
		}
	}
	for ns, cm := range current {
		if !member[ns] && metav1.IsControlledBy(cm, mi) {
			p.remove = append(p.remove, client.ObjectKeyFromObject(cm))
		}
	}
	slices.Sort(p.write)
	slices.SortFunc(p.remove, func(a, b client.ObjectKey) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return p
}

// holdsBundle says whether cm is the mesh's bundle ConfigMap as the
// operator writes it. Keys a user added are left alone: pods mount ca.crt
// only.
func holdsBundle(cm *corev1.ConfigMap, mi *meshv1alpha1.MeshInstance, pem []byte) bool {
	if cm == nil || cm.Data[meshv1alpha1.TrustBundleKey] != string(pem) || !metav1.IsControlledBy(cm, mi) ||
		(cm.Immutable != nil && *cm.Immutable) {
		return false
	}
	for k, v := range bundleLabels(mi.Name) {
		if cm.Labels[k] != v {
			return false
		}
	}
	return true
}

func bundleLabels(mesh string) map[string]string {
	labels := MeshObjectLabels(mesh)
	labels[meshv1alpha1.TrustBundleSecretLabel] = mesh
	return labels
}

// publishBundle writes the mesh's trust bundle, as the xDS servers serve it
// (the trust bundle Secret of the operator's namespace), into the ConfigMap
// of every namespace labelled for the mesh (a MeshMember's or one labelled
// by hand), and deletes the ConfigMap of each namespace that left the mesh.
// Before a bundle is known none is written: pods wait for the ConfigMap as
// they wait for their identity Secret, and TrustBundleKnown says why.
func (r *MeshInstanceReconciler) publishBundle(ctx context.Context, mi *meshv1alpha1.MeshInstance) error {
	var nss corev1.NamespaceList
	if err := r.List(ctx, &nss, client.MatchingLabels{meshv1alpha1.MonitorLabel: mi.Name}); err != nil {
		return fmt.Errorf("listing the namespaces of the mesh: %w", err)
	}
	var cms corev1.ConfigMapList
	// Read only: the cache's objects as they are.
	if err := r.List(ctx, &cms, client.MatchingLabels{meshv1alpha1.TrustBundleSecretLabel: mi.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing the mesh's trust bundle ConfigMaps: %w", err)
	}
	pem, err := r.servedBundle(ctx, mi)
	if err != nil {
		return err
	}
	p := planBundles(mi, pem, nss.Items, cms.Items)
	var errs []error
	for _, ns := range p.write {
		if err := r.applyBundle(ctx, mi, ns, pem); err != nil {
			errs = append(errs, failedWrite(err))
		}
	}
	uids := make(map[client.ObjectKey]types.UID, len(cms.Items))
	for i := range cms.Items {
		uids[client.ObjectKeyFromObject(&cms.Items[i])] = cms.Items[i].UID
	}
	for _, key := range p.remove {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
		// Only the object the plan judged the mesh's: not one created in
		// its place since.
		uid := uids[key]
		if err := r.Delete(ctx, cm, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
			errs = append(errs, failedWrite(fmt.Errorf("deleting the trust bundle ConfigMap %s of a namespace that left the mesh: %w", key, err)))
			continue
		}
		logf.FromContext(ctx).V(1).Info("Deleted the trust bundle ConfigMap of a namespace that left the mesh", "configMap", key)
	}
	return errors.Join(errs...)
}

// servedBundle is the bundle of the mesh's trust bundle Secret, its CA
// certificates only; nil while there is none.
func (r *MeshInstanceReconciler) servedBundle(ctx context.Context, mi *meshv1alpha1.MeshInstance) ([]byte, error) {
	key := client.ObjectKey{Namespace: r.Namespace, Name: meshv1alpha1.TrustBundleSecretName(mi.Name)}
	s := &corev1.Secret{}
	if err := r.Get(ctx, key, s); apierrors.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("reading the trust bundle Secret %s: %w", key, err)
	}
	return bundlePEM(caCertificates(s.Data[meshv1alpha1.TrustBundleKey])), nil
}

// applyBundle applies the mesh's bundle ConfigMap in namespace ns. A
// ConfigMap of that name that cannot take it (made immutable, given another
// controller, or ca.crt moved into binaryData) is deleted and written again:
// the name is the operator's in the namespaces of the mesh.
func (r *MeshInstanceReconciler) applyBundle(ctx context.Context, mi *meshv1alpha1.MeshInstance, ns string, pem []byte) error {
	name := meshv1alpha1.TrustBundleConfigMapName(mi.Name)
	cm := corev1ac.ConfigMap(name, ns).
		WithLabels(bundleLabels(mi.Name)).
		WithData(map[string]string{meshv1alpha1.TrustBundleKey: string(pem)}).
		WithOwnerReferences(metav1ac.OwnerReference().
			WithAPIVersion(meshv1alpha1.GroupVersion.String()).WithKind("MeshInstance").
			WithName(mi.Name).WithUID(mi.UID).
			WithController(true).WithBlockOwnerDeletion(true))
	apply := func() error {
		return r.Apply(ctx, cm, client.FieldOwner(meshv1alpha1.FieldManager), client.ForceOwnership)
	}
	err := apply()
	if apierrors.IsInvalid(err) {
		logf.FromContext(ctx).Info("Replaced a trust bundle ConfigMap that could not take the mesh's bundle", "namespace", ns, "configMap", name, "reason", err.Error())
		old := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		if derr := r.Delete(ctx, old); client.IgnoreNotFound(derr) != nil {
			return fmt.Errorf("deleting the trust bundle ConfigMap %s/%s, which cannot take the bundle: %w", ns, name, derr)
		}
		err = apply()
	}
	if err != nil {
		return fmt.Errorf("applying the trust bundle ConfigMap %s/%s: %w", ns, name, err)
	}
	logf.FromContext(ctx).V(1).Info("Wrote the mesh's trust bundle ConfigMap", "namespace", ns, "configMap", name)
	return nil
}
