package controllers_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
)

// TestPlaintextStatusCountsWhatAcceptsIt: the MeshInstance counts the
// member namespaces that accept plaintext from outside the mesh, and the
// MeshMember lists the declared ports of its meshed pods that do, each
// following the mesh's setting, the member's and its port overrides as
// they change.
func TestPlaintextStatusCountsWhatAcceptsIt(t *testing.T) {
	ctx := context.Background()
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "plaintext"},
		Spec: meshv1alpha1.MeshInstanceSpec{TrafficPolicy: meshv1alpha1.TrafficPolicy{Mode: meshv1alpha1.TrafficPolicyPermissive}}}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, nil)
	p := meshedPod(mi.Name, ns, "web-1", "web")
	p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8080}, {ContainerPort: 9090}, {ContainerPort: 5353, Protocol: corev1.ProtocolUDP}}
	if err := k8s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	mm := &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: mi.Name}}
	if err := k8s.Create(ctx, mm); err != nil {
		t.Fatal(err)
	}
	expect := func(step string, policy meshv1alpha1.PlaintextPolicy, ports []int32, namespaces int32) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, func() error {
			got := &meshv1alpha1.MeshMember{}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(mm), got); err != nil {
				return err
			}
			if got.Status.PlaintextFromOutsideMesh != policy || !slices.Equal(got.Status.PortsAcceptingPlaintext, ports) {
				return fmt.Errorf("%s: member says %q on %v, want %q on %v", step, got.Status.PlaintextFromOutsideMesh, got.Status.PortsAcceptingPlaintext, policy, ports)
			}
			m := &meshv1alpha1.MeshInstance{}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), m); err != nil {
				return err
			}
			if m.Status.NamespacesAcceptingPlaintext != namespaces || m.Status.MemberNamespaces != 1 {
				return fmt.Errorf("%s: mesh counts %d namespaces accepting plaintext of %d, want %d of 1", step,
					m.Status.NamespacesAcceptingPlaintext, m.Status.MemberNamespaces, namespaces)
			}
			return nil
		})
	}
	update := func(obj client.Object, change func()) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
				return err
			}
			change()
			return k8s.Update(ctx, obj)
		})
	}

	// The mesh accepts plaintext by default: the namespace counts, and
	// both TCP ports the pod declares are open (UDP bypasses the proxy).
	expect("default", meshv1alpha1.PlaintextAccept, []int32{8080, 9090}, 1)

	// The member refuses it but keeps its metrics port open.
	update(mm, func() {
		mm.Spec.Inbound = meshv1alpha1.MemberInbound{
			PlaintextFromOutsideMesh: meshv1alpha1.PlaintextRefuse,
			PortOverrides:            []meshv1alpha1.InboundPortOverride{{Port: 9090, PlaintextFromOutsideMesh: meshv1alpha1.PlaintextAccept}},
		}
	})
	expect("refused but for 9090", meshv1alpha1.PlaintextRefuse, []int32{9090}, 1)

	// Without the override, the namespace is closed.
	update(mm, func() { mm.Spec.Inbound.PortOverrides = nil })
	expect("refused", meshv1alpha1.PlaintextRefuse, nil, 0)

	// A member that says nothing follows the mesh's setting, both ways.
	update(mm, func() { mm.Spec.Inbound = meshv1alpha1.MemberInbound{} })
	expect("inherits Accept", meshv1alpha1.PlaintextAccept, []int32{8080, 9090}, 1)
	update(mi, func() { mi.Spec.Inbound.PlaintextFromOutsideMesh = meshv1alpha1.PlaintextRefuse })
	expect("inherits Refuse", meshv1alpha1.PlaintextRefuse, nil, 0)

	// In SMI mode only an IngressBackend admits a caller outside the mesh,
	// whatever the setting.
	update(mi, func() {
		mi.Spec.Inbound.PlaintextFromOutsideMesh = meshv1alpha1.PlaintextAccept
		mi.Spec.TrafficPolicy.Mode = meshv1alpha1.TrafficPolicySMI
	})
	expect("SMI", meshv1alpha1.PlaintextRefuse, nil, 0)
}
