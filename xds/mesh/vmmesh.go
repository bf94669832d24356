package mesh

import (
	"context"
	"fmt"
	"iter"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// VMMeshConflict says why a MeshVM cannot be in the mesh its spec names,
// or "": its namespace is in another mesh (namespaceMesh, NamespaceMesh's;
// "" when in none), or, in no mesh, holds a MeshVM of another mesh created
// before (first, FirstVM of the namespace's MeshVMs). The workloads and VMs
// of a namespace running as one service account have one identity and one
// proxy group, which can be in one mesh only. The model, the xDS server's
// authorizer, the CSR approver, the webhook and the MeshVM reconciler all
// decide by it.
func VMMeshConflict(vm *meshv1alpha1.MeshVM, namespaceMesh string, first *meshv1alpha1.MeshVM) string {
	switch {
	case namespaceMesh != "" && namespaceMesh != vm.Spec.Mesh:
		return fmt.Sprintf("namespace %s is a member of mesh %q; the VM is left out", vm.Namespace, namespaceMesh)
	case namespaceMesh == "" && first != nil && first.Spec.Mesh != vm.Spec.Mesh:
		return fmt.Sprintf("namespace %s is in no mesh and holds MeshVM %s of mesh %q, created before: a namespace's VMs are in one mesh; the VM is left out",
			vm.Namespace, first.Name, first.Spec.Mesh)
	}
	return ""
}

// ReadVMMeshConflict is VMMeshConflict of vm, reading its namespace's mesh
// and, when that is none, its namespace's MeshVMs through r.
func ReadVMMeshConflict(ctx context.Context, r client.Reader, vm *meshv1alpha1.MeshVM) (string, error) {
	namespaceMesh, err := NamespaceMesh(ctx, r, vm.Namespace)
	if err != nil {
		return "", err
	}
	var first *meshv1alpha1.MeshVM
	if namespaceMesh == "" {
		var vms meshv1alpha1.MeshVMList
		if err := r.List(ctx, &vms, client.InNamespace(vm.Namespace), client.UnsafeDisableDeepCopy); err != nil {
			return "", fmt.Errorf("listing the MeshVMs of %s: %w", vm.Namespace, err)
		}
		first = FirstVM(Items(vms.Items))
	}
	return VMMeshConflict(vm, namespaceMesh, first), nil
}

// NamespaceMesh is the mesh a namespace is a member of: its MeshMember's
// (the operator labels its namespace so), else its monitor label's; "" when
// none, or when the namespace does not exist.
func NamespaceMesh(ctx context.Context, r client.Reader, namespace string) (string, error) {
	var members meshv1alpha1.MeshMemberList
	if err := r.List(ctx, &members, client.InNamespace(namespace), client.UnsafeDisableDeepCopy); err != nil {
		return "", fmt.Errorf("listing the MeshMembers of %s: %w", namespace, err)
	}
	for _, mm := range members.Items {
		if mm.DeletionTimestamp.IsZero() {
			return mm.Spec.Mesh, nil
		}
	}
	ns := &corev1.Namespace{}
	if err := r.Get(ctx, client.ObjectKey{Name: namespace}, ns); apierrors.IsNotFound(err) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("reading namespace %s: %w", namespace, err)
	}
	return ns.Labels[meshv1alpha1.MonitorLabel], nil
}

// FirstVM is the MeshVM of vms (those of one namespace) that decides the
// mesh of a namespace in no mesh (VMMeshConflict): the oldest not being
// deleted, by creation and then name; nil when there is none.
func FirstVM(vms iter.Seq[*meshv1alpha1.MeshVM]) *meshv1alpha1.MeshVM {
	var first *meshv1alpha1.MeshVM
	for vm := range vms {
		if vm.DeletionTimestamp != nil {
			continue
		}
		if first == nil || vm.CreationTimestamp.Before(&first.CreationTimestamp) ||
			vm.CreationTimestamp.Equal(&first.CreationTimestamp) && vm.Name < first.Name {
			first = vm
		}
	}
	return first
}

// Items iterates over pointers to the items of a list.
func Items[T any](items []T) iter.Seq[*T] {
	return func(yield func(*T) bool) {
		for i := range items {
			if !yield(&items[i]) {
				return
			}
		}
	}
}
