package mesh

import (
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// Observability is what the proxies of a namespace report beyond their
// Prometheus stats: the MeshInstance's spec.observability with the
// namespace's MeshMember's over it (the API's EffectiveObservability). A
// MeshVM follows its namespace's, as for plaintext.
type Observability struct {
	// AccessLog writes a JSON access log to the proxy's standard output.
	AccessLog bool
	// Tracing, when set, reports spans to an OpenTelemetry collector.
	Tracing *Tracing
	// IdentityLabels puts the mesh's identities in the proxies' stat names,
	// for the bootstrap's tag extractors to make labels of.
	IdentityLabels bool
}

// Tracing is where a proxy's spans go and how many requests it samples.
type Tracing struct {
	// Collector is the collector's Service, reached by its cluster DNS
	// name (Mesh.FQDN) at Port.
	Collector ServiceKey
	Port      int32
	// SamplingPercent is the share of requests, 0 to 100, a proxy starts
	// a trace for when the request carries no decision.
	SamplingPercent float64
}

// Key is a short string that tells apart two Observability values that
// make different resources: resources shared between groups (translate's
// Shared) are keyed by it.
func (o Observability) Key() string {
	k := ""
	if o.AccessLog {
		k += "log;"
	}
	if t := o.Tracing; t != nil {
		k += "trace=" + t.Collector.String() + ":" + strconv.Itoa(int(t.Port)) + "@" + strconv.FormatFloat(t.SamplingPercent, 'g', -1, 64) + ";"
	}
	if o.IdentityLabels {
		k += "labels;"
	}
	return k
}

// Observability is what the proxies of namespace report.
func (m *Mesh) Observability(namespace string) Observability {
	if o, ok := m.observability[namespace]; ok {
		return o
	}
	return m.meshObservability
}

// collectObservability resolves the mesh's observability settings and
// each MeshMember's over them. Tracing without a collector (a MeshMember
// turning it on in a mesh that names none) stays off, and is reported.
func (b *builder) collectObservability() {
	b.m.observability = map[string]Observability{}
	b.m.meshObservability = b.observability("MeshInstance", b.in.Mesh, meshv1alpha1.Observability{}, true)
	for _, mm := range b.in.Members {
		if mm.Spec.Mesh != b.m.Name || mm.DeletionTimestamp != nil {
			continue
		}
		if _, member := b.members[mm.Namespace]; !member {
			continue
		}
		own := mm.Spec.Observability.Tracing != nil && mm.Spec.Observability.Tracing.Mode == meshv1alpha1.TracingOpenTelemetry
		b.m.observability[mm.Namespace] = b.observability("MeshMember", mm, mm.Spec.Observability, own)
	}
}

// observability is the effective setting of member over the mesh's. A
// tracing setting without a collector is reported on obj, of kind, when
// report says that obj turned tracing on itself (a member inheriting it
// from a mesh that names no collector leaves the report to the mesh).
func (b *builder) observability(kind string, obj metav1.Object, member meshv1alpha1.Observability, report bool) Observability {
	eff := meshv1alpha1.EffectiveObservability(b.in.Mesh.Spec.Observability, member)
	out := Observability{
		AccessLog:      eff.AccessLog.Mode == meshv1alpha1.AccessLogJSON,
		IdentityLabels: *eff.Metrics.IdentityLabels,
	}
	if t := eff.Tracing; t.Mode == meshv1alpha1.TracingOpenTelemetry {
		if t.Collector == nil {
			if !report {
				return out
			}
			b.problem(kind, obj, "spec.observability.tracing is OpenTelemetry, but neither it nor the mesh names a collector: the proxies report no span")
			return out
		}
		pct, _ := meshv1alpha1.SamplingPercentValue(t.SamplingPercent)
		out.Tracing = &Tracing{
			Collector:       ServiceKey{Namespace: t.Collector.Namespace, Name: t.Collector.Name},
			Port:            t.Collector.Port,
			SamplingPercent: pct,
		}
	}
	return out
}
