package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// NamespaceReconciler serves the namespaces that joined a mesh the seed's
// way, by the monitor label alone: it issues the identity Certificates of
// their pods' service accounts, owned by the Namespace, and releases them
// when the namespace leaves the mesh, its mesh goes, or a MeshMember takes
// the namespace over (the MeshMember then issues them).
type NamespaceReconciler struct {
	client.Client
}

// Reconcile implements reconcile.Reconciler.
func (r *NamespaceReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	ns := &corev1.Namespace{}
	if err := r.Get(ctx, req.NamespacedName, ns); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	release := func() (reconcile.Result, error) {
		return reconcile.Result{}, releaseCertificates(ctx, r.Client, ns, ns.Name)
	}
	name := ns.Labels[meshv1alpha1.MonitorLabel]
	if name == "" || !ns.DeletionTimestamp.IsZero() {
		return release()
	}
	var members meshv1alpha1.MeshMemberList
	if err := r.List(ctx, &members, client.InNamespace(ns.Name)); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing the MeshMembers of %s: %w", ns.Name, err)
	}
	if len(members.Items) > 0 {
		return release()
	}
	mi := &meshv1alpha1.MeshInstance{}
	if err := r.Get(ctx, client.ObjectKey{Name: name}, mi); apierrors.IsNotFound(err) {
		return release()
	} else if err != nil {
		return reconcile.Result{}, fmt.Errorf("reading MeshInstance %s: %w", name, err)
	}
	if !mi.DeletionTimestamp.IsZero() {
		return release()
	}
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(ns.Name)); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing the pods of %s: %w", ns.Name, err)
	}
	ids, err := ensureIdentities(ctx, r.Client, mi, ns.Name, pods.Items, ns, false)
	if err != nil {
		return reconcile.Result{}, err
	}
	if ids.invalid != "" {
		logf.FromContext(ctx).Info("Cannot issue identities: the mesh's spec is invalid", "mesh", name, "reason", ids.invalid)
	}
	return reconcile.Result{}, nil
}
