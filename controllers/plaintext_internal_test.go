package controllers

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// The ports listed are those whose proxy accepts plaintext: declared TCP
// ports of the app containers of live pods with a proxy, not excluded
// from the proxy, where the setting in effect is Accept.
func TestPortsAcceptingPlaintext(t *testing.T) {
	withPorts := func(name string, proxied bool, ports ...corev1.ContainerPort) corev1.Pod {
		image := ""
		if proxied {
			image = meshEnvoy
		}
		p := podWith(name, image)
		p.Spec.Containers[0].Ports = ports
		return p
	}
	tcp := func(n int32) corev1.ContainerPort { return corev1.ContainerPort{ContainerPort: n} }
	ended := withPorts("ended", true, tcp(7000))
	ended.Status.Phase = corev1.PodSucceeded
	pods := []corev1.Pod{
		withPorts("web", true, tcp(8080), tcp(9090), corev1.ContainerPort{ContainerPort: 5353, Protocol: corev1.ProtocolUDP}, tcp(15010)),
		withPorts("web-2", true, tcp(8080), corev1.ContainerPort{ContainerPort: 8443, Protocol: corev1.ProtocolTCP}),
		withPorts("no-proxy", false, tcp(6000)), // reached in plaintext, but no proxy decides it
		ended,
	}
	pods[0].Spec.InitContainers[0].Ports = []corev1.ContainerPort{tcp(15000)} // the sidecar's own
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "m"}}
	mi.Spec.TrafficPolicy.Mode = meshv1alpha1.TrafficPolicyPermissive // the setting applies in Permissive mode only
	mi.Spec.Sidecar.ExcludeInboundPorts = []int32{15010}
	for _, tc := range []struct {
		name   string
		mesh   meshv1alpha1.PlaintextPolicy
		member meshv1alpha1.MemberInbound
		want   []int32
	}{
		{"the default accepts", "", meshv1alpha1.MemberInbound{}, []int32{8080, 8443, 9090}},
		{"the mesh refuses", meshv1alpha1.PlaintextRefuse, meshv1alpha1.MemberInbound{}, nil},
		{"the member opens one port of a refusing mesh", meshv1alpha1.PlaintextRefuse, meshv1alpha1.MemberInbound{
			PortOverrides: []meshv1alpha1.InboundPortOverride{{Port: 8443, PlaintextFromOutsideMesh: meshv1alpha1.PlaintextAccept}},
		}, []int32{8443}},
		{"the member closes one port", meshv1alpha1.PlaintextAccept, meshv1alpha1.MemberInbound{
			PortOverrides: []meshv1alpha1.InboundPortOverride{{Port: 9090, PlaintextFromOutsideMesh: meshv1alpha1.PlaintextRefuse}},
		}, []int32{8080, 8443}},
		{"an override of an excluded port opens nothing", meshv1alpha1.PlaintextRefuse, meshv1alpha1.MemberInbound{
			PortOverrides: []meshv1alpha1.InboundPortOverride{{Port: 15010, PlaintextFromOutsideMesh: meshv1alpha1.PlaintextAccept}},
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mi.DeepCopy()
			m.Spec.Inbound.PlaintextFromOutsideMesh = tc.mesh
			mm := &meshv1alpha1.MeshMember{Spec: meshv1alpha1.MeshMemberSpec{Mesh: "m", Inbound: tc.member}}
			if got := portsAcceptingPlaintext(m, mm, pods); !slices.Equal(got, tc.want) {
				t.Errorf("ports %v, want %v", got, tc.want)
			}
			m.Spec.TrafficPolicy.Mode = meshv1alpha1.TrafficPolicySMI
			if got := portsAcceptingPlaintext(m, mm, pods); len(got) > 0 {
				t.Errorf("SMI mode: ports %v accept plaintext, want none", got)
			}
		})
	}
}

// A namespace counts when any of its MeshMembers accepts plaintext on some
// port, or, labelled with none, when the mesh does; a deleted member or
// another mesh's counts for nothing.
func TestNamespacesAcceptingPlaintext(t *testing.T) {
	member := func(ns, mesh string, in meshv1alpha1.MemberInbound) meshv1alpha1.MeshMember {
		return meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "m"}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: mesh, Inbound: in}}
	}
	refuse := meshv1alpha1.MemberInbound{PlaintextFromOutsideMesh: meshv1alpha1.PlaintextRefuse}
	accept := meshv1alpha1.MemberInbound{PlaintextFromOutsideMesh: meshv1alpha1.PlaintextAccept}
	deleted := member("gone", "m", accept)
	deleted.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)}
	members := []meshv1alpha1.MeshMember{
		member("closed", "m", refuse),
		member("mixed", "m", refuse), member("mixed", "m", accept),
		member("other", "elsewhere", accept), member("other", "m", refuse),
		deleted,
	}
	namespaces := []string{"closed", "mixed", "other", "gone", "labelled"}
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "m"}}
	mi.Spec.TrafficPolicy.Mode = meshv1alpha1.TrafficPolicyPermissive
	// mixed, and gone and labelled by the mesh's default.
	if got := namespacesAcceptingPlaintext(mi, namespaces, members); got != 3 {
		t.Errorf("%d namespaces accept plaintext, want 3 (mixed, gone, labelled)", got)
	}
	mi.Spec.Inbound.PlaintextFromOutsideMesh = meshv1alpha1.PlaintextRefuse
	if got := namespacesAcceptingPlaintext(mi, namespaces, members); got != 1 {
		t.Errorf("%d namespaces accept plaintext in a refusing mesh, want 1 (mixed)", got)
	}
	mi.Spec.TrafficPolicy.Mode = meshv1alpha1.TrafficPolicySMI
	if got := namespacesAcceptingPlaintext(mi, namespaces, members); got != 0 {
		t.Errorf("%d namespaces accept plaintext in an SMI mesh, want 0", got)
	}
}
