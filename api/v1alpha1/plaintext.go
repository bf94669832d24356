package v1alpha1

// PlaintextPolicy says whether meshed workloads also accept plaintext from
// callers outside the mesh.
// +kubebuilder:validation:Enum=Accept;Refuse
type PlaintextPolicy string

const (
	// PlaintextAccept: a meshed workload also accepts connections without
	// mutual TLS, from callers that hold no mesh certificate. Mesh peers
	// still use mutual TLS.
	PlaintextAccept PlaintextPolicy = "Accept"
	// PlaintextRefuse: a meshed workload accepts mutual TLS from mesh peers
	// and the callers IngressBackends name, nothing else.
	PlaintextRefuse PlaintextPolicy = "Refuse"

	// DefaultPlaintextFromOutsideMesh applies when neither the mesh nor the
	// member says: an existing cluster adopts the mesh without cutting off
	// the callers that have not joined it yet. The CRD's default of
	// MeshInbound.PlaintextFromOutsideMesh repeats it, so that every
	// MeshInstance shows the value in effect; this constant covers objects
	// that never went through the API server.
	DefaultPlaintextFromOutsideMesh = PlaintextAccept
)

// valid is whether p is one of the two settings. Anything else (the API
// server refuses it; only code builds it) counts as unset.
func (p PlaintextPolicy) valid() bool { return p == PlaintextAccept || p == PlaintextRefuse }

// EffectivePlaintextFromOutsideMesh is the one home of the rule deciding
// whether a member pod accepts plaintext from outside the mesh on port. In
// SMI mode it never does by this setting: SMI denies what no policy allows,
// and a plaintext caller has no identity a TrafficTarget could name, so only
// an IngressBackend admits one. In Permissive mode it is the member's
// override of that port, else the member's setting, else the mesh's, else
// DefaultPlaintextFromOutsideMesh. A namespace in the mesh by its label
// alone, with no MeshMember, passes a zero MemberInbound. Port 0 asks for
// the setting of every port without an override.
func EffectivePlaintextFromOutsideMesh(mesh MeshInstanceSpec, member MemberInbound, port int32) PlaintextPolicy {
	if mesh.TrafficPolicy.Mode != TrafficPolicyPermissive {
		return PlaintextRefuse
	}
	if port != 0 {
		for _, o := range member.PortOverrides {
			if o.Port == port && o.PlaintextFromOutsideMesh.valid() {
				return o.PlaintextFromOutsideMesh
			}
		}
	}
	switch {
	case member.PlaintextFromOutsideMesh.valid():
		return member.PlaintextFromOutsideMesh
	case mesh.Inbound.PlaintextFromOutsideMesh.valid():
		return mesh.Inbound.PlaintextFromOutsideMesh
	}
	return DefaultPlaintextFromOutsideMesh
}

// AcceptsPlaintextOnSomePort is whether a member's pods accept plaintext
// from outside the mesh on at least one port: its ports without an override
// do, or an override accepts it. It is what MeshInstance's
// status.namespacesAcceptingPlaintext counts.
func AcceptsPlaintextOnSomePort(mesh MeshInstanceSpec, member MemberInbound) bool {
	if EffectivePlaintextFromOutsideMesh(mesh, member, 0) == PlaintextAccept {
		return true
	}
	for _, o := range member.PortOverrides {
		if o.Port != 0 && EffectivePlaintextFromOutsideMesh(mesh, member, o.Port) == PlaintextAccept {
			return true
		}
	}
	return false
}
