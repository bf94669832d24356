package translate

import (
	"strconv"
	"strings"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/tracers/opentelemetry/resource_detectors/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// Observability (access logs, tracing, identities in stat names) follows
// the group's namespace (mesh.Mesh.Observability). Resources shared between
// groups that carry it are keyed by what of it they carry (chainKey,
// clusterKey): groups of namespaces with the same settings still share them.

// Extension names of what observability adds.
const (
	stdoutAccessLog = "envoy.access_loggers.stdout"
	openTelemetry   = "envoy.tracers.opentelemetry"
	envDetector     = "envoy.tracers.opentelemetry.resource_detectors.environment"
)

// TracingServiceName is the OpenTelemetry service.name of a proxy's spans
// when its environment gives none: an injected sidecar's
// OTEL_RESOURCE_ATTRIBUTES names its workload (webhooks/inject), which the
// environment resource detector reads and which wins over this.
const TracingServiceName = "osm-proxy"

// TracingClusterName names the cluster of an OpenTelemetry collector. No
// other cluster name starts with "tracing|".
func TracingClusterName(k mesh.ServiceKey, port int32) string {
	return "tracing|" + k.String() + "|" + strconv.Itoa(int(port))
}

// Identities in stat names: a stat prefix (an HTTP connection manager's or
// TCP proxy's), a listener's stat prefix or a cluster's alt_stat_name is the
// usual name and "~src=<identity>" or "~dst=<identity>". Envoy's default tag
// extractors make the whole token a label (envoy_cluster_name,
// envoy_http_conn_manager_prefix, envoy_tcp_prefix, envoy_listener_address:
// source/common/config/well_known_names.cc), so metric names stay the same
// for proxies whose bootstrap predates bootstrap.StatsConfig; its tag
// extractors make osm_source and osm_destination of the suffix and strip it
// from those labels. A token holds no ".", Envoy's stat name separator: a
// service account's dots become "_", which no Kubernetes name holds.
const (
	StatSourceTag      = "~src="
	StatDestinationTag = "~dst="
)

// StatIdentity is id as a stat name holds it: namespace/serviceaccount.
func StatIdentity(id mesh.Identity) string {
	return id.Namespace + "/" + strings.ReplaceAll(id.ServiceAccount, ".", "_")
}

// obs is what the group's proxies report.
func (t *translator) obs() mesh.Observability {
	return t.view.Mesh.Observability(t.view.Group.Identity.Namespace)
}

// ownStat is the suffix of the stat names of the group's own identity as
// tag (StatSourceTag, StatDestinationTag), or "" without identity labels.
func (t *translator) ownStat(tag string) string {
	if !t.obs().IdentityLabels {
		return ""
	}
	return tag + StatIdentity(t.view.Group.Identity)
}

// destinationStat is the alt_stat_name of the cluster name of a service
// port with identity labels: the identities its mutual TLS accepts (its
// endpoints' with a proxy); "" without identity labels or identities.
func (t *translator) destinationStat(name string, s *mesh.Service) string {
	if !t.obs().IdentityLabels || len(s.PeerIdentities) == 0 {
		return ""
	}
	ids := make([]string, len(s.PeerIdentities))
	for i, id := range s.PeerIdentities {
		ids[i] = StatIdentity(id)
	}
	return name + StatDestinationTag + strings.Join(ids, "+")
}

// chainKey tells apart the shared chains of groups whose observability
// differs in what a chain carries: access logs, and tracing for HTTP.
func (t *translator) chainKey(http bool) string {
	o := t.obs()
	k := mesh.Observability{AccessLog: o.AccessLog}
	if http {
		k.Tracing = o.Tracing
	}
	return k.Key()
}

// clusterKey tells apart the shared clusters of groups with and without
// identity labels.
func (t *translator) clusterKey() string {
	if t.obs().IdentityLabels {
		return "labels"
	}
	return ""
}

// sharedKeyed is sharedResource for a resource of a service port that also
// depends on name (chainKey, clusterKey).
func sharedKeyed[T proto.Message](t *translator, kind string, s *mesh.Service, port int32, name string, build func(*translator) T) T {
	m, err := t.shared.getKey(sharedKey{kind: kind, svc: s, port: port, name: name}, func(bt *translator) proto.Message { return build(bt) }, t.view)
	if err != nil && t.err == nil {
		t.err = err
	}
	out, _ := m.(T)
	return out
}

// observe adds the group's access log and tracing to an HTTP connection
// manager of mesh traffic; rbacPrefix is the rules_stat_prefix of its RBAC
// filter, when it has one, under which Envoy records the decision.
func (t *translator) observe(hcm *hcmv3.HttpConnectionManager, rbacPrefix *string) *hcmv3.HttpConnectionManager {
	o := t.obs()
	if o.AccessLog {
		hcm.AccessLog = []*accesslogv3.AccessLog{t.accessLog(httpLogFormat(rbacPrefix))}
	}
	if tr := o.Tracing; tr != nil {
		hcm.Tracing = t.tracing(tr)
	}
	return hcm
}

// tcpAccessLog is a TCP proxy's access log, nil when off; rbac says that
// its chain has an RBAC filter (with shadow rules: see networkRBACFilter).
func (t *translator) tcpAccessLog(rbac bool) []*accesslogv3.AccessLog {
	if !t.obs().AccessLog {
		return nil
	}
	return []*accesslogv3.AccessLog{t.accessLog(tcpLogFormat(rbac))}
}

// accessLog writes format as JSON, a line per entry, to the proxy's
// standard output.
func (t *translator) accessLog(format *structpb.Struct) *accesslogv3.AccessLog {
	return &accesslogv3.AccessLog{
		Name: stdoutAccessLog,
		ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: t.any(&streamv3.StdoutAccessLog{
			AccessLogFormat: &streamv3.StdoutAccessLog_LogFormat{LogFormat: &corev3.SubstitutionFormatString{
				Format: &corev3.SubstitutionFormatString_JsonFormat{JsonFormat: format},
			}},
		})},
	}
}

// Dynamic metadata of the RBAC filters. The HTTP filter records its
// enforced decision under its rules_stat_prefix followed by these keys
// (source/extensions/filters/http/rbac/rbac_filter.cc); the network filter
// records only the decision of its shadow rules, under the shadow rules'
// stat prefix (empty here) and the shadow keys
// (source/extensions/filters/network/rbac/rbac_filter.cc).
const (
	httpRBACNamespace    = "envoy.filters.http.rbac"
	networkRBACNamespace = "envoy.filters.network.rbac"
)

// logFields are the command operators every access log has
// (source/common/formatter/stream_info_formatter.cc): a connection's or a
// request's start, the chain that took it (its name says the direction and
// the destination: in|, out|, egress|, passthrough), duration, response
// flags, bytes, the upstream cluster (its name, not a labelled
// alt_stat_name) and host, and both peers' SPIFFE IDs.
func logFields() map[string]string {
	return map[string]string{
		"start_time":                "%START_TIME%",
		"filter_chain":              "%FILTER_CHAIN_NAME%",
		"duration_ms":               "%DURATION%",
		"response_flags":            "%RESPONSE_FLAGS%",
		"bytes_received":            "%BYTES_RECEIVED%",
		"bytes_sent":                "%BYTES_SENT%",
		"upstream_cluster":          "%UPSTREAM_CLUSTER_RAW%",
		"upstream_host":             "%UPSTREAM_HOST%",
		"downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
		"downstream_peer_uri_san":   "%DOWNSTREAM_PEER_URI_SAN%",
		"upstream_peer_uri_san":     "%UPSTREAM_PEER_URI_SAN%",
	}
}

// httpLogFormat adds the request's fields (source/common/formatter/
// http_specific_formatter.cc): method, the path as the caller sent it
// (x-envoy-original-path, which Envoy sets when a route rewrites it),
// authority, protocol, response code and its details (an RBAC denial
// names its policy there), the request and trace IDs, and the RBAC
// decision when the chain has an RBAC filter.
func httpLogFormat(rbacPrefix *string) *structpb.Struct {
	f := logFields()
	f["method"] = "%REQ(:METHOD)%"
	f["path"] = "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"
	f["authority"] = "%REQ(:AUTHORITY)%"
	f["protocol"] = "%PROTOCOL%"
	f["response_code"] = "%RESPONSE_CODE%"
	f["response_code_details"] = "%RESPONSE_CODE_DETAILS%"
	f["request_id"] = "%REQ(X-REQUEST-ID)%"
	f["trace_id"] = "%TRACE_ID%"
	if rbacPrefix != nil {
		f["rbac_policy"] = "%DYNAMIC_METADATA(" + httpRBACNamespace + ":" + *rbacPrefix + "enforced_effective_policy_id)%"
		f["rbac_result"] = "%DYNAMIC_METADATA(" + httpRBACNamespace + ":" + *rbacPrefix + "enforced_engine_result)%"
	}
	return jsonFormat(f)
}

// tcpLogFormat adds a connection's fields: why Envoy closed it (an RBAC
// denial names its policy there), the server name the caller asked for,
// and the RBAC decision when the chain has an RBAC filter. HTTP's commands
// parse in a TCP proxy's log too, and always log null: they are left out.
func tcpLogFormat(rbac bool) *structpb.Struct {
	f := logFields()
	f["connection_termination_details"] = "%CONNECTION_TERMINATION_DETAILS%"
	f["requested_server_name"] = "%REQUESTED_SERVER_NAME%"
	if rbac {
		f["rbac_policy"] = "%DYNAMIC_METADATA(" + networkRBACNamespace + ":shadow_effective_policy_id)%"
		f["rbac_result"] = "%DYNAMIC_METADATA(" + networkRBACNamespace + ":shadow_engine_result)%"
	}
	return jsonFormat(f)
}

func jsonFormat(fields map[string]string) *structpb.Struct {
	s := &structpb.Struct{Fields: make(map[string]*structpb.Value, len(fields))}
	for k, v := range fields {
		s.Fields[k] = structpb.NewStringValue(v)
	}
	return s
}

// tracing reports the connection manager's spans to the collector over
// OTLP/gRPC. Envoy samples random_sampling of the requests whose
// x-request-id carries no decision yet (its default is 100%); one it marked
// sampled stays sampled, and a span whose W3C traceparent parent is
// unsampled stays unsampled, so the proxies a request meets after the first
// follow that proxy's decision.
//
// The tracer's gRPC client does not check its cluster when the listener
// loads (it asks the cluster manager to skip the check:
// source/extensions/tracers/opentelemetry/opentelemetry_tracer_impl.cc,
// factoryForGrpcService(..., true); source/common/grpc/
// async_client_manager_impl.cc), so the collector's cluster may come over
// CDS: tracingCluster.
func (t *translator) tracing(tr *mesh.Tracing) *hcmv3.HttpConnectionManager_Tracing {
	cfg := &tracev3.OpenTelemetryConfig{
		GrpcService: &corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{
			ClusterName: TracingClusterName(tr.Collector, tr.Port),
		}}},
		ServiceName: TracingServiceName,
		ResourceDetectors: []*corev3.TypedExtensionConfig{{
			Name:        envDetector,
			TypedConfig: t.any(&resourcev3.EnvironmentResourceDetectorConfig{}),
		}},
	}
	return &hcmv3.HttpConnectionManager_Tracing{
		RandomSampling: &typev3.Percent{Value: tr.SamplingPercent},
		Provider: &tracev3.Tracing_Http{
			Name:       openTelemetry,
			ConfigType: &tracev3.Tracing_Http_TypedConfig{TypedConfig: t.any(cfg)},
		},
	}
}

// tracingCluster adds the collector's cluster when the group traces: the
// collector's Service by its cluster DNS name, in plaintext over HTTP/2
// (gRPC). The proxy's own connections bypass its traffic redirection, so
// no egress policy applies to them.
func (t *translator) tracingCluster() {
	tr := t.obs().Tracing
	if tr == nil {
		return
	}
	name := TracingClusterName(tr.Collector, tr.Port)
	host := t.view.Mesh.FQDN(tr.Collector)
	t.out.Clusters = append(t.out.Clusters, sharedNamed(t, "tracing-cluster", tr.Collector.String(), tr.Port, func(t *translator) *clusterv3.Cluster {
		return &clusterv3.Cluster{
			Name:                          name,
			ClusterDiscoveryType:          &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS},
			ConnectTimeout:                durationpb.New(connectTimeout),
			DnsLookupFamily:               clusterv3.Cluster_V4_PREFERRED,
			RespectDnsTtl:                 true,
			TypedExtensionProtocolOptions: t.http2Options(),
			LoadAssignment: &endpointv3.ClusterLoadAssignment{
				ClusterName: name,
				Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
					HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: socketAddress(host, tr.Port)}},
				}}}},
			},
		}
	}))
}
