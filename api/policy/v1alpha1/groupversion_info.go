// Package v1alpha1 holds the policy.openservicemesh.io/v1alpha1 API:
// IngressBackend, which lets callers outside the mesh (an ingress
// controller, a load balancer, an address range) reach meshed Services;
// Egress, which lets meshed workloads reach destinations outside the mesh by
// host name, address range and port; UpstreamTrafficSetting, the connection
// limits and the local or global rate limits of one host (a Service, or an
// Egress destination) and of its HTTP routes; and Retry, which lets the
// workloads of a service account retry failed HTTP requests to Services.
//
// UpstreamTrafficSetting.Resilience and Retry.Policy read the last two in the
// terms of the mesh's own model (api/v1alpha1's Resilience, which a
// ResiliencePolicy attaches to Services), and say what does not map.
//
// The kinds, their group and their fields are those of Open Service Mesh, so
// that manifests written for OSM apply unchanged. Where OSM checked a value
// only in its admission webhook or its controller, these CRDs check it in
// the API server, accepting what OSM accepted (its protocols in any case,
// its apiGroup spellings of references) and refusing what it refused.
// The status of each kind adds observedGeneration and kstatus conditions
// to OSM's.
//
// +kubebuilder:object:generate=true
// +groupName=policy.openservicemesh.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every type in this package.
	GroupVersion = schema.GroupVersion{Group: "policy.openservicemesh.io", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
