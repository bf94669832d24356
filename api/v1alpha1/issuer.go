package v1alpha1

// Reasons of a MeshInstance's Ready and CertificateAuthorityReady conditions
// about the issuer that spec.certificates.issuerRef names.
const (
	// ReasonIssuerKindUnsupported: the kind cannot sign for the mesh (a
	// namespaced issuer signs only in its own namespace). Stalled.
	ReasonIssuerKindUnsupported = "IssuerKindUnsupported"
	// ReasonIssuerKindNotInstalled: no CRD serves the issuer's kind in its
	// group (yet). Not stalled: installing the issuer's CRD is enough.
	ReasonIssuerKindNotInstalled = "IssuerKindNotInstalled"
)
