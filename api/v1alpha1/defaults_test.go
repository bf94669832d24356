package v1alpha1_test

import (
	"context"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// TestAPIServerDefaultsAnEmptyMeshInstance checks that `kind: MeshInstance`
// with a name and nothing else becomes a secure, complete mesh spec.
func TestAPIServerDefaultsAnEmptyMeshInstance(t *testing.T) {
	m := meshInstance("defaults")
	create(t, m)
	got := &meshv1alpha1.MeshInstance{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(m), got); err != nil {
		t.Fatal(err)
	}
	s := got.Spec
	for _, c := range []struct{ name, got, want string }{
		{"trustDomain", s.TrustDomain, "cluster.local"},
		{"trafficPolicy.mode", string(s.TrafficPolicy.Mode), "SMI"},
		{"egress.mode", string(s.Egress.Mode), "Deny"},
		{"certificates.duration", s.Certificates.Duration, "24h"},
		{"certificates.renewBefore", s.Certificates.RenewBefore, "8h"},
		{"certificates.privateKey.algorithm", string(s.Certificates.PrivateKey.Algorithm), "ECDSA"},
		{"sidecar.logLevel", string(s.Sidecar.LogLevel), "error"},
		// An existing cluster adopts the mesh without cutting anyone off.
		{"inbound.plaintextFromOutsideMesh", string(s.Inbound.PlaintextFromOutsideMesh), "Accept"},
	} {
		if c.got != c.want {
			t.Errorf("spec.%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	// The operator, not the CRD, defaults the sidecar's image: a default in
	// every spec would keep existing meshes on an old Envoy through an
	// operator upgrade.
	if s.Sidecar.Image != "" {
		t.Errorf("spec.sidecar.image = %q, want it empty: the operator's --sidecar-image applies", s.Sidecar.Image)
	}
	if s.XDS.Port != 15128 {
		t.Errorf("spec.xds.port = %d, want 15128", s.XDS.Port)
	}
	if s.Certificates.IssuerRef != nil {
		t.Errorf("spec.certificates.issuerRef = %+v, want none (self-signed bootstrap)", s.Certificates.IssuerRef)
	}
}

func TestAPIServerDefaultsMemberAndVM(t *testing.T) {
	ns := newNamespace(t)
	mm := meshMember(ns)
	create(t, mm)
	if mm.Spec.Injection != meshv1alpha1.InjectionEnabled {
		t.Errorf("MeshMember spec.injection = %q, want Enabled", mm.Spec.Injection)
	}
	// Unset inherits the mesh's setting, and follows it when it changes: a
	// default here would freeze the mesh's default into every member.
	if got := mm.Spec.Inbound; got.PlaintextFromOutsideMesh != "" || got.PortOverrides != nil {
		t.Errorf("MeshMember spec.inbound = %+v, want it unset: the mesh's setting applies", got)
	}
	vm := meshVM(ns, func(v *meshv1alpha1.MeshVM) { v.Spec.Ports[0].Protocol = "" })
	create(t, vm)
	if vm.Spec.Ports[0].Protocol != meshv1alpha1.ProtocolTCP {
		t.Errorf("MeshVM spec.ports[0].protocol = %q, want TCP", vm.Spec.Ports[0].Protocol)
	}
	if vm.Spec.Proxy != meshv1alpha1.ProxyEnvoy {
		t.Errorf("MeshVM spec.proxy = %q, want Envoy", vm.Spec.Proxy)
	}
}

// An issuerRef that names only a name names a ClusterIssuer, the one kind
// that works: `issuerRef: {name: corp-ca}` defaulted to Issuer and stalled.
func TestAPIServerDefaultsTheIssuerKind(t *testing.T) {
	m := meshInstance("named-issuer")
	m.Spec.Certificates.IssuerRef = &meshv1alpha1.IssuerReference{Name: "corp-ca"}
	create(t, m)
	got := &meshv1alpha1.MeshInstance{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(m), got); err != nil {
		t.Fatal(err)
	}
	if ref := got.Spec.Certificates.IssuerRef; ref == nil || ref.Kind != "ClusterIssuer" || ref.Group != "cert-manager.io" {
		t.Errorf("spec.certificates.issuerRef = %+v, want kind ClusterIssuer of cert-manager.io", ref)
	}
}
