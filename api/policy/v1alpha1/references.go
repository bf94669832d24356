package v1alpha1

import "strings"

// MatchReference names an object of the policy's own namespace that narrows
// what the policy allows. It has the fields of a Kubernetes
// TypedLocalObjectReference, with apiGroup required as OSM requires it and
// every field bounded.
type MatchReference struct {
	// apiGroup of the object. OSM's manifests spell it group/version
	// (specs.smi-spec.io/v1alpha4, policy.openservicemesh.io/v1alpha1); the
	// group alone is accepted too.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	APIGroup string `json:"apiGroup"`

	// kind of the object: HTTPRouteGroup or UpstreamTrafficSetting, as the
	// policy's matches allow.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Kind string `json:"kind"`

	// name of the object, in the policy's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// The kinds and groups a MatchReference may name. A group is written alone
// or, as OSM writes it, with the version this operator serves.
const (
	KindHTTPRouteGroup         = "HTTPRouteGroup"
	KindUpstreamTrafficSetting = "UpstreamTrafficSetting"

	SMISpecsGroup        = "specs.smi-spec.io"
	SMISpecsGroupVersion = SMISpecsGroup + "/v1alpha4"
	PolicyGroupVersion   = "policy.openservicemesh.io/v1alpha1"
)

// IsHTTPRouteGroup reports whether r names an SMI HTTPRouteGroup, in either
// spelling of its apiGroup.
func (r MatchReference) IsHTTPRouteGroup() bool {
	return r.Kind == KindHTTPRouteGroup && (r.APIGroup == SMISpecsGroup || r.APIGroup == SMISpecsGroupVersion)
}

// IsUpstreamTrafficSetting reports whether r names an OSM
// UpstreamTrafficSetting, in either spelling of its apiGroup.
func (r MatchReference) IsUpstreamTrafficSetting() bool {
	return r.Kind == KindUpstreamTrafficSetting && (r.APIGroup == GroupVersion.Group || r.APIGroup == PolicyGroupVersion)
}

// lowerProtocol is how OSM reads a protocol: in any case.
func lowerProtocol(p string) string { return strings.ToLower(p) }
