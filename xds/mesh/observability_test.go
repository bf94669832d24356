package mesh_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
)

// A namespace's proxies report what the mesh says, with its MeshMember's
// settings over it field by field; a namespace in the mesh by its label
// alone has the mesh's; tracing without a collector stays off, reported on
// the member that turned it on.
func TestObservabilityByNamespace(t *testing.T) {
	in, err := meshtest.Decode([]byte(`
apiVersion: mesh.openservicemesh.io/v1alpha1
kind: MeshInstance
metadata: {name: osm}
spec:
  observability:
    accessLog: {mode: JSON}
    tracing: {mode: OpenTelemetry, collector: {name: otel, namespace: observability}, samplingPercent: "2.5"}
---
apiVersion: v1
kind: Namespace
metadata: {name: labelled, labels: {openservicemesh.io/monitor: osm}}
---
apiVersion: v1
kind: Namespace
metadata: {name: quiet}
---
apiVersion: mesh.openservicemesh.io/v1alpha1
kind: MeshMember
metadata: {name: osm, namespace: quiet}
spec: {mesh: osm, observability: {accessLog: {mode: "Off"}, tracing: {mode: "Off"}}}
---
apiVersion: v1
kind: Namespace
metadata: {name: counted}
---
apiVersion: mesh.openservicemesh.io/v1alpha1
kind: MeshMember
metadata: {name: osm, namespace: counted}
spec: {mesh: osm, observability: {metrics: {identityLabels: true}, tracing: {collector: {name: own, namespace: counted, port: 4318}}}}
`))
	if err != nil {
		t.Fatal(err)
	}
	m, problems := mesh.Build(in)
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	meshTracing := &mesh.Tracing{Collector: mesh.ServiceKey{Namespace: "observability", Name: "otel"}, Port: 4317, SamplingPercent: 2.5}
	for ns, want := range map[string]mesh.Observability{
		"labelled":  {AccessLog: true, Tracing: meshTracing},
		"elsewhere": {AccessLog: true, Tracing: meshTracing}, // a VM's namespace without a member
		"quiet":     {},
		"counted":   {AccessLog: true, IdentityLabels: true, Tracing: &mesh.Tracing{Collector: mesh.ServiceKey{Namespace: "counted", Name: "own"}, Port: 4318, SamplingPercent: 2.5}},
	} {
		if d := cmp.Diff(want, m.Observability(ns)); d != "" {
			t.Errorf("%s (-want +got):\n%s", ns, d)
		}
	}
	if m.Observability("quiet").Key() == m.Observability("labelled").Key() || m.Observability("labelled").Key() != m.Observability("elsewhere").Key() {
		t.Error("keys do not tell the settings apart")
	}

	// A member turning tracing on in a mesh that names no collector.
	in.Mesh.Spec.Observability.Tracing = nil
	in.Members[0].Spec.Observability.Tracing.Mode = "OpenTelemetry"
	m, problems = mesh.Build(in)
	if got := m.Observability("quiet"); got.Tracing != nil {
		t.Errorf("tracing without a collector: %+v", got.Tracing)
	}
	if len(problems) != 1 || !strings.Contains(problems[0].Error(), "MeshMember quiet/osm: spec.observability.tracing is OpenTelemetry, but neither it nor the mesh names a collector") {
		t.Errorf("problems %v, want one on MeshMember quiet/osm", problems)
	}
}
