// Package controllers holds the reconcilers of MeshInstance, MeshMember and
// MeshVM, of namespaces labelled by hand, of the mesh's CertificateRequests
// (the approver) and of the xDS replicas' Leases.
//
// Each mesh kind has two files of its own: <kind>_controller.go (the
// reconciler, Reconcile and its phases) and <kind>_manager.go (its
// SetupWithManager: what it owns and watches). A reconciler's phases report
// what they found as an outcome or a condition; conditions.go turns outcomes
// into the kstatus conditions (Ready, Reconciling, Stalled), records an Event
// on each Ready transition and writes the status once per reconcile, only
// when it changed. Rules that several reconcilers share have a file each:
// certificates.go (identity Certificates and their names), issuer.go (the
// mesh's issuer, of any group), trustbundle.go (the mesh's trust bundle),
// proxies.go (the census of connected proxies), vmbootstrap.go (a VM's
// bootstrap files) and restart.go (rolling workloads that joined).
// setup.go registers them all over one cache (SetupWithManager), with the
// indexes they read.
package controllers

// The operator reads the mesh API, writes its status, and updates the objects
// themselves only to add and remove its finalizers.
// +kubebuilder:rbac:groups=mesh.openservicemesh.io,resources=meshinstances;meshmembers;meshvms,verbs=list;watch;update
// +kubebuilder:rbac:groups=mesh.openservicemesh.io,resources=meshinstances/status;meshmembers/status;meshvms/status,verbs=patch
