// Package controllers holds the reconcilers of MeshInstance, MeshMember and
// MeshVM, of namespaces labelled by hand, of the mesh's CertificateRequests
// (the approver) and of the xDS replicas' Leases.
//
// Each mesh kind has three files of its own: <kind>_controller.go (the
// reconciler: Reconcile, which gathers facts, making the writes the kind
// needs and recording what each found), <kind>_status.go (the kind's facts
// and its pure status function, which turns them and the status as read
// into the next status, every condition and field of it, with no client,
// recorder or clock) and <kind>_manager.go (its SetupWithManager: what it
// owns and watches). Data flows one way: facts, then status, then
// conditions.go's reportStatus, the one place a status is written: it
// stamps condition transitions as meta.SetStatusCondition does, records an
// Event on each Ready transition and patches the status only when it
// changed. A failed write (vmwrites.go) and a mesh's deletion go through it
// too. Rules that several reconcilers share have a file each:
// certificates.go (identity Certificates and their names), issuer.go (the
// mesh's issuer, of any group, read and judged), trustbundle.go (the mesh's
// trust bundle), proxies.go (the census of connected proxies and the
// ProxyConfigReady conditions), vmbootstrap.go (a VM's bootstrap files)
// and restart.go (rolling workloads that joined). setup.go registers them
// all over one cache (SetupWithManager), with the indexes they read.
package controllers

// The operator reads the mesh API, writes its status, and updates the objects
// themselves only to add and remove its finalizers.
// +kubebuilder:rbac:groups=mesh.openservicemesh.io,resources=meshinstances;meshmembers;meshvms,verbs=list;watch;update
// +kubebuilder:rbac:groups=mesh.openservicemesh.io,resources=meshinstances/status;meshmembers/status;meshvms/status,verbs=patch
