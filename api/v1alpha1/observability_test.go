package v1alpha1_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// A member overrides the mesh field by field; what neither sets takes the
// defaults (everything off, 1% sampling, W3C Trace Context, port 4317).
func TestEffectiveObservability(t *testing.T) {
	type o = meshv1alpha1.Observability
	collector := &meshv1alpha1.TraceCollector{Name: "otel", Namespace: "observability", Port: 4317}
	on := o{
		AccessLog: &meshv1alpha1.AccessLog{Mode: meshv1alpha1.AccessLogJSON},
		Tracing:   &meshv1alpha1.Tracing{Mode: meshv1alpha1.TracingOpenTelemetry, Collector: collector, SamplingPercent: "10"},
		Metrics:   &meshv1alpha1.Metrics{IdentityLabels: ptr.To(true)},
	}
	want := func(log meshv1alpha1.AccessLogMode, mode meshv1alpha1.TracingMode, c *meshv1alpha1.TraceCollector, pct string, labels bool) o {
		return o{
			AccessLog: &meshv1alpha1.AccessLog{Mode: log},
			Tracing:   &meshv1alpha1.Tracing{Mode: mode, Collector: c, SamplingPercent: pct, Propagation: meshv1alpha1.TracePropagationW3C},
			Metrics:   &meshv1alpha1.Metrics{IdentityLabels: ptr.To(labels)},
		}
	}
	for _, c := range []struct {
		name         string
		mesh, member o
		want         o
	}{
		{"nothing set: all off", o{}, o{}, want("Off", "Off", nil, "1", false)},
		{"the mesh's settings", on, o{}, want("JSON", "OpenTelemetry", collector, "10", true)},
		{"a member turns it all off", on, o{
			AccessLog: &meshv1alpha1.AccessLog{Mode: meshv1alpha1.AccessLogOff},
			Tracing:   &meshv1alpha1.Tracing{Mode: meshv1alpha1.TracingOff},
			Metrics:   &meshv1alpha1.Metrics{IdentityLabels: ptr.To(false)},
		}, want("Off", "Off", collector, "10", false)},
		{"a member samples more, the rest follows the mesh", on, o{Tracing: &meshv1alpha1.Tracing{SamplingPercent: "100"}},
			want("JSON", "OpenTelemetry", collector, "100", true)},
		{"a member's collector, without a port", on, o{Tracing: &meshv1alpha1.Tracing{Collector: &meshv1alpha1.TraceCollector{Name: "own", Namespace: "team"}}},
			want("JSON", "OpenTelemetry", &meshv1alpha1.TraceCollector{Name: "own", Namespace: "team", Port: 4317}, "10", true)},
		{"a member turns tracing on in a mesh without a collector", o{}, o{Tracing: &meshv1alpha1.Tracing{Mode: meshv1alpha1.TracingOpenTelemetry}},
			want("Off", "OpenTelemetry", nil, "1", false)},
		{"values the API server refuses count as unset", on, o{
			AccessLog: &meshv1alpha1.AccessLog{Mode: "Text"},
			Tracing:   &meshv1alpha1.Tracing{Mode: "Zipkin", SamplingPercent: "200", Propagation: "B3"},
		}, want("JSON", "OpenTelemetry", collector, "10", true)},
	} {
		if d := cmp.Diff(c.want, meshv1alpha1.EffectiveObservability(c.mesh, c.member)); d != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, d)
		}
	}
}

// TestAPIServerKeepsObservability writes every observability field of a
// MeshInstance and a MeshMember and reads them back, the collector's port
// defaulted; a MeshMember may turn tracing on without a collector (it
// takes the mesh's).
func TestAPIServerKeepsObservability(t *testing.T) {
	ctx := context.Background()
	spec := meshv1alpha1.Observability{
		AccessLog: &meshv1alpha1.AccessLog{Mode: meshv1alpha1.AccessLogJSON},
		Tracing: &meshv1alpha1.Tracing{
			Mode:            meshv1alpha1.TracingOpenTelemetry,
			Collector:       &meshv1alpha1.TraceCollector{Name: "otel-collector", Namespace: "observability"},
			SamplingPercent: "0.5",
			Propagation:     meshv1alpha1.TracePropagationW3C,
		},
		Metrics: &meshv1alpha1.Metrics{IdentityLabels: ptr.To(true)},
	}
	mi := meshInstance("observed", func(m *meshv1alpha1.MeshInstance) { m.Spec.Observability = spec })
	create(t, mi)
	got := &meshv1alpha1.MeshInstance{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(mi), got); err != nil {
		t.Fatal(err)
	}
	want := *spec.DeepCopy()
	want.Tracing.Collector.Port = meshv1alpha1.DefaultCollectorPort
	if d := cmp.Diff(want, got.Spec.Observability); d != "" {
		t.Errorf("MeshInstance spec.observability read back changed (-want +read):\n%s", d)
	}

	member := meshv1alpha1.Observability{
		AccessLog: &meshv1alpha1.AccessLog{Mode: meshv1alpha1.AccessLogOff},
		Tracing:   &meshv1alpha1.Tracing{Mode: meshv1alpha1.TracingOpenTelemetry, SamplingPercent: "100"},
		Metrics:   &meshv1alpha1.Metrics{IdentityLabels: ptr.To(false)},
	}
	mm := meshMember(newNamespace(t), func(m *meshv1alpha1.MeshMember) { m.Spec.Observability = member })
	create(t, mm)
	gotMM := &meshv1alpha1.MeshMember{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(mm), gotMM); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(member, gotMM.Spec.Observability); d != "" {
		t.Errorf("MeshMember spec.observability read back changed (-wrote +read):\n%s", d)
	}
}
