package mesh_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
)

// TestIngressBackendIsResolved: an IngressBackend's sources become the
// addresses and principals its backends accept: a Service source's
// endpoint addresses, in a namespace outside the mesh too. A Service that
// does not exist yet is waited for, not a problem (the policy status would
// say LeftOut); a source kind a backend cannot check is a problem.
func TestIngressBackendIsResolved(t *testing.T) {
	in, err := meshtest.Decode([]byte(base + `---
apiVersion: v1
kind: Service
metadata: {name: nginx, namespace: ingress}
spec: {clusterIP: 10.96.9.1, ports: [{name: http, port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: nginx-1, namespace: ingress, labels: {kubernetes.io/service-name: nginx}}
addressType: IPv4
endpoints:
- {addresses: [10.244.9.1], targetRef: {kind: Pod, name: nginx-1, namespace: ingress}}
# Forged: the web pod's address claimed for nginx-1, an address of no pod,
# and a pod of another namespace.
- {addresses: [10.244.1.1], targetRef: {kind: Pod, name: nginx-1}}
- {addresses: [10.9.9.9]}
- {addresses: [10.244.1.1], targetRef: {kind: Pod, name: web-1, namespace: shop}}
---
apiVersion: v1
kind: Pod
metadata: {name: nginx-1, namespace: ingress}
spec: {serviceAccountName: nginx, containers: [{name: nginx, image: nginx}]}
status: {phase: Running, podIP: 10.244.9.1}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop}
spec: {initContainers: [{name: osm-envoy, image: envoy, restartPolicy: Always}], serviceAccountName: web, containers: [{name: app, image: app}]}
status: {podIP: 10.244.1.1}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.244.1.1], targetRef: {kind: Pod, name: web-1, namespace: shop}}]
---
apiVersion: policy.openservicemesh.io/v1alpha1
kind: IngressBackend
metadata: {name: ib, namespace: shop}
spec:
  backends:
  - {name: web, port: {number: 8080, protocol: http}}
  - {name: ghost, port: {number: 8080, protocol: HTTPS}}
  sources:
  - {kind: Service, name: nginx, namespace: ingress}
  - {kind: Service, name: gone, namespace: ingress}
  - {kind: IPRange, name: "::ffff:10.1.0.0/112"}
  - {kind: AuthenticatedPrincipal, name: nginx.ingress.cluster.local}
---
apiVersion: policy.openservicemesh.io/v1alpha1
kind: IngressBackend
metadata: {name: principals-only, namespace: shop}
spec:
  backends: [{name: web, port: {number: 9090, protocol: http}}]
  sources: [{kind: AuthenticatedPrincipal, name: nginx.ingress.cluster.local}]
`))
	if err != nil {
		t.Fatal(err)
	}
	m, problems := mesh.Build(in)
	if len(m.IngressBackends) != 2 {
		t.Fatalf("%d IngressBackends in the model, want 2", len(m.IngressBackends))
	}
	ib := m.IngressBackends[0]
	want := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("10.244.9.1/32")}
	if ib.Name != "ib" || ib.AnyAddress || !slices.Equal(ib.Addresses, want) {
		t.Errorf("IngressBackend %s: addresses %v (any %v), want %v", ib.Name, ib.Addresses, ib.AnyAddress, want)
	}
	if !slices.Equal(ib.Principals, []string{"nginx.ingress.cluster.local"}) {
		t.Errorf("principals %v", ib.Principals)
	}
	if len(ib.Targets) != 2 || ib.Targets[0].Service.Name != "ghost" || !ib.Targets[0].TLS || ib.Targets[1].TLS {
		t.Errorf("targets %+v: want ghost over https (HTTPS in any case), web over http", ib.Targets)
	}
	// Each part says, in spec order, whether it resolved: ghost and gone do
	// not exist yet, which is no problem but allows nothing.
	parts := func(ps []mesh.PartState) (out []string) {
		for _, p := range ps {
			out = append(out, fmt.Sprintf("%s %v", p.Name, p.Resolved))
		}
		return out
	}
	if got, want := parts(ib.Backends), []string{"web true", "ghost false"}; !slices.Equal(got, want) {
		t.Errorf("backends %v, want %v: %+v", got, want, ib.Backends)
	}
	if got, want := parts(ib.Sources), []string{"ingress/nginx true", "ingress/gone false", "::ffff:10.1.0.0/112 true", "nginx.ingress.cluster.local true"}; !slices.Equal(got, want) {
		t.Errorf("sources %v, want %v: %+v", got, want, ib.Sources)
	}
	if msg := ib.Sources[0].Message; !strings.Contains(msg, "1 endpoint addresses; 3 left out") {
		t.Errorf("source nginx: %q, want its one address and the three forged ones left out", msg)
	}
	if msg := ib.Sources[1].Message; !strings.Contains(msg, "does not exist") {
		t.Errorf("source gone: %q, want it said not to exist", msg)
	}
	if p := m.IngressBackends[1].Sources[0]; p.Resolved || !strings.Contains(p.Message, "nothing checks") {
		t.Errorf("principals-only's principal: %+v, want unresolved: no https backend checks it", p)
	}
	var got []string
	for _, p := range problems {
		got = append(got, p.Error())
	}
	if len(got) != 1 || !strings.Contains(got[0], "IngressBackend shop/principals-only") || !strings.Contains(got[0], "checks callers by address only") {
		t.Errorf("problems %q, want one for principals-only", got)
	}
}

// TestPlaintextFromOutsideMesh: the mesh reads the API's rule per
// namespace and port: a MeshMember's port override, its setting, the
// mesh's; an IngressBackend on the port decides instead.
func TestPlaintextFromOutsideMesh(t *testing.T) {
	in, err := meshtest.Decode([]byte(`
apiVersion: mesh.openservicemesh.io/v1alpha1
kind: MeshInstance
metadata: {name: osm}
spec: {trafficPolicy: {mode: Permissive}, inbound: {plaintextFromOutsideMesh: Refuse}}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: mesh.openservicemesh.io/v1alpha1
kind: MeshMember
metadata: {name: osm, namespace: shop}
spec:
  mesh: osm
  inbound:
    plaintextFromOutsideMesh: Accept
    portOverrides: [{port: 9000, plaintextFromOutsideMesh: Refuse}]
---
apiVersion: v1
kind: Namespace
metadata: {name: other, labels: {openservicemesh.io/monitor: osm}}
`))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := mesh.Build(in)
	for _, c := range []struct {
		ns   string
		port int32
		want bool
	}{{"shop", 8080, true}, {"shop", 9000, false}, {"other", 8080, false}} {
		if got := m.PlaintextFromOutsideMesh(c.ns, c.port); got != c.want {
			t.Errorf("%s port %d accepts plaintext: %v, want %v", c.ns, c.port, got, c.want)
		}
	}
	// In SMI mode no setting lets a caller outside the mesh in: it has no
	// identity a TrafficTarget could name.
	in.Mesh.Spec.TrafficPolicy.Mode = meshv1alpha1.TrafficPolicySMI
	m, _ = mesh.Build(in)
	if m.PlaintextFromOutsideMesh("shop", 8080) {
		t.Error("an SMI mesh accepts plaintext on shop port 8080 by the setting")
	}
}

// TestIngressBackendTLSIsCheckedAsWritten: an https backend that skips
// client certificate validation cannot check principals, so without a
// Service or IPRange source it would let every caller in: it lets nobody in
// and says why. An SNI host is a DNS name or a whole-label wildcard
// (*.example.com); "*foo.com" would match evilfoo.com, so it is refused
// (the API server refuses it too; this guards objects stored before).
func TestIngressBackendTLSIsCheckedAsWritten(t *testing.T) {
	in, err := meshtest.Decode([]byte(base + `---
apiVersion: policy.openservicemesh.io/v1alpha1
kind: IngressBackend
metadata: {name: skip-principals, namespace: shop}
spec:
  backends: [{name: web, port: {number: 8443, protocol: https}, tls: {skipClientCertValidation: true}}]
  sources: [{kind: AuthenticatedPrincipal, name: nginx.ingress.cluster.local}]
---
apiVersion: policy.openservicemesh.io/v1alpha1
kind: IngressBackend
metadata: {name: partial-wildcard, namespace: shop}
spec:
  backends: [{name: web, port: {number: 9443, protocol: https}, tls: {sniHosts: ["*foo.com", "*.bar.com"]}}]
  sources: [{kind: AuthenticatedPrincipal, name: nginx.ingress.cluster.local}]
`))
	if err != nil {
		t.Fatal(err)
	}
	m, problems := mesh.Build(in)
	var got []string
	for _, p := range problems {
		got = append(got, p.Error())
	}
	for _, want := range []string{"skip-principals", "partial-wildcard"} {
		if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, "IngressBackend shop/"+want) }) {
			t.Errorf("no problem for %s: %q", want, got)
		}
	}
	for _, ib := range m.IngressBackends {
		for _, tg := range ib.Targets {
			if !ib.AllowsNothing(tg) {
				t.Errorf("%s port %d lets callers in", ib.Name, tg.Port)
			}
		}
	}
	for host, want := range map[string]string{"*.bar.com": ".bar.com", "*foo.com": "", "bar.com": "", "*": ""} {
		if got := mesh.WildcardSuffix(host); got != want {
			t.Errorf("WildcardSuffix(%q) = %q, want %q", host, got, want)
		}
	}
}
