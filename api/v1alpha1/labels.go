package v1alpha1

import (
	"strings"

	"github.com/open-service-mesh/osm-operator/internal/objname"
)

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
// ca.crt. IdentitySecretPrefix + the service account names the Secret and its
// Certificate when that fits in an object name; a longer service account's
// are named IdentitySecretHashedPrefix + the start of its name + a hash of
// all of it. The two prefixes differ in their last character, so no
// readable name is ever the hashed name of another service account.
const (
	IdentitySecretPrefix       = "osm-identity-"
	IdentitySecretHashedPrefix = "osm-identity."
)

// ServiceAccountAnnotation on an identity Secret names its service account,
// which a hashed name does not spell out.
const ServiceAccountAnnotation = "mesh.openservicemesh.io/service-account"

// maxObjectName is the longest name of a Secret or a Certificate: a DNS
// subdomain.
const maxObjectName = 253

// identityHashLen is the hex digits of SHA-256 a hashed name keeps: 128 bits,
// so that no one can choose a service account whose hash is another's.
const identityHashLen = 32

// IdentitySecretName names the identity Secret, and the Certificate, of a
// service account: any valid service account name (a DNS subdomain of up to
// 253 characters) gives a valid name, distinct service accounts distinct
// names, and a name that fitted before keeps it.
func IdentitySecretName(serviceAccount string) string {
	if len(IdentitySecretPrefix)+len(serviceAccount) <= maxObjectName {
		return IdentitySecretPrefix + serviceAccount
	}
	return IdentitySecretHashedPrefix + objname.Cut(serviceAccount, serviceAccount, maxObjectName-len(IdentitySecretHashedPrefix), identityHashLen)
}

// IsIdentitySecretName says whether name is one IdentitySecretName gives.
func IsIdentitySecretName(name string) bool {
	return strings.HasPrefix(name, IdentitySecretPrefix) || strings.HasPrefix(name, IdentitySecretHashedPrefix)
}

// InjectedAnnotation is set by the injector on every pod it gives a sidecar.
const InjectedAnnotation = "openservicemesh.io/sidecar-injected"

// XDSServingSecretLabel marks the Secrets holding the xDS server's
// certificates, one per mesh, each signed by its mesh's issuer. Its value is
// the mesh.
const XDSServingSecretLabel = "mesh.openservicemesh.io/xds-serving"
