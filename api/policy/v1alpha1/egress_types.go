package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EgressProtocol is what a destination port of an Egress speaks: http,
// https, tcp or tcp-server-first, in any case (OSM compares them
// case-insensitively).
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=16
// +kubebuilder:validation:XValidation:rule="self.lowerAscii() in ['http', 'https', 'tcp', 'tcp-server-first']",message="protocol must be http, https, tcp or tcp-server-first"
type EgressProtocol string

const (
	// EgressProtocolHTTP is plaintext HTTP: the destination is told by the
	// request's Host header, matched against hosts.
	EgressProtocolHTTP EgressProtocol = "http"
	// EgressProtocolHTTPS is TLS from the workload itself, passed through:
	// the destination is told by the TLS server name (SNI), matched against
	// hosts, or by its address, matched against ipAddresses.
	EgressProtocolHTTPS EgressProtocol = "https"
	// EgressProtocolTCP is any TCP stream; the destination is told by its
	// address, matched against ipAddresses.
	EgressProtocolTCP EgressProtocol = "tcp"
	// EgressProtocolTCPServerFirst is TCP for protocols in which the server
	// speaks first (SMTP, MySQL): the proxy must not wait for the client's
	// first bytes to tell the protocol.
	EgressProtocolTCPServerFirst EgressProtocol = "tcp-server-first"
)

// Canonical is the protocol in lower case, the spelling of the constants:
// "TCP" and "tcp" are the same protocol.
func (p EgressProtocol) Canonical() EgressProtocol { return EgressProtocol(lowerProtocol(string(p))) }

// EgressSourceKind is what an Egress source names: a service account.
// +kubebuilder:validation:Enum=ServiceAccount
type EgressSourceKind string

// EgressSourceServiceAccount is the one kind of Egress source.
const EgressSourceServiceAccount EgressSourceKind = "ServiceAccount"

// EgressSpec says which meshed workloads may reach which destinations outside
// the mesh. Egress policies matter in a mesh whose spec.egress.mode is Deny:
// with Allow, every destination outside the mesh is reachable already.
type EgressSpec struct {
	// sources are the service accounts whose workloads may reach the
	// destinations.
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Sources []EgressSource `json:"sources"`

	// hosts are the destinations' host names, matched against the Host
	// header on http ports and the TLS server name on https ports: DNS
	// names, or wildcards such as *.example.com.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:XValidation:rule="self.matches('^([*][.])?[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?([.][a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)*$')",message="each host must be a DNS name such as api.example.com, or a wildcard such as *.example.com"
	// +optional
	Hosts []string `json:"hosts,omitempty"`

	// ipAddresses are the destinations' address ranges in CIDR notation
	// (203.0.113.0/24, 2001:db8::/32), for https, tcp and tcp-server-first
	// ports. On a tcp port of an Egress with no ipAddresses, every address
	// is a destination.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",message="each IP address range must be a CIDR such as 203.0.113.0/24 or 2001:db8::/32"
	// +optional
	IPAddresses []string `json:"ipAddresses,omitempty"`

	// ports are the destination ports the sources may reach, and what each
	// speaks. A port number appears once.
	// +listType=map
	// +listMapKey=number
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Ports []EgressPort `json:"ports"`

	// matches narrow or tune the allowed traffic: SMI HTTPRouteGroups (apiGroup
	// specs.smi-spec.io/v1alpha4, or specs.smi-spec.io) restrict the HTTP
	// requests on http ports; one UpstreamTrafficSetting (apiGroup
	// policy.openservicemesh.io/v1alpha1, or policy.openservicemesh.io)
	// sets connection limits and retries to the destinations. All are of
	// this Egress's namespace.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:XValidation:rule="(self.kind == 'HTTPRouteGroup' && self.apiGroup in ['specs.smi-spec.io', 'specs.smi-spec.io/v1alpha4']) || (self.kind == 'UpstreamTrafficSetting' && self.apiGroup in ['policy.openservicemesh.io', 'policy.openservicemesh.io/v1alpha1'])",message="an Egress matches HTTPRouteGroups (apiGroup specs.smi-spec.io/v1alpha4) and UpstreamTrafficSettings (apiGroup policy.openservicemesh.io/v1alpha1)"
	// +kubebuilder:validation:XValidation:rule="self.filter(m, m.kind == 'UpstreamTrafficSetting').size() <= 1",message="an Egress matches at most one UpstreamTrafficSetting"
	// +optional
	Matches []MatchReference `json:"matches,omitempty"`
}

// EgressSource is a service account whose workloads an Egress lets out.
type EgressSource struct {
	// kind of the source: ServiceAccount.
	Kind EgressSourceKind `json:"kind"`

	// name of the service account.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// namespace of the service account.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace"`
}

// EgressPort is a destination port of an Egress and what it speaks.
type EgressPort struct {
	// number of the destination port.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Number int32 `json:"number"`

	// protocol of the port: http, https, tcp or tcp-server-first, in any case.
	Protocol EgressProtocol `json:"protocol"`
}

// EgressStatus is the observed state of an Egress.
type EgressStatus struct {
	// observedGeneration is the generation of the spec the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, Reconciling and Stalled, with kstatus semantics.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Egress lets the workloads of some service accounts reach destinations
// outside the mesh, by host name or address range, on given ports.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=egresses,categories=osm;osm-policy
// +kubebuilder:printcolumn:name="Hosts",type=string,JSONPath=`.spec.hosts`
// +kubebuilder:printcolumn:name="IP Ranges",type=string,JSONPath=`.spec.ipAddresses`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Egress struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says who may reach which destinations.
	Spec EgressSpec `json:"spec"`

	// status is the policy as the operator observes it.
	// +optional
	Status EgressStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// EgressList is a list of Egresses.
type EgressList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Egress `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Egress{}, &EgressList{})
}
