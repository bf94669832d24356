package v1alpha1

import (
	"strconv"
)

// AccessLogMode says whether the proxies of the mesh write access logs.
// +kubebuilder:validation:Enum=Off;JSON
type AccessLogMode string

const (
	// AccessLogOff writes no access log (the default).
	AccessLogOff AccessLogMode = "Off"
	// AccessLogJSON writes a JSON line per request (per connection for TCP)
	// to the proxy's standard output, which the container runtime keeps as
	// the osm-envoy container's log.
	AccessLogJSON AccessLogMode = "JSON"
)

// TracingMode says whether the proxies of the mesh report traces.
// +kubebuilder:validation:Enum=Off;OpenTelemetry
type TracingMode string

const (
	// TracingOff reports no span (the default).
	TracingOff TracingMode = "Off"
	// TracingOpenTelemetry reports spans over OTLP/gRPC to a collector.
	TracingOpenTelemetry TracingMode = "OpenTelemetry"
)

// TracePropagation is the trace context format proxies read from and write
// to requests. Envoy's OpenTelemetry tracer reads and writes W3C Trace
// Context (traceparent and tracestate) and no other format.
// +kubebuilder:validation:Enum=W3CTraceContext
type TracePropagation string

// TracePropagationW3C is W3C Trace Context: the traceparent and tracestate
// headers.
const TracePropagationW3C TracePropagation = "W3CTraceContext"

// DefaultSamplingPercent is the share of requests a proxy starts a trace
// for when tracing is on and no samplingPercent is set. Envoy's own default
// (100%) would trace every request of the mesh.
const DefaultSamplingPercent = "1"

// DefaultCollectorPort is OTLP/gRPC's port.
const DefaultCollectorPort = 4317

// Observability is what the proxies of a mesh report beyond Envoy's
// Prometheus stats, which they always expose. On a MeshInstance, what is
// unset is off; a MeshMember's settings override the mesh's field by field
// for the proxies of its namespace, and what it leaves unset follows the
// mesh's.
type Observability struct {
	// accessLog turns the proxies' access logs on or off.
	// +optional
	AccessLog *AccessLog `json:"accessLog,omitempty"`

	// tracing turns span reporting on or off, and says where spans go and
	// how many requests are sampled.
	// +optional
	Tracing *Tracing `json:"tracing,omitempty"`

	// metrics adds the mesh's identities to the proxies' Prometheus stats.
	// +optional
	Metrics *Metrics `json:"metrics,omitempty"`
}

// AccessLog configures the proxies' access logs.
type AccessLog struct {
	// mode is Off or JSON: a JSON object a line on the proxy's standard
	// output for every request of an HTTP port and every connection of a
	// TCP port, inbound, outbound and egress, with the start time, method,
	// path (before any rewrite), response code and flags, duration, the
	// upstream cluster and host, the SPIFFE IDs of both peers and the RBAC
	// policy that decided. Unset on a MeshMember follows the mesh.
	// +optional
	Mode AccessLogMode `json:"mode,omitempty"`
}

// Tracing configures the proxies' spans.
type Tracing struct {
	// mode is Off or OpenTelemetry. Unset on a MeshMember follows the mesh.
	// +optional
	Mode TracingMode `json:"mode,omitempty"`

	// collector is the OpenTelemetry collector proxies send spans to, over
	// OTLP/gRPC in plaintext. A MeshMember that sets it replaces the whole
	// collector.
	// +optional
	Collector *TraceCollector `json:"collector,omitempty"`

	// samplingPercent is the share of requests, from 0 to 100 with up to
	// two decimals ("1", "0.05", "100": Envoy counts in hundredths of a
	// percent), for which the first proxy a request meets starts a trace
	// (1 when unset on the mesh); proxies further on follow the decision
	// the request carries.
	// +kubebuilder:validation:MaxLength=6
	// +kubebuilder:validation:Pattern=`^(100(\.0{1,2})?|[0-9]{1,2}(\.[0-9]{1,2})?)$`
	// +optional
	SamplingPercent string `json:"samplingPercent,omitempty"`

	// propagation is the trace context format read from and written to
	// requests: W3CTraceContext (traceparent and tracestate), the only
	// one Envoy's OpenTelemetry tracer speaks, and the default.
	// +optional
	Propagation TracePropagation `json:"propagation,omitempty"`
}

// TraceCollector is a Service of an OpenTelemetry collector.
type TraceCollector struct {
	// name of the collector's Service.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// namespace of the collector's Service.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace"`

	// port of the Service where the collector takes OTLP over gRPC.
	// +kubebuilder:default=4317
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`
}

// Metrics configures the proxies' Prometheus stats.
type Metrics struct {
	// identityLabels adds the mesh's identities (namespace/serviceaccount)
	// to the proxies' stats, as the Prometheus labels osm_source and
	// osm_destination: a proxy's outbound listener stats carry its own
	// identity as the source, its outbound cluster stats the identities of
	// the destination's endpoints, and its inbound listener, connection
	// manager, TCP proxy and local cluster stats its own identity as the
	// destination. The source of an inbound request is not a stat of
	// Envoy's; the access log has it. Unset on a MeshMember follows the
	// mesh; off by default.
	// +optional
	IdentityLabels *bool `json:"identityLabels,omitempty"`
}

// EffectiveObservability is the one home of the rule merging a mesh's
// observability settings with a member's: each field the member sets wins,
// the others are the mesh's, and what neither sets takes its default (off,
// a sampling of DefaultSamplingPercent, W3C Trace Context, port
// DefaultCollectorPort). A namespace in the mesh by its label alone passes
// a zero member. Values the API server refuses (only code builds them)
// count as unset.
func EffectiveObservability(mesh, member Observability) Observability {
	out := Observability{
		AccessLog: &AccessLog{Mode: AccessLogOff},
		Tracing:   &Tracing{Mode: TracingOff, SamplingPercent: DefaultSamplingPercent, Propagation: TracePropagationW3C},
		Metrics:   &Metrics{IdentityLabels: new(bool)},
	}
	for _, o := range []Observability{mesh, member} {
		if a := o.AccessLog; a != nil && (a.Mode == AccessLogOff || a.Mode == AccessLogJSON) {
			out.AccessLog.Mode = a.Mode
		}
		if t := o.Tracing; t != nil {
			if t.Mode == TracingOff || t.Mode == TracingOpenTelemetry {
				out.Tracing.Mode = t.Mode
			}
			if t.Collector != nil {
				c := *t.Collector
				if c.Port == 0 {
					c.Port = DefaultCollectorPort
				}
				out.Tracing.Collector = &c
			}
			if _, ok := SamplingPercentValue(t.SamplingPercent); ok {
				out.Tracing.SamplingPercent = t.SamplingPercent
			}
			if t.Propagation == TracePropagationW3C {
				out.Tracing.Propagation = t.Propagation
			}
		}
		if m := o.Metrics; m != nil && m.IdentityLabels != nil {
			v := *m.IdentityLabels
			out.Metrics.IdentityLabels = &v
		}
	}
	return out
}

// SamplingPercentValue is the percentage a samplingPercent spells, and
// whether it spells one from 0 to 100.
func SamplingPercentValue(s string) (float64, bool) {
	if s == "" {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v > 100 {
		return 0, false
	}
	return v, true
}
