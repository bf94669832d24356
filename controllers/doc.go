// Package controllers holds the reconcilers of MeshInstance, MeshMember and
// MeshVM. Each kind has its own files: <kind>_controller.go (Reconcile and its
// phases), <kind>_status.go (pure status setters) and <kind>_manager.go
// (SetupWithManager, watches and indexes).
package controllers

// The operator reads the mesh API, writes its status, and updates the objects
// themselves only to add and remove its finalizers.
// +kubebuilder:rbac:groups=mesh.openservicemesh.io,resources=meshinstances;meshmembers;meshvms,verbs=list;watch;update
// +kubebuilder:rbac:groups=mesh.openservicemesh.io,resources=meshinstances/status;meshmembers/status;meshvms/status,verbs=patch
