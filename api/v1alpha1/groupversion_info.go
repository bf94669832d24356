// Package v1alpha1 holds the mesh.openservicemesh.io/v1alpha1 API: MeshInstance,
// MeshMember and MeshVM, the custom resources that declare a mesh, its member
// namespaces and its virtual machines.
//
// +kubebuilder:object:generate=true
// +groupName=mesh.openservicemesh.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every type in this package.
	GroupVersion = schema.GroupVersion{Group: "mesh.openservicemesh.io", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
