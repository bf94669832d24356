package v1alpha1

// The mesh's trust bundle: the CA certificates every proxy of a mesh
// trusts, written by the operator into a Secret of its own namespace, from
// the mesh's bootstrapped root, spec.certificates.trustBundle, or the ca.crt
// the mesh's issuer put into the xDS serving Secret. The xDS servers serve
// proxies this bundle, not the ca.crt of each identity Secret, and the
// operator copies it into a ConfigMap of each namespace of the mesh, which
// injected pods mount.
const (
	// TrustBundleSecretLabel marks a mesh's trust bundle Secret and its
	// trust bundle ConfigMaps; its value is the mesh.
	TrustBundleSecretLabel = "mesh.openservicemesh.io/trust-bundle"
	// TrustBundleKey is the Secret's and the ConfigMaps' key holding the PEM
	// CA certificates.
	TrustBundleKey = "ca.crt"
)

// TrustBundleSecretName names the trust bundle Secret of a mesh, in the
// operator's namespace.
func TrustBundleSecretName(mesh string) string { return "osm-" + mesh + "-trust-bundle" }

// TrustBundleConfigMapName names the ConfigMap holding a mesh's trust
// bundle (key TrustBundleKey) in each namespace of the mesh: what an
// injected pod trusts the xDS server by, and a proxyless gRPC application
// its peers. A mesh's name is a DNS label, so the name is a valid one.
func TrustBundleConfigMapName(mesh string) string { return "osm-" + mesh + "-trust-bundle" }

// ConditionTrustBundleKnown is True on a MeshInstance whose trust bundle is
// known and written for the xDS servers; False says why proxies have none.
const ConditionTrustBundleKnown = "TrustBundleKnown"

// ConditionTrustAnchorsValid is True on a MeshInstance whose every CA
// certificate of the trust bundle is valid now and for longer than
// spec.certificates.expiryWarning; False names those that are not.
const ConditionTrustAnchorsValid = "TrustAnchorsValid"

// Reasons of ConditionTrustAnchorsValid.
const (
	// ReasonValid: every CA certificate is valid past the warning window.
	ReasonValid = "Valid"
	// ReasonExpiresSoon: a CA certificate expires within the window.
	ReasonExpiresSoon = "ExpiresSoon"
	// ReasonExpired: a CA certificate has expired, or is not valid yet.
	ReasonExpired = "Expired"
	// ReasonNoValidAnchor: the mesh is not Ready while no CA certificate
	// of its bundle is valid: no proxy accepts any peer.
	ReasonNoValidAnchor = "NoValidAnchor"
)

// ConditionTrustBundleRotated is True on a MeshInstance whose bundle holds
// only its issuer's current CA certificates; False while former ones stay
// next to them, until every leaf of the mesh chains to a current one.
const ConditionTrustBundleRotated = "TrustBundleRotated"

// Reasons of ConditionTrustBundleRotated.
const (
	// ReasonCurrentOnly: the bundle holds the current CA certificates only.
	ReasonCurrentOnly = "CurrentOnly"
	// ReasonRetiringFormerRoot: a former CA certificate stays in the bundle
	// while leaves it signed remain.
	ReasonRetiringFormerRoot = "RetiringFormerRoot"
)

// Reasons of ConditionTrustBundleKnown.
const (
	// ReasonBootstrapped: the bundle is the mesh's bootstrapped root.
	ReasonBootstrapped = "Bootstrapped"
	// ReasonFromSpec: the bundle is spec.certificates.trustBundle.
	ReasonFromSpec = "FromSpec"
	// ReasonFromIssuer: the bundle is the ca.crt the issuer published.
	ReasonFromIssuer = "FromIssuer"
	// ReasonIssuerPublishesNoCA: the issuer signed the xDS serving
	// certificate with no CA certificate in ca.crt, and the spec gives none.
	ReasonIssuerPublishesNoCA = "IssuerPublishesNoCA"
	// ReasonTrustBundleUnknown: the mesh is not Ready while its bundle is
	// not known.
	ReasonTrustBundleUnknown = "TrustBundleUnknown"
)
