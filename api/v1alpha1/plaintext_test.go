package v1alpha1_test

import (
	"testing"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

func TestEffectivePlaintextFromOutsideMesh(t *testing.T) {
	const (
		accept = meshv1alpha1.PlaintextAccept
		refuse = meshv1alpha1.PlaintextRefuse
	)
	type mesh = meshv1alpha1.MeshInbound
	type member = meshv1alpha1.MemberInbound
	overrides := func(o ...meshv1alpha1.InboundPortOverride) []meshv1alpha1.InboundPortOverride { return o }
	port := func(p int32, s meshv1alpha1.PlaintextPolicy) meshv1alpha1.InboundPortOverride {
		return meshv1alpha1.InboundPortOverride{Port: p, PlaintextFromOutsideMesh: s}
	}
	cases := []struct {
		name   string
		mesh   mesh
		member member
		port   int32
		want   meshv1alpha1.PlaintextPolicy
		// wantSomePort is AcceptsPlaintextOnSomePort(mesh, member).
		wantSomePort bool
	}{
		{"nothing set: the default accepts", mesh{}, member{}, 8080, accept, true},
		{"the mesh refuses", mesh{PlaintextFromOutsideMesh: refuse}, member{}, 8080, refuse, false},
		{"the mesh accepts", mesh{PlaintextFromOutsideMesh: accept}, member{}, 8080, accept, true},
		{"the member refuses in a mesh that accepts",
			mesh{PlaintextFromOutsideMesh: accept}, member{PlaintextFromOutsideMesh: refuse}, 8080, refuse, false},
		{"the member accepts in a mesh that refuses",
			mesh{PlaintextFromOutsideMesh: refuse}, member{PlaintextFromOutsideMesh: accept}, 8080, accept, true},
		{"the member refuses with nothing set on the mesh",
			mesh{}, member{PlaintextFromOutsideMesh: refuse}, 8080, refuse, false},
		{"a port override accepts in a member that refuses",
			mesh{PlaintextFromOutsideMesh: accept},
			member{PlaintextFromOutsideMesh: refuse, PortOverrides: overrides(port(9090, accept))}, 9090, accept, true},
		{"another port of that member refuses",
			mesh{PlaintextFromOutsideMesh: accept},
			member{PlaintextFromOutsideMesh: refuse, PortOverrides: overrides(port(9090, accept))}, 8080, refuse, true},
		{"a port override accepts in a mesh that refuses, the member inheriting",
			mesh{PlaintextFromOutsideMesh: refuse},
			member{PortOverrides: overrides(port(15000, refuse), port(9090, accept))}, 9090, accept, true},
		{"a port override refuses in a mesh that accepts",
			mesh{PlaintextFromOutsideMesh: accept},
			member{PortOverrides: overrides(port(15000, refuse))}, 15000, refuse, true},
		{"every override refuses in a member that refuses",
			mesh{PlaintextFromOutsideMesh: accept},
			member{PlaintextFromOutsideMesh: refuse, PortOverrides: overrides(port(80, refuse))}, 80, refuse, false},
		{"port 0 asks for ports without an override",
			mesh{PlaintextFromOutsideMesh: refuse},
			member{PortOverrides: overrides(port(9090, accept))}, 0, refuse, true},
		{"an override of port 0 is no port's",
			mesh{PlaintextFromOutsideMesh: refuse},
			member{PortOverrides: overrides(port(0, accept))}, 0, refuse, false},
		{"an unknown member value inherits the mesh's",
			mesh{PlaintextFromOutsideMesh: refuse}, member{PlaintextFromOutsideMesh: "accept"}, 8080, refuse, false},
		{"an unknown mesh value is the default",
			mesh{PlaintextFromOutsideMesh: "Deny"}, member{}, 8080, accept, true},
		{"an unknown override value inherits the member's",
			mesh{PlaintextFromOutsideMesh: accept},
			member{PlaintextFromOutsideMesh: refuse, PortOverrides: overrides(port(9090, "Open"))}, 9090, refuse, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := meshv1alpha1.MeshInstanceSpec{Inbound: tc.mesh, TrafficPolicy: meshv1alpha1.TrafficPolicy{Mode: meshv1alpha1.TrafficPolicyPermissive}}
			if got := meshv1alpha1.EffectivePlaintextFromOutsideMesh(spec, tc.member, tc.port); got != tc.want {
				t.Errorf("EffectivePlaintextFromOutsideMesh(port %d) = %q, want %q", tc.port, got, tc.want)
			}
			if got := meshv1alpha1.AcceptsPlaintextOnSomePort(spec, tc.member); got != tc.wantSomePort {
				t.Errorf("AcceptsPlaintextOnSomePort = %v, want %v", got, tc.wantSomePort)
			}
		})
		// SMI denies what no policy allows: whatever the setting, only an
		// IngressBackend admits a caller outside the mesh.
		t.Run(tc.name+" (SMI)", func(t *testing.T) {
			for _, mode := range []meshv1alpha1.TrafficPolicyMode{meshv1alpha1.TrafficPolicySMI, ""} {
				spec := meshv1alpha1.MeshInstanceSpec{Inbound: tc.mesh, TrafficPolicy: meshv1alpha1.TrafficPolicy{Mode: mode}}
				if got := meshv1alpha1.EffectivePlaintextFromOutsideMesh(spec, tc.member, tc.port); got != refuse {
					t.Errorf("mode %q: EffectivePlaintextFromOutsideMesh(port %d) = %q, want %q", mode, tc.port, got, refuse)
				}
				if meshv1alpha1.AcceptsPlaintextOnSomePort(spec, tc.member) {
					t.Errorf("mode %q: AcceptsPlaintextOnSomePort = true", mode)
				}
			}
		})
	}
}
