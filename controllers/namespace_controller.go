package controllers

import (
	"cmp"
	"context"
	"fmt"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// NamespaceReconciler serves the namespaces that joined a mesh the seed's
// way, by the monitor label alone: it issues the identity Certificates of
// their pods' service accounts, owned by the Namespace, and releases them
// when the namespace leaves the mesh, its mesh is gone, or a MeshMember
// takes the namespace over (the MeshMember then issues them). A mesh being
// deleted waits for its labelled namespaces, which keep their identities
// meanwhile.
//
// It also deletes identity Secrets whose Certificate is gone, whoever
// released it: cert-manager may still write a Secret just after its
// Certificate was deleted, and such a Secret would otherwise stay forever.
type NamespaceReconciler struct {
	client.Client
	// APIReader confirms, past the cache, that a Certificate is gone.
	APIReader client.Reader
	// Recorder records an Event on the Namespace for each identity that
	// cannot be written; nil records none.
	Recorder events.EventRecorder
}

// orphanGrace spares the Secrets of Certificates created a moment ago and
// not yet in the cache.
const orphanGrace = 10 * time.Second

// Reconcile implements reconcile.Reconciler.
func (r *NamespaceReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	ns := &corev1.Namespace{}
	if err := r.Get(ctx, req.NamespacedName, ns); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	requeue, err := r.deleteOrphanSecrets(ctx, ns.Name)
	if err != nil {
		return reconcile.Result{}, err
	}
	release := func() (reconcile.Result, error) {
		return reconcile.Result{RequeueAfter: requeue}, releaseCertificates(ctx, r.Client, ns, ns.Name)
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
		// The mesh's deletion waits for the label to go: until then the
		// workloads keep the identities they have, and get no new ones.
		return reconcile.Result{RequeueAfter: requeue}, nil
	}
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(ns.Name)); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing the pods of %s: %w", ns.Name, err)
	}
	ids := ensureIdentities(ctx, r.Client, mi, ns.Name, pods.Items, ns, false)
	if ids.invalid != "" {
		logf.FromContext(ctx).Info("Cannot issue identities: the mesh's spec is invalid", "mesh", name, "reason", ids.invalid)
	}
	// No MeshMember shows them: the Namespace's Events do.
	recordFailedIdentities(r.Recorder, ns, ids.failed)
	if len(ids.failed) > 0 {
		requeue = min(cmp.Or(requeue, waitRequeue), waitRequeue)
	}
	return reconcile.Result{RequeueAfter: requeue}, nil
}

// deleteOrphanSecrets deletes the identity Secrets of namespace whose
// Certificate no longer exists, and says when to look again for those too
// young to judge.
func (r *NamespaceReconciler) deleteOrphanSecrets(ctx context.Context, namespace string) (time.Duration, error) {
	var secrets corev1.SecretList
	if err := r.List(ctx, &secrets, client.InNamespace(namespace), client.MatchingLabels{managedByLabel: managedBy}); err != nil {
		return 0, fmt.Errorf("listing the Secrets of %s: %w", namespace, err)
	}
	var requeue time.Duration
	for i := range secrets.Items {
		s := &secrets.Items[i]
		if !meshv1alpha1.IsIdentitySecretName(s.Name) || !s.DeletionTimestamp.IsZero() {
			continue
		}
		key := client.ObjectKey{Namespace: namespace, Name: s.Name}
		if err := r.Get(ctx, key, &cmapi.Certificate{}); !apierrors.IsNotFound(err) {
			continue // it has its Certificate, or the cache cannot say
		}
		if age := time.Since(s.CreationTimestamp.Time); age < orphanGrace {
			requeue = max(requeue, orphanGrace-age)
			continue
		}
		if err := r.APIReader.Get(ctx, key, &cmapi.Certificate{}); !apierrors.IsNotFound(err) {
			continue
		}
		logf.FromContext(ctx).Info("Deleting an identity Secret whose Certificate is gone", "secret", s.Name)
		if err := r.Delete(ctx, s, client.Preconditions{UID: &s.UID}); client.IgnoreNotFound(err) != nil {
			return 0, fmt.Errorf("deleting orphaned Secret %s/%s: %w", namespace, s.Name, err)
		}
	}
	return requeue, nil
}
