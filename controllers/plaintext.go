package controllers

import (
	"slices"

	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// The plaintext counts of the mesh's and the members' status: who can
// reach the mesh's workloads without a mesh certificate. The rule itself
// lives in api/v1alpha1 (EffectivePlaintextFromOutsideMesh); these count
// where it says Accept.

// maxPlaintextPorts bounds status.portsAcceptingPlaintext, as its CRD does.
const maxPlaintextPorts = 256

// portsAcceptingPlaintext are the TCP ports, sorted, that the app
// containers of pods (the live member pods with a proxy) declare and on
// which the effective setting of the member mm of mi is Accept. The
// mesh's excludeInboundPorts bypass the proxy, which decides nothing
// there, and the sidecar's own ports are not the workload's.
func portsAcceptingPlaintext(mi *meshv1alpha1.MeshInstance, mm *meshv1alpha1.MeshMember, pods []corev1.Pod) []int32 {
	var out []int32
	for i := range pods {
		p := &pods[i]
		if !live(p) || !mesh.HasProxy(p) {
			continue
		}
		for _, c := range p.Spec.Containers {
			for _, port := range c.Ports {
				n := port.ContainerPort
				if port.Protocol != "" && port.Protocol != corev1.ProtocolTCP || n < 1 || n > 65535 ||
					slices.Contains(mi.Spec.Sidecar.ExcludeInboundPorts, n) || slices.Contains(out, n) {
					continue
				}
				if meshv1alpha1.EffectivePlaintextFromOutsideMesh(mi.Spec, mm.Spec.Inbound, n) == meshv1alpha1.PlaintextAccept {
					out = append(out, n)
				}
			}
		}
	}
	slices.Sort(out)
	return out[:min(len(out), maxPlaintextPorts)]
}

// namespacesAcceptingPlaintext counts the namespaces of mi whose pods
// accept plaintext from outside the mesh on some port: a namespace with a
// MeshMember of the mesh by the members' settings (any of them), a
// namespace in the mesh by its label alone by the mesh's.
func namespacesAcceptingPlaintext(mi *meshv1alpha1.MeshInstance, namespaces []string, members []meshv1alpha1.MeshMember) int32 {
	byNamespace := map[string][]meshv1alpha1.MemberInbound{}
	for _, m := range members {
		if m.Spec.Mesh == mi.Name && m.DeletionTimestamp.IsZero() {
			byNamespace[m.Namespace] = append(byNamespace[m.Namespace], m.Spec.Inbound)
		}
	}
	var n int32
	for _, ns := range namespaces {
		inbound, ok := byNamespace[ns]
		if !ok {
			inbound = []meshv1alpha1.MemberInbound{{}}
		}
		if slices.ContainsFunc(inbound, func(in meshv1alpha1.MemberInbound) bool {
			return meshv1alpha1.AcceptsPlaintextOnSomePort(mi.Spec, in)
		}) {
			n++
		}
	}
	return n
}
