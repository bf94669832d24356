package v1alpha1

// Condition types. Ready, Reconciling and Stalled follow kstatus semantics so that
// `kubectl wait --for=condition=Ready`, Flux and Argo CD health checks understand
// every resource of this API.
const (
	// ConditionReady is True when the resource is fully reconciled and working.
	ConditionReady = "Ready"
	// ConditionReconciling is True while the operator works towards the spec.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True when the operator cannot make progress without a
	// change to the spec or to the cluster; retrying alone will not fix it.
	ConditionStalled = "Stalled"

	// ConditionCertificateAuthorityReady is True on a MeshInstance whose issuer is
	// ready and whose trust bundle is assembled.
	ConditionCertificateAuthorityReady = "CertificateAuthorityReady"
	// ConditionPoliciesValid is True on a MeshInstance when every object of
	// the mesh (SMI policies, splits, Services, EndpointSlices, members) could
	// be used as written. When False, its message names the objects left
	// out; traffic they would have allowed is denied.
	ConditionPoliciesValid = "PoliciesValid"
	// ConditionIdentitiesReady is True on a MeshMember or MeshVM whose identity
	// certificates are all issued.
	ConditionIdentitiesReady = "IdentitiesReady"
	// ConditionCertificateReady is True on a MeshVM whose identity
	// certificate is issued.
	ConditionCertificateReady = "CertificateReady"
	// ConditionBootstrapReady is True on a MeshVM whose bootstrap Secret is written.
	ConditionBootstrapReady = "BootstrapReady"
	// ConditionProxyConnected is True on a MeshVM whose proxy holds an xDS stream.
	ConditionProxyConnected = "ProxyConnected"
	// ConditionAddressesAccepted is True on a MeshVM whose addresses are all
	// published. When False, its message names each address left out of the
	// VM's EndpointSlices and why: the IP of a pod (ReasonAddressConflict),
	// or an address no VM may have (ReasonUnsafeAddress).
	ConditionAddressesAccepted = "AddressesAccepted"
	// ConditionProxyConfigReady is True on a MeshMember, or a MeshInstance,
	// when the xDS replicas published the config of every proxy group of the
	// namespace (of the mesh's member namespaces). When False, its message
	// names the groups whose translation failed: their proxies keep their
	// last good config.
	ConditionProxyConfigReady = "ProxyConfigReady"
)

// Condition reasons shared by the three kinds. Reasons are CamelCase words.
const (
	ReasonSucceeded          = "Succeeded"
	ReasonProgressing        = "Progressing"
	ReasonMeshNotFound       = "MeshNotFound"
	ReasonIssuerNotReady     = "IssuerNotReady"
	ReasonCertificatePending = "CertificatePending"
	ReasonInvalidSpec        = "InvalidSpec"
	ReasonDeleting           = "Deleting"
	ReasonInvalidObjects     = "InvalidObjects"
	ReasonTranslationFailed  = "TranslationFailed"
	// ReasonMeshConflict: a MeshVM's namespace is in another mesh
	// (its label, its MeshMember, or its first MeshVM's).
	ReasonMeshConflict = "MeshConflict"
)

// Reasons of a MeshVM's ConditionAddressesAccepted, and of its Ready
// condition while an address is left out.
const (
	ReasonAddressConflict = "AddressConflict"
	ReasonUnsafeAddress   = "UnsafeAddress"
)
