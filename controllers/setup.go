package controllers

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/census"
)

// meshIndex indexes MeshMembers and MeshVMs by the mesh they join, so that
// a mesh lists its own and not every mesh's.
const meshIndex = "spec.mesh"

// Options configure the reconcilers.
type Options struct {
	// Namespace is the operator's own.
	Namespace string
	// ClusterResourceNamespace is cert-manager's namespace for the Secrets of
	// ClusterIssuers.
	ClusterResourceNamespace string
	// SidecarImage is the Envoy of the sidecars of meshes that name none (the
	// operator's --sidecar-image); empty means the build's.
	SidecarImage string
	// ClusterDomain is the cluster's DNS domain; empty means
	// mesh.DefaultClusterDomain.
	ClusterDomain string
	// RootClock is the time a mesh's bootstrapped root is judged due for
	// renewal by (renewDue); nil is the time now. Tests move it to a root's
	// last weeks without waiting for them.
	RootClock func(mesh string) time.Time
	// Enforcement, when set, is this replica's control plane: the leader
	// writes each policy's Enforced condition from it (enforced.go).
	Enforcement EnforcementSource
}

// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// SetupWithManager registers the reconcilers, their watches and the
// indexes they read.
func SetupWithManager(mgr ctrl.Manager, o Options) error {
	if err := SetupIndexes(mgr.GetFieldIndexer()); err != nil {
		return err
	}
	return SetupReconcilers(mgr, o)
}

// SetupIndexes adds the indexes the reconcilers read to a cache, once.
func SetupIndexes(indexer client.FieldIndexer) error {
	if err := indexer.IndexField(context.Background(), &meshv1alpha1.MeshMember{}, meshIndex, func(obj client.Object) []string {
		return []string{obj.(*meshv1alpha1.MeshMember).Spec.Mesh}
	}); err != nil {
		return fmt.Errorf("indexing MeshMembers by mesh: %w", err)
	}
	if err := indexer.IndexField(context.Background(), &meshv1alpha1.MeshVM{}, meshIndex, func(obj client.Object) []string {
		return []string{obj.(*meshv1alpha1.MeshVM).Spec.Mesh}
	}); err != nil {
		return fmt.Errorf("indexing MeshVMs by mesh: %w", err)
	}
	return nil
}

// SetupReconcilers registers the reconcilers and their watches, over a
// cache that has the indexes of SetupIndexes.
func SetupReconcilers(mgr ctrl.Manager, o Options) error {
	rec := mgr.GetEventRecorder("osm-operator")
	for _, r := range []interface{ SetupWithManager(ctrl.Manager) error }{
		&MeshInstanceReconciler{
			Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: rec, ClusterResourceNamespace: o.ClusterResourceNamespace, Namespace: o.Namespace,
			RootClock: o.RootClock,
		},
		&MeshMemberReconciler{Client: mgr.GetClient(), Recorder: rec, Namespace: o.Namespace, SidecarImage: o.SidecarImage},
		&MeshVMReconciler{Client: mgr.GetClient(), Recorder: rec, Namespace: o.Namespace},
		&NamespaceReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: rec},
		&ApproverReconciler{
			Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Recorder: rec,
			Namespace: o.Namespace, ClusterResourceNamespace: o.ClusterResourceNamespace, ClusterDomain: o.ClusterDomain,
		},
		&ReplicaLeaseReconciler{Client: mgr.GetClient()},
		NewIngressBackendReconciler(mgr.GetClient(), rec),
		NewEgressReconciler(mgr.GetClient(), rec),
		NewUpstreamTrafficSettingReconciler(mgr.GetClient(), rec),
		NewRetryReconciler(mgr.GetClient(), rec),
	} {
		if err := r.SetupWithManager(mgr); err != nil {
			return err
		}
	}
	if o.Enforcement != nil {
		w := &EnforcedWriter{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Namespace: o.Namespace, Source: o.Enforcement, Log: mgr.GetLogger().WithName("enforced")}
		if err := mgr.Add(w); err != nil {
			return fmt.Errorf("adding the Enforced condition writer: %w", err)
		}
	}
	return nil
}

// allMeshes enqueues every MeshInstance: a policy object, a member or a VM
// can belong to any mesh.
func allMeshes(c client.Client) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request {
		var list meshv1alpha1.MeshInstanceList
		if err := c.List(ctx, &list); err != nil {
			return nil
		}
		out := make([]reconcile.Request, 0, len(list.Items))
		for _, m := range list.Items {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: m.Name}})
		}
		return out
	})
}

func requests(members []meshv1alpha1.MeshMember) []reconcile.Request {
	out := make([]reconcile.Request, 0, len(members))
	for _, m := range members {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&m)})
	}
	return out
}

// CacheOptions keep the informer cache to the Secrets the operator made or
// had cert-manager make (labelled managed-by osm-operator): identity, root CA,
// xDS serving and VM bootstrap Secrets. A cluster's other Secrets stay out of
// the operator's memory. Leases are the xDS replicas' census, of the
// operator's namespace (empty: every namespace's); a namespace's user may
// label a Lease of their own as one, and it must wake nothing.
func CacheOptions(namespace string) cache.Options {
	leases := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{census.ComponentLabel: census.Component})}
	if namespace != "" {
		leases.Namespaces = map[string]cache.Config{namespace: {}}
	}
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Secret{}: {Label: labels.SelectorFromSet(labels.Set{managedByLabel: managedBy})},
		// Only the xDS replicas' Leases, not leader election's or the nodes'.
		&coordinationv1.Lease{}: leases,
		// Only the meshes' trust bundle ConfigMaps (trustpublish.go).
		&corev1.ConfigMap{}: bundleConfigMaps(),
	}}
}
