package controllers

import (
	"context"
	"fmt"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	splitv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha4"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/census"
)

// meshIndex indexes MeshMembers by the mesh they join.
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
	return nil
}

// SetupReconcilers registers the reconcilers and their watches, over a
// cache that has the indexes of SetupIndexes.
func SetupReconcilers(mgr ctrl.Manager, o Options) error {
	rec := mgr.GetEventRecorder("osm-operator")
	// A policy object can belong to any mesh: re-check them all.
	allMeshes := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request {
		var list meshv1alpha1.MeshInstanceList
		if err := mgr.GetClient().List(ctx, &list); err != nil {
			return nil
		}
		out := make([]reconcile.Request, 0, len(list.Items))
		for _, m := range list.Items {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: m.Name}})
		}
		return out
	})
	mi := &MeshInstanceReconciler{Client: mgr.GetClient(), Recorder: rec, ClusterResourceNamespace: o.ClusterResourceNamespace, Namespace: o.Namespace}
	if err := ctrl.NewControllerManagedBy(mgr).
		For(&meshv1alpha1.MeshInstance{}).
		Owns(&cmapi.ClusterIssuer{}).
		Owns(&cmapi.Certificate{}).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
			if m := obj.GetLabels()[meshv1alpha1.MonitorLabel]; m != "" {
				return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: m}}}
			}
			return nil
		})).
		Watches(&accessv1alpha3.TrafficTarget{}, allMeshes).
		Watches(&specsv1alpha4.HTTPRouteGroup{}, allMeshes).
		Watches(&specsv1alpha4.TCPRoute{}, allMeshes).
		Watches(&splitv1alpha4.TrafficSplit{}, allMeshes).
		Watches(&meshv1alpha1.MeshMember{}, allMeshes).
		Watches(&meshv1alpha1.MeshVM{}, allMeshes).
		Watches(&cmapi.CertificateRequest{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
			cr := obj.(*cmapi.CertificateRequest)
			if _, other := approvedByAnother(cr); !other {
				return nil
			}
			var list meshv1alpha1.MeshInstanceList
			if err := mgr.GetClient().List(ctx, &list); err != nil {
				return nil
			}
			var out []reconcile.Request
			for i := range list.Items {
				if roleOf(&list.Items[i], cr.Spec.IssuerRef) != notTheMesh {
					out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: list.Items[i].Name}})
				}
			}
			return out
		})).
		Watches(&coordinationv1.Lease{}, censusHandler(true, func(ctx context.Context, namespaces []string) []reconcile.Request {
			var out []reconcile.Request
			for _, name := range namespaces {
				ns := &corev1.Namespace{}
				if err := mgr.GetClient().Get(ctx, client.ObjectKey{Name: name}, ns); err == nil && ns.Labels[meshv1alpha1.MonitorLabel] != "" {
					out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: ns.Labels[meshv1alpha1.MonitorLabel]}})
				}
			}
			return out
		})).
		Named("meshinstance").
		Complete(mi); err != nil {
		return fmt.Errorf("setting up the MeshInstance controller: %w", err)
	}

	mm := &MeshMemberReconciler{Client: mgr.GetClient(), Recorder: rec, Namespace: o.Namespace, SidecarImage: o.SidecarImage}
	membersOfMesh := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		var list meshv1alpha1.MeshMemberList
		if err := mgr.GetClient().List(ctx, &list, client.MatchingFields{meshIndex: obj.GetName()}); err != nil {
			return nil
		}
		return requests(list.Items)
	})
	membersInNamespace := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		var list meshv1alpha1.MeshMemberList
		if err := mgr.GetClient().List(ctx, &list, client.InNamespace(obj.GetNamespace())); err != nil {
			return nil
		}
		return requests(list.Items)
	})
	if err := ctrl.NewControllerManagedBy(mgr).
		For(&meshv1alpha1.MeshMember{}).
		Owns(&cmapi.Certificate{}).
		Watches(&meshv1alpha1.MeshInstance{}, membersOfMesh).
		Watches(&corev1.Pod{}, membersInNamespace).
		Watches(&coordinationv1.Lease{}, censusHandler(true, func(ctx context.Context, namespaces []string) []reconcile.Request {
			var out []reconcile.Request
			for _, ns := range namespaces {
				var list meshv1alpha1.MeshMemberList
				if err := mgr.GetClient().List(ctx, &list, client.InNamespace(ns)); err == nil {
					out = append(out, requests(list.Items)...)
				}
			}
			return out
		})).
		Named("meshmember").
		Complete(mm); err != nil {
		return fmt.Errorf("setting up the MeshMember controller: %w", err)
	}
	vm := &MeshVMReconciler{Client: mgr.GetClient(), Recorder: rec, Namespace: o.Namespace}
	vmsIn := func(ctx context.Context, namespaces []string) []reconcile.Request {
		var out []reconcile.Request
		for _, ns := range namespaces {
			var list meshv1alpha1.MeshVMList
			if err := mgr.GetClient().List(ctx, &list, client.InNamespace(ns)); err != nil {
				continue
			}
			for _, v := range list.Items {
				out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&v)})
			}
		}
		return out
	}
	vmsInNamespace := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		return vmsIn(ctx, []string{obj.GetNamespace()})
	})
	if err := ctrl.NewControllerManagedBy(mgr).
		For(&meshv1alpha1.MeshVM{}).
		Owns(&discoveryv1.EndpointSlice{}).
		Owns(&corev1.Secret{}).
		Watches(&cmapi.Certificate{}, vmsInNamespace).
		Watches(&corev1.Service{}, vmsInNamespace).
		// A VM's status shows its own connection, not the census's counts.
		Watches(&coordinationv1.Lease{}, censusHandler(false, vmsIn)).
		Named("meshvm").
		Complete(vm); err != nil {
		return fmt.Errorf("setting up the MeshVM controller: %w", err)
	}
	// Namespaces labelled by hand: identities when they have pods, none once
	// they leave, their mesh goes or a MeshMember takes over.
	namespaceOf := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: obj.GetNamespace()}}}
	})
	labelledFor := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		var list corev1.NamespaceList
		if err := mgr.GetClient().List(ctx, &list, client.MatchingLabels{meshv1alpha1.MonitorLabel: obj.GetName()}); err != nil {
			return nil
		}
		out := make([]reconcile.Request, 0, len(list.Items))
		for _, ns := range list.Items {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: ns.Name}})
		}
		return out
	})
	if err := ctrl.NewControllerManagedBy(mgr).
		For(&corev1.Namespace{}).
		Watches(&corev1.Pod{}, namespaceOf).
		Watches(&meshv1alpha1.MeshMember{}, namespaceOf).
		Watches(&cmapi.Certificate{}, namespaceOf).
		Watches(&corev1.Secret{}, namespaceOf).
		Watches(&meshv1alpha1.MeshInstance{}, labelledFor).
		Named("namespace").
		Complete(&NamespaceReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: rec}); err != nil {
		return fmt.Errorf("setting up the Namespace controller: %w", err)
	}
	if err := ctrl.NewControllerManagedBy(mgr).
		For(&cmapi.CertificateRequest{}).
		Named("certificaterequest-approver").
		Complete(&ApproverReconciler{
			Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Recorder: rec,
			Namespace: o.Namespace, ClusterResourceNamespace: o.ClusterResourceNamespace,
		}); err != nil {
		return fmt.Errorf("setting up the CertificateRequest approver: %w", err)
	}
	if err := ctrl.NewControllerManagedBy(mgr).
		For(&coordinationv1.Lease{}).
		Named("xds-replica-lease").
		Complete(&ReplicaLeaseReconciler{Client: mgr.GetClient()}); err != nil {
		return fmt.Errorf("setting up the xDS replica Lease controller: %w", err)
	}
	return nil
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
// the operator's memory.
func CacheOptions() cache.Options {
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Secret{}: {Label: labels.SelectorFromSet(labels.Set{managedByLabel: managedBy})},
		// Only the xDS replicas' Leases, not leader election's or the nodes'.
		&coordinationv1.Lease{}: {Label: labels.SelectorFromSet(labels.Set{census.ComponentLabel: census.Component})},
	}}
}
