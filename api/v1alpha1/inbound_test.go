package v1alpha1_test

import (
	"context"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// TestAPIServerKeepsInboundSettings writes every field of the plaintext
// settings, spec and status, of a MeshInstance and a MeshMember and reads
// them back unchanged.
func TestAPIServerKeepsInboundSettings(t *testing.T) {
	ctx := context.Background()
	mi := meshInstance("inbound", func(m *meshv1alpha1.MeshInstance) {
		m.Spec.Inbound.PlaintextFromOutsideMesh = meshv1alpha1.PlaintextRefuse
	})
	create(t, mi)
	mi.Status.NamespacesAcceptingPlaintext = 3
	if err := env.Client.Status().Update(ctx, mi); err != nil {
		t.Fatalf("writing the MeshInstance's status: %v", err)
	}

	ns := newNamespace(t)
	inbound := meshv1alpha1.MemberInbound{
		PlaintextFromOutsideMesh: meshv1alpha1.PlaintextAccept,
		PortOverrides: []meshv1alpha1.InboundPortOverride{
			{Port: 15000, PlaintextFromOutsideMesh: meshv1alpha1.PlaintextRefuse},
			{Port: 9102, PlaintextFromOutsideMesh: meshv1alpha1.PlaintextAccept},
		},
	}
	mm := meshMember(ns, func(m *meshv1alpha1.MeshMember) { m.Spec.Inbound = inbound })
	create(t, mm)
	mm.Status.PlaintextFromOutsideMesh = meshv1alpha1.PlaintextAccept
	mm.Status.PortsAcceptingPlaintext = []int32{8080, 9102, 14001}
	if err := env.Client.Status().Update(ctx, mm); err != nil {
		t.Fatalf("writing the MeshMember's status: %v", err)
	}

	gotMI := &meshv1alpha1.MeshInstance{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(mi), gotMI); err != nil {
		t.Fatal(err)
	}
	if got := gotMI.Spec.Inbound.PlaintextFromOutsideMesh; got != meshv1alpha1.PlaintextRefuse {
		t.Errorf("MeshInstance spec.inbound.plaintextFromOutsideMesh = %q, want Refuse", got)
	}
	if got := gotMI.Status.NamespacesAcceptingPlaintext; got != 3 {
		t.Errorf("MeshInstance status.namespacesAcceptingPlaintext = %d, want 3", got)
	}
	gotMM := &meshv1alpha1.MeshMember{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(mm), gotMM); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(inbound, gotMM.Spec.Inbound); diff != "" {
		t.Errorf("MeshMember spec.inbound read back changed (-wrote +read):\n%s", diff)
	}
	if gotMM.Status.PlaintextFromOutsideMesh != meshv1alpha1.PlaintextAccept ||
		!slices.Equal(gotMM.Status.PortsAcceptingPlaintext, []int32{8080, 9102, 14001}) {
		t.Errorf("MeshMember status read back as %q %v", gotMM.Status.PlaintextFromOutsideMesh, gotMM.Status.PortsAcceptingPlaintext)
	}
}

// TestAPIServerRejectsInvalidInboundSettings: the plaintext settings take
// the two values only, on real port numbers, one override a port.
func TestAPIServerRejectsInvalidInboundSettings(t *testing.T) {
	type mi = meshv1alpha1.MeshInstance
	type mm = meshv1alpha1.MeshMember
	override := func(port int32, s meshv1alpha1.PlaintextPolicy) meshv1alpha1.InboundPortOverride {
		return meshv1alpha1.InboundPortOverride{Port: port, PlaintextFromOutsideMesh: s}
	}
	many := make([]meshv1alpha1.InboundPortOverride, 65)
	for i := range many {
		many[i] = override(int32(8000+i), meshv1alpha1.PlaintextRefuse)
	}
	cases := []invalidCase{
		{"mesh setting of another spelling", func(string) client.Object {
			return meshInstance("bad-plaintext", func(m *mi) { m.Spec.Inbound.PlaintextFromOutsideMesh = "accept" })
		}, "spec.inbound.plaintextFromOutsideMesh", "Unsupported value"},
		{"mesh setting that is no setting", func(string) client.Object {
			return meshInstance("bad-plaintext-2", func(m *mi) { m.Spec.Inbound.PlaintextFromOutsideMesh = "Permissive" })
		}, "spec.inbound.plaintextFromOutsideMesh", "Unsupported value"},
		{"member setting that is no setting", func(ns string) client.Object {
			return meshMember(ns, func(m *mm) { m.Spec.Inbound.PlaintextFromOutsideMesh = "Allow" })
		}, "spec.inbound.plaintextFromOutsideMesh", "Unsupported value"},
		{"override of port 0", func(ns string) client.Object {
			return meshMember(ns, func(m *mm) {
				m.Spec.Inbound.PortOverrides = []meshv1alpha1.InboundPortOverride{override(0, meshv1alpha1.PlaintextAccept)}
			})
		}, "spec.inbound.portOverrides[0].port", "greater than or equal to 1"},
		{"override of a port above 65535", func(ns string) client.Object {
			return meshMember(ns, func(m *mm) {
				m.Spec.Inbound.PortOverrides = []meshv1alpha1.InboundPortOverride{override(65536, meshv1alpha1.PlaintextAccept)}
			})
		}, "spec.inbound.portOverrides[0].port", "less than or equal to 65535"},
		{"two overrides of one port", func(ns string) client.Object {
			return meshMember(ns, func(m *mm) {
				m.Spec.Inbound.PortOverrides = []meshv1alpha1.InboundPortOverride{
					override(9090, meshv1alpha1.PlaintextAccept), override(9090, meshv1alpha1.PlaintextRefuse),
				}
			})
		}, "spec.inbound.portOverrides[1]", "Duplicate value"},
		{"override without a setting", func(ns string) client.Object {
			return meshMember(ns, func(m *mm) {
				m.Spec.Inbound.PortOverrides = []meshv1alpha1.InboundPortOverride{override(9090, "")}
			})
		}, "spec.inbound.portOverrides[0].plaintextFromOutsideMesh", "Unsupported value"},
		{"override of another setting", func(ns string) client.Object {
			return meshMember(ns, func(m *mm) {
				m.Spec.Inbound.PortOverrides = []meshv1alpha1.InboundPortOverride{override(9090, "Inherit")}
			})
		}, "spec.inbound.portOverrides[0].plaintextFromOutsideMesh", "Unsupported value"},
		{"more than 64 overrides", func(ns string) client.Object {
			return meshMember(ns, func(m *mm) { m.Spec.Inbound.PortOverrides = many })
		}, "spec.inbound.portOverrides", "must have at most 64 items"},
	}
	testenv.ExpectInvalid(t, env.Client, newNamespace(t), cases)
}

// TestAPIServerRejectsInvalidPlaintextStatus: the status the operator
// writes is bounded and holds real ports.
func TestAPIServerRejectsInvalidPlaintextStatus(t *testing.T) {
	ctx := context.Background()
	mm := meshMember(newNamespace(t))
	create(t, mm)
	for _, tc := range []struct {
		name   string
		status func(*meshv1alpha1.MeshMemberStatus)
		field  string
		msg    string
	}{
		{"port 0", func(s *meshv1alpha1.MeshMemberStatus) { s.PortsAcceptingPlaintext = []int32{0} },
			"status.portsAcceptingPlaintext[0]", "greater than or equal to 1"},
		{"a port twice", func(s *meshv1alpha1.MeshMemberStatus) { s.PortsAcceptingPlaintext = []int32{80, 80} },
			"status.portsAcceptingPlaintext[1]", "Duplicate value"},
		{"a setting that is no setting", func(s *meshv1alpha1.MeshMemberStatus) { s.PlaintextFromOutsideMesh = "Open" },
			"status.plaintextFromOutsideMesh", "Unsupported value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mm.DeepCopy()
			tc.status(&m.Status)
			err := env.Client.Status().Update(ctx, m)
			if err == nil {
				t.Fatal("the API server accepted the status")
			}
			testenv.AssertInvalid(t, err, tc.field, tc.msg)
		})
	}
}
