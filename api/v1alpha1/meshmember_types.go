package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// InjectionMode turns automatic sidecar injection on or off.
// +kubebuilder:validation:Enum=Enabled;Disabled
type InjectionMode string

const (
	InjectionEnabled  InjectionMode = "Enabled"
	InjectionDisabled InjectionMode = "Disabled"
)

// ReasonIdentityFailed is the reason of a MeshMember's IdentitiesReady and
// Ready, and of the Event on a MeshMember or a hand-labelled Namespace, when
// the identity Certificate of a service account cannot be written.
const ReasonIdentityFailed = "IdentityFailed"

// ConditionProxiesUpToDate is True on a MeshMember whose member pods'
// sidecars all run the mesh's Envoy image; False, with reason
// ReasonProxyImageOutdated, names how many do not. It does not make the
// MeshMember not Ready: an older proxy still works.
const (
	ConditionProxiesUpToDate = "ProxiesUpToDate"
	ReasonProxyImageOutdated = "ProxyImageOutdated"
)

// MeshMemberSpec says that this namespace, or the pods of it that match a
// selector, belong to a mesh.
type MeshMemberSpec struct {
	// mesh is the name of the MeshInstance this namespace joins. It cannot be
	// changed: delete the MeshMember and create another to move to another mesh.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="mesh is immutable"
	Mesh string `json:"mesh"`

	// selector picks the pods of the namespace that are members. Empty means
	// every pod of the namespace.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`

	// injection turns automatic Envoy sidecar injection on or off for member
	// pods. A pod annotated openservicemesh.io/sidecar-injection: disabled is
	// never injected.
	// +kubebuilder:default=Enabled
	// +optional
	Injection InjectionMode `json:"injection,omitempty"`

	// restartExistingWorkloads rolls the Deployments, StatefulSets and
	// DaemonSets whose pods lack a sidecar, so that existing pods join the mesh.
	// +kubebuilder:default=false
	// +optional
	RestartExistingWorkloads bool `json:"restartExistingWorkloads,omitempty"`

	// inbound overrides, for the member pods, what the mesh's
	// spec.inbound says they accept from callers outside the mesh. Unset
	// fields inherit the mesh's.
	// +optional
	Inbound MemberInbound `json:"inbound,omitzero"`

	// observability overrides, for the proxies of the member pods (and of
	// the namespace's MeshVMs), the mesh's spec.observability field by
	// field: a namespace can turn access logs or tracing on or off, sample
	// more or less, send its spans to a collector of its own. Unset fields
	// follow the mesh's.
	// +optional
	Observability Observability `json:"observability,omitzero"`

	// outbound says which services the member pods (and the namespace's
	// MeshVMs) call, so that their proxies are configured for those only.
	// +optional
	Outbound MemberOutbound `json:"outbound,omitzero"`
}

// MemberOutbound is which services the proxies of a member namespace are
// configured to call: Istio's Sidecar egress hosts, for the mesh's services.
type MemberOutbound struct {
	// services the namespace's workloads call, each "<namespace>/<service>":
	// "*" for every namespace or every service, "." for this namespace, so
	// "./*" is every service of the namespace, "*/*" every service of the
	// mesh and "shop/cart" one. Unset (the default) is every service.
	//
	// In a Permissive mesh, where every workload may call every service,
	// the proxies are sent only these services (and the backends of their
	// TrafficSplits and mesh routes): a large permissive mesh then does not
	// send each proxy the whole mesh. A call to a service left out is a call
	// to a destination outside the mesh (the mesh's egress settings decide).
	// In SMI mode the TrafficTargets already decide what a proxy is sent,
	// and this field narrows nothing.
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=127
	// +kubebuilder:validation:items:Pattern=`^(\*|\.|[a-z0-9]([-a-z0-9]*[a-z0-9])?)/(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$`
	// +optional
	Services []string `json:"services,omitempty"`
}

// MemberInbound is what the pods of a MeshMember accept from callers
// outside the mesh, over the mesh's MeshInbound.
type MemberInbound struct {
	// plaintextFromOutsideMesh is Accept or Refuse, as the MeshInstance's
	// spec.inbound.plaintextFromOutsideMesh (which explains them), for every
	// port of the member pods without a port override. Unset inherits the
	// mesh's setting, and follows it when it changes.
	// +optional
	PlaintextFromOutsideMesh PlaintextPolicy `json:"plaintextFromOutsideMesh,omitempty"`

	// portOverrides set plaintextFromOutsideMesh for single ports of the
	// member pods, over this member's setting and the mesh's: a namespace
	// that refuses plaintext can keep a health-check or metrics port open
	// to callers outside the mesh, or one that accepts it can close its
	// admin port. A port appears once.
	// +listType=map
	// +listMapKey=port
	// +kubebuilder:validation:MaxItems=64
	// +optional
	PortOverrides []InboundPortOverride `json:"portOverrides,omitempty"`
}

// InboundPortOverride is the plaintext setting of one port of the member pods.
type InboundPortOverride struct {
	// port the member pods listen on: a container port (a Service's
	// targetPort), not a Service's port. Ports in the mesh's
	// sidecar.excludeInboundPorts bypass the proxy, which then decides
	// nothing about them.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// plaintextFromOutsideMesh on this port: Accept or Refuse.
	PlaintextFromOutsideMesh PlaintextPolicy `json:"plaintextFromOutsideMesh"`
}

// MeshMemberStatus is the observed state of a member namespace.
type MeshMemberStatus struct {
	// observedGeneration is the generation of the spec last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, Reconciling, Stalled, IdentitiesReady,
	// ProxyConfigReady and ProxiesUpToDate.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// identities is the number of service accounts of member pods.
	// +optional
	Identities int32 `json:"identities,omitempty"`

	// identitiesReady is the number of those whose certificate is issued.
	// +optional
	IdentitiesReady int32 `json:"identitiesReady,omitempty"`

	// identitiesFailed is the number of those whose Certificate the
	// operator could not create or update; the others are issued all the
	// same. An Event names each, with the API server's reason.
	// +optional
	IdentitiesFailed int32 `json:"identitiesFailed,omitempty"`

	// identitiesFailedNames names the service accounts of the first of them,
	// sorted.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MaxLength=253
	IdentitiesFailedNames []string `json:"identitiesFailedNames,omitempty"`

	// podsInjected is the number of member pods that run a sidecar.
	// +optional
	PodsInjected int32 `json:"podsInjected,omitempty"`

	// proxiesConnected is the number of member proxies holding an xDS stream.
	// +optional
	ProxiesConnected int32 `json:"proxiesConnected,omitempty"`

	// podsWithoutProxy is the number of member pods that the injector
	// would give a sidecar but that run without one: created while the
	// injector was unreachable (its failure policy is Ignore under OLM) or
	// before the namespace joined. They are not mesh endpoints; roll them.
	// +optional
	PodsWithoutProxy int32 `json:"podsWithoutProxy,omitempty"`

	// podsWithoutProxyNames names the first of them, sorted.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	PodsWithoutProxyNames []string `json:"podsWithoutProxyNames,omitempty"`

	// podsWithOldProxy is the number of member pods whose Envoy sidecar runs
	// another image than the mesh's (its spec.sidecar.image, or else the
	// operator's default): injected before the image changed, by an
	// operator upgrade among others. They keep working; roll them to move
	// them to the mesh's Envoy.
	// +optional
	PodsWithOldProxy int32 `json:"podsWithOldProxy,omitempty"`

	// podsWithOldProxyNames names the first of them, sorted.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	PodsWithOldProxyNames []string `json:"podsWithOldProxyNames,omitempty"`

	// plaintextFromOutsideMesh is the setting in effect for the ports of
	// member pods without a port override: this member's
	// spec.inbound.plaintextFromOutsideMesh, or else the mesh's.
	// +optional
	PlaintextFromOutsideMesh PlaintextPolicy `json:"plaintextFromOutsideMesh,omitempty"`

	// portsAcceptingPlaintext are the ports, declared by member pods as
	// container ports, on which their proxies accept plaintext from outside
	// the mesh, sorted. When plaintextFromOutsideMesh is Accept, ports the
	// pods listen on without declaring them accept it too. Ports excluded
	// from the proxy bypass it and are not listed.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=65535
	PortsAcceptingPlaintext []int32 `json:"portsAcceptingPlaintext,omitempty"`
}

// MeshMember makes its namespace, or the pods of it matching a selector, a
// member of a mesh. It is the declarative twin of the namespace label
// openservicemesh.io/monitor=<mesh>, which the operator maintains for it.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=mm,categories=osm
// +kubebuilder:printcolumn:name="Mesh",type=string,JSONPath=`.spec.mesh`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Identities",type=integer,JSONPath=`.status.identitiesReady`
// +kubebuilder:printcolumn:name="Injected",type=integer,JSONPath=`.status.podsInjected`
// +kubebuilder:printcolumn:name="Proxies",type=integer,JSONPath=`.status.proxiesConnected`
// +kubebuilder:printcolumn:name="Plaintext",type=string,JSONPath=`.status.plaintextFromOutsideMesh`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MeshMember struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says which mesh the namespace joins and how.
	Spec MeshMemberSpec `json:"spec"`

	// status is the membership as the operator observes it.
	// +optional
	Status MeshMemberStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// MeshMemberList is a list of MeshMembers.
type MeshMemberList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MeshMember `json:"items"`
}

func init() {
	SchemeBuilder.Register(&MeshMember{}, &MeshMemberList{})
}
