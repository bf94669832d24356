package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Protocol is the application protocol of a port.
// +kubebuilder:validation:Enum=HTTP;HTTP2;GRPC;TCP
type Protocol string

const (
	ProtocolHTTP  Protocol = "HTTP"
	ProtocolHTTP2 Protocol = "HTTP2"
	ProtocolGRPC  Protocol = "GRPC"
	ProtocolTCP   Protocol = "TCP"
)

// ProxyKind is how a workload talks to the mesh.
// +kubebuilder:validation:Enum=Envoy;ProxylessGRPC
type ProxyKind string

const (
	// ProxyEnvoy runs an Envoy proxy beside the workload.
	ProxyEnvoy ProxyKind = "Envoy"
	// ProxyProxylessGRPC means a gRPC application that speaks xDS itself.
	ProxyProxylessGRPC ProxyKind = "ProxylessGRPC"
)

// Proxyless says whether the VM's application speaks xDS itself (proxyless
// gRPC) instead of running an Envoy.
func (m *MeshVM) Proxyless() bool { return m.Spec.Proxy == ProxyProxylessGRPC }

// MeshVMSpec declares a virtual machine in a mesh.
// +kubebuilder:validation:XValidation:rule="self.ports.all(p, self.ports.exists_one(q, q.port == p.port))",message="port numbers must be unique",fieldPath=".ports"
type MeshVMSpec struct {
	// mesh is the name of the MeshInstance the VM joins. Immutable.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="mesh is immutable"
	Mesh string `json:"mesh"`

	// serviceAccountName is the VM's identity: the ServiceAccount, in the
	// MeshVM's namespace, that SMI TrafficTargets name. The operator creates
	// it if it does not exist. Immutable, since the VM's certificate is bound
	// to it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="serviceAccountName is immutable"
	ServiceAccountName string `json:"serviceAccountName"`

	// addresses are the IPv4 or IPv6 addresses at which the VM's proxy
	// receives mesh traffic. Each must name one host: not loopback,
	// unspecified, link-local (169.254.0.0/16 holds the cloud metadata
	// address), multicast or broadcast, since callers' proxies connect to it.
	// An address that is a pod's IP is not published; the AddressesAccepted
	// condition names the pod.
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=45
	// +kubebuilder:validation:items:XValidation:rule="isIP(self)",message="each address must be an IPv4 or IPv6 address"
	// +kubebuilder:validation:items:XValidation:rule="!isIP(self) || ip(self).isGlobalUnicast()",message="each address must name one host: loopback, unspecified, link-local (169.254.0.0/16 and its cloud metadata address, fe80::/10), multicast and broadcast addresses would send the VM's callers to themselves, their link or a group"
	Addresses []string `json:"addresses"`

	// ports the VM serves, unique by name and by number.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Ports []VMPort `json:"ports"`

	// services are the names of Services, in the MeshVM's namespace, that the
	// VM backs. The operator publishes the VM's addresses in an EndpointSlice
	// for each.
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Services []string `json:"services,omitempty"`

	// proxy is how the VM talks to the mesh: an Envoy proxy on the VM, or a
	// proxyless gRPC application.
	// +kubebuilder:default=Envoy
	// +optional
	Proxy ProxyKind `json:"proxy,omitempty"`
}

// VMPort is a port a virtual machine serves.
type VMPort struct {
	// name of the port, an IANA service name, matched against the Service's
	// targetPort when it is a name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// port number.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// protocol of the port.
	// +kubebuilder:default=TCP
	// +optional
	Protocol Protocol `json:"protocol,omitempty"`
}

// MeshVMStatus is the observed state of a virtual machine in the mesh.
type MeshVMStatus struct {
	// observedGeneration is the generation of the spec last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, Reconciling, Stalled, CertificateReady,
	// BootstrapReady, AddressesAccepted and ProxyConnected.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// certificate is the VM's identity certificate.
	// +optional
	Certificate *CertificateStatus `json:"certificate,omitempty"`

	// bootstrapSecretName is the Secret holding the VM's proxy bootstrap and
	// TLS material; copy it to the VM with kubectl get secret.
	// +optional
	BootstrapSecretName string `json:"bootstrapSecretName,omitempty"`

	// proxy is the VM's proxy as the xDS server last saw it.
	// +optional
	Proxy *ProxyStatus `json:"proxy,omitempty"`
}

// CertificateStatus summarizes an identity certificate.
type CertificateStatus struct {
	// secretName is the Secret holding the certificate and key.
	SecretName string `json:"secretName"`
	// identity is the SPIFFE ID in the certificate's URI SAN.
	// +optional
	Identity string `json:"identity,omitempty"`
	// notAfter is when the certificate expires.
	// +optional
	NotAfter *metav1.Time `json:"notAfter,omitempty"`
}

// ProxyStatus is a proxy as the xDS server last saw it.
type ProxyStatus struct {
	// connected is true while the proxy holds an xDS stream.
	Connected bool `json:"connected"`
	// lastSeen is when the proxy connected, or disconnected.
	// +optional
	LastSeen *metav1.Time `json:"lastSeen,omitempty"`
	// version is the proxy's own name and version, as it reports them.
	// +optional
	Version string `json:"version,omitempty"`
	// replica is the operator replica that holds, or last held, the
	// proxy's xDS stream: only it reports the stream's end.
	// +optional
	Replica string `json:"replica,omitempty"`
}

// MeshVM is a virtual machine in a mesh: an identity, addresses and ports, and
// the Services it backs.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=mvm,categories=osm
// +kubebuilder:printcolumn:name="Mesh",type=string,JSONPath=`.spec.mesh`
// +kubebuilder:printcolumn:name="Identity",type=string,JSONPath=`.spec.serviceAccountName`
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.spec.addresses[0]`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Connected",type=boolean,JSONPath=`.status.proxy.connected`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MeshVM struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec declares the VM.
	Spec MeshVMSpec `json:"spec"`

	// status is the VM as the operator observes it.
	// +optional
	Status MeshVMStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// MeshVMList is a list of MeshVMs.
type MeshVMList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MeshVM `json:"items"`
}

func init() {
	SchemeBuilder.Register(&MeshVM{}, &MeshVMList{})
}
