package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TrafficPolicyMode says how traffic between members of the mesh is authorized.
// +kubebuilder:validation:Enum=SMI;Permissive
type TrafficPolicyMode string

const (
	// TrafficPolicySMI denies all traffic that no SMI TrafficTarget allows.
	TrafficPolicySMI TrafficPolicyMode = "SMI"
	// TrafficPolicyPermissive allows all traffic between members of the mesh.
	TrafficPolicyPermissive TrafficPolicyMode = "Permissive"
)

// EgressMode says whether proxies may reach destinations outside the mesh.
// +kubebuilder:validation:Enum=Deny;Allow
type EgressMode string

const (
	// EgressDeny drops traffic to destinations that are not mesh services.
	EgressDeny EgressMode = "Deny"
	// EgressAllow passes traffic to destinations outside the mesh through unchanged.
	EgressAllow EgressMode = "Allow"
)

// PrivateKeyAlgorithm is the key algorithm of certificates issued for the mesh.
// +kubebuilder:validation:Enum=ECDSA;RSA;Ed25519
type PrivateKeyAlgorithm string

const (
	ECDSAKeyAlgorithm   PrivateKeyAlgorithm = "ECDSA"
	RSAKeyAlgorithm     PrivateKeyAlgorithm = "RSA"
	Ed25519KeyAlgorithm PrivateKeyAlgorithm = "Ed25519"
)

// ProxyLogLevel is the log level of the Envoy proxies of the mesh.
// +kubebuilder:validation:Enum=trace;debug;info;warning;error;critical;off
type ProxyLogLevel string

// MeshInstanceSpec declares a service mesh.
type MeshInstanceSpec struct {
	// trustDomain is the SPIFFE trust domain of the mesh: workload identities are
	// spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>. A DNS name.
	// +kubebuilder:default="cluster.local"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="trustDomain must be a lowercase DNS name such as cluster.local"
	// +optional
	TrustDomain string `json:"trustDomain,omitempty"`

	// trafficPolicy says how traffic between members is authorized.
	// +kubebuilder:default={mode: SMI}
	// +optional
	TrafficPolicy TrafficPolicy `json:"trafficPolicy,omitzero"`

	// egress says whether proxies may reach destinations outside the mesh.
	// +kubebuilder:default={mode: Deny}
	// +optional
	Egress Egress `json:"egress,omitzero"`

	// certificates says who issues the mesh's certificates and how.
	// +kubebuilder:default={}
	// +optional
	Certificates Certificates `json:"certificates,omitzero"`

	// resilience are the mesh-wide defaults of how callers treat a
	// destination's endpoints (circuit breaking, outlier detection, a retry
	// budget, load balancing, local rate limits), which a ResiliencePolicy
	// overrides field by field for the Services it targets. Fault
	// injection is never a default: only a ResiliencePolicy injects faults.
	// +kubebuilder:validation:XValidation:rule="!has(self.fault)",message="fault injection is set on a ResiliencePolicy, never mesh-wide"
	// +optional
	Resilience *Resilience `json:"resilience,omitempty"`

	// sidecar configures the Envoy sidecars injected into member pods.
	// +kubebuilder:default={}
	// +optional
	Sidecar Sidecar `json:"sidecar,omitzero"`

	// xds says where proxies reach the operator's xDS server.
	// +kubebuilder:default={}
	// +optional
	XDS XDS `json:"xds,omitzero"`

	// inbound says what the mesh's workloads accept from callers outside
	// the mesh.
	// +kubebuilder:default={}
	// +optional
	Inbound MeshInbound `json:"inbound,omitzero"`

	// observability turns on what the proxies report beyond their
	// Prometheus stats: access logs, OpenTelemetry traces, and the mesh's
	// identities as labels of the stats. Everything is off unless set; a
	// MeshMember overrides it field by field for its namespace.
	// +kubebuilder:validation:XValidation:rule="!has(self.tracing) || !has(self.tracing.mode) || self.tracing.mode != 'OpenTelemetry' || has(self.tracing.collector)",message="tracing.mode OpenTelemetry needs tracing.collector: the Service proxies send spans to",fieldPath=".tracing"
	// +optional
	Observability Observability `json:"observability,omitzero"`
}

// MeshInbound says what the workloads of a mesh (member pods and MeshVMs)
// accept from callers outside the mesh. A MeshMember overrides it for its
// pods, namespace-wide and port by port.
type MeshInbound struct {
	// plaintextFromOutsideMesh says whether the mesh's workloads also accept
	// connections without mutual TLS from callers outside the mesh: pods
	// without a sidecar, nodes, load balancers, anything holding no mesh
	// certificate. Mesh peers use mutual TLS, and are authorized by the
	// traffic policy, either way.
	//
	// Accept (the default) lets a cluster adopt the mesh without cutting
	// anyone off: workloads join one by one while their callers keep
	// reaching them. It applies in Permissive mode. In SMI mode, which
	// denies what no policy allows, a plaintext caller has no identity a
	// TrafficTarget could name: only an IngressBackend admits one, whatever
	// this setting says.
	//
	// Refuse lets in only mesh peers. Set it once every caller is in the
	// mesh or named by an IngressBackend: on the ports of its backends, an
	// IngressBackend admits its sources, and no other caller outside the
	// mesh, whichever the setting.
	// +kubebuilder:default=Accept
	// +optional
	PlaintextFromOutsideMesh PlaintextPolicy `json:"plaintextFromOutsideMesh,omitempty"`
}

// TrafficPolicy says how traffic between members of the mesh is authorized.
type TrafficPolicy struct {
	// mode is SMI (deny by default; SMI TrafficTargets allow traffic) or
	// Permissive (all traffic between members is allowed, still with mutual TLS).
	// +kubebuilder:default=SMI
	// +optional
	Mode TrafficPolicyMode `json:"mode,omitempty"`
}

// Egress says whether proxies may reach destinations outside the mesh.
type Egress struct {
	// mode is Deny (only mesh services are reachable) or Allow (other
	// destinations are passed through unchanged).
	// +kubebuilder:default=Deny
	// +optional
	Mode EgressMode `json:"mode,omitempty"`
}

// Certificates says who issues the mesh's certificates and how. Issuance is
// delegated to cert-manager: any ClusterIssuer (CA, Vault, Venafi) or the
// cluster-scoped kind of an external issuer.
// +kubebuilder:validation:XValidation:rule="!has(self.renewBefore) || !has(self.duration) || duration(self.renewBefore) < duration(self.duration)",message="renewBefore must be shorter than duration",fieldPath=".renewBefore"
type Certificates struct {
	// issuerRef names the cert-manager issuer that signs the mesh's
	// certificates. When empty, the operator bootstraps a self-signed root CA
	// through cert-manager and a CA Issuer for the mesh.
	// +optional
	IssuerRef *IssuerReference `json:"issuerRef,omitempty"`

	// trustBundle gives the CA certificates proxies trust, for issuers that
	// publish none (ACME, some Venafi setups leave ca.crt empty). When set,
	// it is the mesh's trust bundle, in place of the issuer's ca.crt.
	// +optional
	TrustBundle *TrustBundleSource `json:"trustBundle,omitempty"`

	// duration is the lifetime of workload certificates, a Go duration ("24h").
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	Duration string `json:"duration,omitempty"`

	// renewBefore is how long before expiry cert-manager renews a workload
	// certificate, a Go duration shorter than duration.
	// +kubebuilder:default="8h"
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	RenewBefore string `json:"renewBefore,omitempty"`

	// expiryWarning is how long before a CA certificate of the trust
	// bundle expires that the mesh warns: condition TrustAnchorsValid turns
	// False, a Warning Event is recorded, and the metric
	// osm_trust_anchor_expiry_seconds has counted down to it all along. A
	// Go duration.
	// +kubebuilder:default="720h"
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	ExpiryWarning string `json:"expiryWarning,omitempty"`

	// rootGeneration asks for a new bootstrapped root when raised (with
	// issuerRef empty): the mesh rotates to a new self-signed root, through
	// the phases of status.rotation. The operator does the same by itself
	// when the root nears its expiry (status.rootGeneration).
	// +kubebuilder:validation:Minimum=0
	// +optional
	RootGeneration int32 `json:"rootGeneration,omitempty"`

	// rotation paces a change of the mesh's issuer (a new issuerRef, or
	// back to the bootstrapped root): its new root joins the trust bundle
	// first, the new issuer signs once every proxy trusts it, and the former
	// root leaves once no proxy holds a leaf it signed (status.rotation).
	// +optional
	Rotation TrustRotationSpec `json:"rotation,omitzero"`

	// privateKey is the key of workload certificates.
	// +kubebuilder:default={algorithm: ECDSA}
	// +optional
	PrivateKey PrivateKey `json:"privateKey,omitzero"`

	// ingressGateway has the mesh issue a client certificate to an ingress
	// controller outside the mesh, as OSM's MeshConfig
	// spec.certificate.ingressGateway does: it presents the certificate to
	// the https backends of IngressBackends, whose AuthenticatedPrincipal
	// sources name one of its subjectAltNames. The operator's approver
	// signs this certificate, into this Secret, and no other with these
	// names.
	// +optional
	IngressGateway *IngressGatewayCertificate `json:"ingressGateway,omitempty"`
}

// IngressGatewayCertificate is the client certificate of an ingress
// controller outside the mesh, issued by the mesh's issuer.
type IngressGatewayCertificate struct {
	// subjectAltNames are the certificate's DNS names, such as
	// ingress-nginx.ingress-nginx.cluster.local: the names the
	// AuthenticatedPrincipal sources of IngressBackends match. No
	// wildcards: each name is one principal.
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	SubjectAltNames []string `json:"subjectAltNames"`

	// validityDuration is the certificate's lifetime, a Go duration
	// ("24h"); empty means the mesh's spec.certificates.duration.
	// cert-manager renews it when a third of it is left.
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	ValidityDuration string `json:"validityDuration,omitempty"`

	// secret is where cert-manager writes the certificate (tls.crt), its
	// key (tls.key) and the issuer's CA (ca.crt): a Secret of the ingress
	// controller's namespace, which it mounts. The operator owns it: name
	// no Secret that holds anything else.
	Secret SecretReference `json:"secret"`
}

// SecretReference names a Secret in some namespace.
type SecretReference struct {
	// name of the Secret. A workload identity's Secret (osm-identity-…)
	// cannot be named.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('osm-identity-') && !self.startsWith('osm-identity.')",message="osm-identity- and osm-identity. name workload identity Secrets"
	Name string `json:"name"`

	// namespace of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace"`
}

// IssuerReference names a cert-manager issuer: cert-manager's ClusterIssuer,
// or the cluster-scoped issuer kind of an external issuer (AWS Private CA,
// Google CAS, step-issuer…), of its own API group.
// +kubebuilder:validation:XValidation:rule="!has(self.group) || self.group != 'cert-manager.io' || !has(self.kind) || self.kind in ['Issuer', 'ClusterIssuer']",message="cert-manager.io's issuer kinds are ClusterIssuer and Issuer; an external issuer's kind goes with its own group",fieldPath=".kind"
type IssuerReference struct {
	// name of the issuer.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// kind of the issuer: ClusterIssuer (the default) for cert-manager.io,
	// or an external issuer's cluster-scoped kind. A namespaced kind (such
	// as cert-manager's Issuer) is refused: it signs only in its own
	// namespace, and workload identities live in theirs.
	// +kubebuilder:default=ClusterIssuer
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Z][A-Za-z0-9]*$`
	// +optional
	Kind string `json:"kind,omitempty"`

	// group of the issuer: cert-manager.io (the default), or the API group
	// of an external issuer, a lowercase DNS name.
	// +kubebuilder:default="cert-manager.io"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	Group string `json:"group,omitempty"`
}

// TrustBundleSource is a trust bundle given in the spec.
type TrustBundleSource struct {
	// pem holds one or more PEM-encoded CA certificates (BEGIN CERTIFICATE
	// blocks) and nothing else: the roots every proxy of the mesh trusts.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=65536
	// +kubebuilder:validation:XValidation:rule="self.contains('-----BEGIN CERTIFICATE-----')",message="pem must hold PEM-encoded CA certificates (-----BEGIN CERTIFICATE----- blocks)"
	PEM string `json:"pem"`
}

// PrivateKey is the algorithm and size of a private key.
// +kubebuilder:validation:XValidation:rule="!has(self.size) || !has(self.algorithm) || self.algorithm != 'ECDSA' || self.size in [256, 384, 521]",message="an ECDSA key size is 256, 384 or 521",fieldPath=".size"
// +kubebuilder:validation:XValidation:rule="!has(self.size) || !has(self.algorithm) || self.algorithm != 'RSA' || self.size in [2048, 3072, 4096, 8192]",message="an RSA key size is 2048, 3072, 4096 or 8192",fieldPath=".size"
type PrivateKey struct {
	// algorithm is ECDSA, RSA or Ed25519.
	// +kubebuilder:default=ECDSA
	// +optional
	Algorithm PrivateKeyAlgorithm `json:"algorithm,omitempty"`

	// size in bits: 256, 384 or 521 for ECDSA (default 256); 2048, 3072, 4096
	// or 8192 for RSA (default 2048); ignored for Ed25519.
	// +optional
	Size int32 `json:"size,omitempty"`
}

// Sidecar configures the Envoy sidecars injected into member pods.
type Sidecar struct {
	// image of the Envoy proxy. Empty means the operator's --sidecar-image
	// (the Envoy the operator was built and tested with by default), so that
	// upgrading the operator moves the mesh to its Envoy; set it to pin one.
	// +kubebuilder:validation:MinLength=1
	// +optional
	Image string `json:"image,omitempty"`

	// initImage runs the init container that redirects the pod's traffic to
	// the proxy; it needs sh and iptables-restore. Empty means the operator's
	// --init-image (openservicemesh/init:v1.2.4 by default).
	// +optional
	InitImage string `json:"initImage,omitempty"`

	// logLevel of the Envoy proxies.
	// +kubebuilder:default=error
	// +optional
	LogLevel ProxyLogLevel `json:"logLevel,omitempty"`

	// resources of the sidecar container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitzero"`

	// excludeOutboundPorts are destination ports whose traffic bypasses the proxy.
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=65535
	// +optional
	ExcludeOutboundPorts []int32 `json:"excludeOutboundPorts,omitempty"`

	// excludeInboundPorts are local ports whose inbound traffic bypasses the proxy.
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=65535
	// +optional
	ExcludeInboundPorts []int32 `json:"excludeInboundPorts,omitempty"`

	// excludeOutboundIPRanges are CIDRs whose traffic bypasses the proxy.
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self)",message="each entry must be a CIDR such as 10.0.0.0/8 or fd00::/8"
	// +optional
	ExcludeOutboundIPRanges []string `json:"excludeOutboundIPRanges,omitempty"`
}

// XDS says where proxies reach the operator's xDS server.
type XDS struct {
	// address (host name or IP) of the xDS server as proxies dial it. Empty
	// means the operator's xDS Service in its own namespace.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Address string `json:"address,omitempty"`

	// port of the xDS server.
	// +kubebuilder:default=15128
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`
}

// DefaultXDSPort is the xDS server's port, where the operator listens
// (its --xds-address) and proxies dial when a mesh names none. The CRD's
// default of XDS.Port repeats it: a marker cannot name a constant.
const DefaultXDSPort = 15128

// EffectivePort is the port proxies dial: port, or DefaultXDSPort.
func (x XDS) EffectivePort() int32 {
	if x.Port == 0 {
		return DefaultXDSPort
	}
	return x.Port
}

// MeshInstanceStatus is the observed state of a mesh.
type MeshInstanceStatus struct {
	// observedGeneration is the generation of the spec last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, Reconciling, Stalled, CertificateAuthorityReady,
	// TrustBundleKnown, TrustAnchorsValid, TrustBundleRotated, TrustRotationComplete,
	// PoliciesValid, ProxyConfigReady,
	// IdentityIssuanceRestricted and, with an ingress gateway certificate,
	// IngressCertificateReady.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// trustBundle summarizes the CA certificates proxies trust (the mesh's
	// trust bundle, served from Secret osm-<mesh>-trust-bundle of the
	// operator's namespace): the signing issuer's (role Current), during a
	// rotation the new issuer's (Next, while it announces), and the former
	// ones (Retiring) until every leaf of the mesh chains to a current one.
	// +optional
	TrustBundle []TrustAnchor `json:"trustBundle,omitempty"`

	// signingIssuer is the issuer that signs the mesh's leaves: the
	// issuerRef (or the bootstrapped CA) once a change of issuer has gone
	// through the phases of status.rotation.
	// +optional
	SigningIssuer *IssuerReference `json:"signingIssuer,omitempty"`

	// rootGeneration is the generation of the bootstrapped root the mesh
	// uses or moves to, when the operator renewed the root by itself
	// before its expiry; the higher of it and spec.certificates.rootGeneration
	// counts.
	// +optional
	RootGeneration int32 `json:"rootGeneration,omitempty"`

	// rotation is the change of issuer under way, if any.
	// +optional
	Rotation *TrustRotation `json:"rotation,omitempty"`

	// memberNamespaces is the number of namespaces in the mesh.
	// +optional
	MemberNamespaces int32 `json:"memberNamespaces,omitempty"`

	// identities is the number of workload identities with a certificate.
	// +optional
	Identities int32 `json:"identities,omitempty"`

	// vms is the number of MeshVMs in the mesh.
	// +optional
	VMs int32 `json:"vms,omitempty"`

	// connectedProxies is the number of proxies holding an xDS stream.
	// +optional
	ConnectedProxies int32 `json:"connectedProxies,omitempty"`

	// namespacesAcceptingPlaintext is the number of member namespaces whose
	// pods accept plaintext from outside the mesh on at least one port (by
	// the mesh's setting, their MeshMember's or a port override of it):
	// zero once the mesh is closed to callers without a mesh certificate.
	// Each MeshMember's status lists its open ports.
	// +optional
	NamespacesAcceptingPlaintext int32 `json:"namespacesAcceptingPlaintext,omitempty"`
}

// TrustAnchor summarizes one CA certificate of the trust bundle.
type TrustAnchor struct {
	// subject of the certificate.
	Subject string `json:"subject"`
	// kind is Root for a self-signed certificate, Intermediate for one
	// another CA signed.
	// +optional
	Kind TrustAnchorKind `json:"kind,omitempty"`
	// sha256Fingerprint of the DER certificate, hex encoded.
	SHA256Fingerprint string `json:"sha256Fingerprint"`
	// notBefore is when the certificate becomes valid.
	// +optional
	NotBefore metav1.Time `json:"notBefore,omitzero"`
	// notAfter is when the certificate expires.
	NotAfter metav1.Time `json:"notAfter"`
	// role is Current for a CA certificate of the issuer that signs the
	// mesh's leaves (or of spec.certificates.trustBundle), Next for one of
	// the issuer a rotation moves to, Retiring for a former one kept while
	// leaves it signed remain.
	// +optional
	Role TrustAnchorRole `json:"role,omitempty"`
	// retiringSince is when a Retiring certificate stopped being current.
	// It leaves the bundle at the latest spec.certificates.duration later,
	// when every leaf it could have signed for the mesh has expired.
	// +optional
	RetiringSince *metav1.Time `json:"retiringSince,omitempty"`
}

// TrustAnchorRole says why a CA certificate is in the bundle.
// +kubebuilder:validation:Enum=Current;Next;Retiring
type TrustAnchorRole string

// The roles of trust anchors.
const (
	TrustAnchorCurrent TrustAnchorRole = "Current"
	// TrustAnchorNext is a CA certificate of the issuer a rotation moves
	// to: trusted already, signing nothing of the mesh yet.
	TrustAnchorNext     TrustAnchorRole = "Next"
	TrustAnchorRetiring TrustAnchorRole = "Retiring"
)

// TrustAnchorKind says whether a CA certificate of the bundle is a root.
// +kubebuilder:validation:Enum=Root;Intermediate
type TrustAnchorKind string

// The kinds of trust anchors.
const (
	TrustAnchorRoot         TrustAnchorKind = "Root"
	TrustAnchorIntermediate TrustAnchorKind = "Intermediate"
)

// MeshInstance is a service mesh. Its name is the mesh ID that namespaces carry
// in the openservicemesh.io/monitor label.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=mesh;meshes,categories=osm
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.trafficPolicy.mode`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Namespaces",type=integer,JSONPath=`.status.memberNamespaces`
// +kubebuilder:printcolumn:name="Identities",type=integer,JSONPath=`.status.identities`
// +kubebuilder:printcolumn:name="VMs",type=integer,JSONPath=`.status.vms`
// +kubebuilder:printcolumn:name="Proxies",type=integer,JSONPath=`.status.connectedProxies`
// +kubebuilder:printcolumn:name="Plaintext",type=string,JSONPath=`.spec.inbound.plaintextFromOutsideMesh`,priority=1
// +kubebuilder:printcolumn:name="Plaintext NS",type=integer,JSONPath=`.status.namespacesAcceptingPlaintext`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name is the mesh ID, used as a label value: it must be a DNS label (at most 63 lowercase letters, digits and '-')"
type MeshInstance struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec declares the mesh.
	// +kubebuilder:default={}
	// +optional
	Spec MeshInstanceSpec `json:"spec,omitzero"`

	// status is the mesh as the operator observes it.
	// +optional
	Status MeshInstanceStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// MeshInstanceList is a list of MeshInstances.
type MeshInstanceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MeshInstance `json:"items"`
}

func init() {
	SchemeBuilder.Register(&MeshInstance{}, &MeshInstanceList{})
}
