package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BackendProtocol is what a backend port serves to the sources: http or
// https, in any case (OSM compares them case-insensitively).
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=16
// +kubebuilder:validation:XValidation:rule="self.lowerAscii() in ['http', 'https']",message="protocol must be http or https"
type BackendProtocol string

const (
	// BackendProtocolHTTP is plaintext HTTP from the sources to the backend's
	// proxy. A plaintext caller has no verifiable identity: only Service and
	// IPRange sources restrict who may call.
	BackendProtocolHTTP BackendProtocol = "http"
	// BackendProtocolHTTPS is TLS from the sources to the backend's proxy,
	// which terminates it with the backend's mesh certificate.
	BackendProtocolHTTPS BackendProtocol = "https"
)

// Canonical is the protocol in lower case, the spelling of the constants:
// "HTTPS" and "https" are the same protocol.
func (p BackendProtocol) Canonical() BackendProtocol {
	return BackendProtocol(lowerProtocol(string(p)))
}

// IngressSourceKind is what an IngressBackend source names.
// +kubebuilder:validation:Enum=Service;IPRange;AuthenticatedPrincipal
type IngressSourceKind string

const (
	// IngressSourceService is a Service (an ingress controller's, say) whose
	// endpoints' addresses may call the backends.
	IngressSourceService IngressSourceKind = "Service"
	// IngressSourceIPRange is a range of caller addresses, in CIDR notation.
	IngressSourceIPRange IngressSourceKind = "IPRange"
	// IngressSourceAuthenticatedPrincipal is the subject alternative name of
	// the client certificate an https caller must present.
	IngressSourceAuthenticatedPrincipal IngressSourceKind = "AuthenticatedPrincipal"
)

// IngressBackendSpec says which Services of the IngressBackend's namespace
// accept traffic from which callers outside the mesh, on which port.
//
// Callers outside the mesh hold no mesh certificate. On a port that no
// IngressBackend names, the plaintextFromOutsideMesh setting of the mesh
// and of the MeshMember lets all of them in, or none. On a backend's port,
// the IngressBackend decides instead, whatever that setting says: its
// sources get in, other callers outside the mesh do not. Mesh peers reach
// the port over mutual TLS either way.
type IngressBackendSpec struct {
	// backends are the Services, of this IngressBackend's namespace, that
	// the sources may call, each on one port. A Service and port appear once.
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(b, self.exists_one(c, c.name == b.name && c.port.number == b.port.number))",message="each Service and port number must appear once in backends"
	Backends []IngressBackendTarget `json:"backends"`

	// sources are the callers allowed to reach the backends. A caller is
	// allowed when it matches every kind the list holds: its address is one
	// of the Service and IPRange sources (when there are any), and for an
	// https backend that validates client certificates, its certificate
	// names one of the AuthenticatedPrincipal sources.
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Sources []IngressSource `json:"sources"`

	// matches narrow the requests the sources may make to those of the named
	// SMI HTTPRouteGroups (apiGroup specs.smi-spec.io or
	// specs.smi-spec.io/v1alpha4) of this namespace. Empty allows every
	// request.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:XValidation:rule="self.kind == 'HTTPRouteGroup' && self.apiGroup in ['specs.smi-spec.io', 'specs.smi-spec.io/v1alpha4']",message="an IngressBackend matches HTTPRouteGroups: kind HTTPRouteGroup, apiGroup specs.smi-spec.io/v1alpha4 (or specs.smi-spec.io)"
	// +optional
	Matches []MatchReference `json:"matches,omitempty"`
}

// IngressBackendTarget is a Service of the IngressBackend's namespace, on one
// port, that the sources may call.
type IngressBackendTarget struct {
	// name of the Service.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// port the sources reach the backend on.
	Port BackendPort `json:"port"`

	// tls configures the https port: which client certificates and server
	// names it accepts. Ignored for http.
	// +optional
	TLS *BackendTLS `json:"tls,omitempty"`
}

// BackendPort is the port of a backend and what it serves.
type BackendPort struct {
	// number is the port the backend's pods listen on (the Service's
	// targetPort, the container port), not the Service's port: callers
	// outside the mesh, an ingress controller among them, dial pod addresses.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Number int32 `json:"number"`

	// protocol the sources speak to this port: http or https, in any case.
	Protocol BackendProtocol `json:"protocol"`
}

// BackendTLS is how an https backend port authenticates its callers.
type BackendTLS struct {
	// skipClientCertValidation, when true, accepts TLS from a client with
	// any certificate or none, and AuthenticatedPrincipal sources are not
	// checked. When false (the default) the caller must present a
	// certificate issued by the mesh whose subject alternative name is one of
	// the AuthenticatedPrincipal sources; with no such source, no caller is
	// allowed.
	// +optional
	SkipClientCertValidation bool `json:"skipClientCertValidation"`

	// sniHosts are the server names (SNI) the port accepts; empty accepts
	// any. Each is a DNS name, or a wildcard *.example.com.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:XValidation:rule="self.matches('^([*][.])?[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?([.][a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)*$')",message="each SNI host must be a DNS name such as www.example.com, or a wildcard such as *.example.com"
	// +optional
	SNIHosts []string `json:"sniHosts,omitempty"`
}

// IngressSource is a caller allowed to reach the backends of an IngressBackend.
// +kubebuilder:validation:XValidation:rule="self.kind != 'Service' || has(self.__namespace__)",message="a Service source needs the namespace of the Service",fieldPath=".namespace"
// +kubebuilder:validation:XValidation:rule="self.kind != 'Service' || self.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && self.name.size() <= 63",message="a Service source's name must be a Service name (a DNS label)",fieldPath=".name"
// +kubebuilder:validation:XValidation:rule="self.kind != 'IPRange' || isCIDR(self.name)",message="an IPRange source's name must be a CIDR such as 10.0.0.0/8 or fd00::/8",fieldPath=".name"
// +kubebuilder:validation:XValidation:rule="self.kind != 'AuthenticatedPrincipal' || self.name.matches('^[!-~]+$')",message="an AuthenticatedPrincipal source's name must be a certificate's subject alternative name: printable ASCII, no spaces",fieldPath=".name"
type IngressSource struct {
	// kind of the source: Service, IPRange or AuthenticatedPrincipal.
	Kind IngressSourceKind `json:"kind"`

	// name of the source: the Service's name; the range in CIDR notation
	// (10.0.0.0/8, fd00::/8); or the subject alternative name of the
	// caller's client certificate (a DNS name such as
	// ingress-nginx.ingress-nginx.cluster.local, or a SPIFFE ID).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Name string `json:"name"`

	// namespace of a Service source, which it needs; ignored for the other
	// kinds.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// IngressBackend currentStatus values, as OSM writes them.
const (
	// IngressBackendCommitted: the policy is in the proxies' config.
	IngressBackendCommitted = "committed"
	// IngressBackendError: the policy could not be applied; reason says why.
	IngressBackendError = "error"
)

// IngressBackendStatus is the observed state of an IngressBackend.
type IngressBackendStatus struct {
	// currentStatus is OSM's one-word summary, kept for tools written for
	// OSM: committed when the policy is in effect, error when it is not.
	// +kubebuilder:validation:MaxLength=32
	// +optional
	CurrentStatus string `json:"currentStatus,omitempty"`

	// reason explains currentStatus.
	// +kubebuilder:validation:MaxLength=32768
	// +optional
	Reason string `json:"reason,omitempty"`

	// observedGeneration is the generation of the spec the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, Reconciling and Stalled, with kstatus semantics.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// backends say, in the order of spec.backends, whether each resolved:
	// its Service exists and its pods serve the port. Empty while no mesh
	// reads the IngressBackend.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Backends []IngressBackendPartStatus `json:"backends,omitempty"`

	// sources say, in the order of spec.sources, whether each resolved: a
	// Service source exists and has endpoint addresses, an IPRange is a
	// CIDR, an AuthenticatedPrincipal is checked by some https backend.
	// Empty while no mesh reads the IngressBackend.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Sources []IngressBackendPartStatus `json:"sources,omitempty"`
}

// IngressBackendPartStatus says how one backend or source of an
// IngressBackend resolved in the mesh that reads it.
type IngressBackendPartStatus struct {
	// name is the backend's Service, or the source's name (for a Service
	// source, namespace/name).
	// +kubebuilder:validation:MaxLength=320
	Name string `json:"name"`

	// resolved says that the part takes effect as written. A part that does
	// not resolve lets no caller in; message says why.
	Resolved bool `json:"resolved"`

	// message explains: what the part resolved to, or why it did not.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Message string `json:"message,omitempty"`
}

// IngressBackend lets callers outside the mesh, such as an ingress controller,
// reach Services of its namespace: on which port, over http or https, from
// which Services, address ranges or client certificates.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ib,categories=osm;osm-policy
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.currentStatus`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type IngressBackend struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says which backends accept which callers.
	Spec IngressBackendSpec `json:"spec"`

	// status is the policy as the operator observes it.
	// +optional
	Status IngressBackendStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// IngressBackendList is a list of IngressBackends.
type IngressBackendList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IngressBackend `json:"items"`
}

func init() {
	SchemeBuilder.Register(&IngressBackend{}, &IngressBackendList{})
}
