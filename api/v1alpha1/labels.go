package v1alpha1

// Labels and annotations that users and the operator put on Kubernetes objects.
// The first two come from the Open Service Mesh README and keep their meaning.
const (
	// MonitorLabel on a namespace names the mesh that manages it: a namespace
	// labelled openservicemesh.io/monitor=<mesh> is a member of that mesh.
	MonitorLabel = "openservicemesh.io/monitor"

	// SidecarInjectionAnnotation on a pod or namespace turns automatic sidecar
	// injection off ("disabled") or on ("enabled"); the pod's value wins.
	SidecarInjectionAnnotation = "openservicemesh.io/sidecar-injection"

	// SidecarInjectionEnabled and SidecarInjectionDisabled are the values of
	// SidecarInjectionAnnotation.
	SidecarInjectionEnabled  = "enabled"
	SidecarInjectionDisabled = "disabled"

	// FieldManager is the server-side apply field manager of everything the
	// operator writes, so that it removes exactly what it set and nothing else.
	FieldManager = "osm-operator"
)

// Identity Secrets hold the certificate of a workload identity, issued by
// cert-manager in the workload's namespace, with the keys tls.crt, tls.key and
// ca.crt. IdentitySecretPrefix + the service account names the Secret.
const IdentitySecretPrefix = "osm-identity-"

// IdentitySecretName names the identity Secret of a service account.
func IdentitySecretName(serviceAccount string) string {
	return IdentitySecretPrefix + serviceAccount
}

// InjectedAnnotation is set by the injector on every pod it gives a sidecar.
const InjectedAnnotation = "openservicemesh.io/sidecar-injected"

// XDSServingSecretLabel marks the Secrets holding the xDS server's
// certificates, one per mesh, each signed by its mesh's issuer. Its value is
// the mesh.
const XDSServingSecretLabel = "mesh.openservicemesh.io/xds-serving"
