package envoyrules_test

import (
	"os"
	"strings"
	"testing"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/config/metrics/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbacnetv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/open-service-mesh/osm-operator/xds/bootstrap"
	"github.com/open-service-mesh/osm-operator/xds/envoyrules"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

const (
	collector   = "tracing|observability/otel-collector|4317"
	tcpOutbound = "out|bookwarehouse/bookwarehouse|5432"
)

// observed is what the translator gives bookstore's proxies in the
// observability golden: access logs, tracing and identity labels.
func observed(t *testing.T, group mesh.Identity) *envoyrules.Resources {
	t.Helper()
	data, err := os.ReadFile("../translate/testdata/in/observability.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in, err := meshtest.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := mesh.Build(in)
	r, err := translate.Translate(m.View(mesh.Group{Kind: mesh.ProxyEnvoy, Identity: group}), &translate.Certificates{CertChain: []byte("c"), PrivateKey: []byte("k"), TrustBundle: []byte("ca")})
	if err != nil {
		t.Fatal(err)
	}
	return clone(r)
}

// hcmOf edits the HTTP connection manager of a chain.
func hcmOf(fc *listenerv3.FilterChain, edit func(*hcmv3.HttpConnectionManager)) {
	f := fc.Filters[len(fc.Filters)-1]
	h := unpack(f.GetTypedConfig(), &hcmv3.HttpConnectionManager{})
	edit(h)
	f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(h)}
}

// inboundHTTP edits the inbound HTTP chain's connection manager.
func inboundHTTP(r *envoyrules.Resources, edit func(*hcmv3.HttpConnectionManager)) {
	hcmOf(chain(listener(r, translate.InboundListener), "in|14001"), edit)
}

// tcpOf edits the TCP proxy of a chain.
func tcpOf(fc *listenerv3.FilterChain, edit func(*tcpproxyv3.TcpProxy)) {
	f := fc.Filters[len(fc.Filters)-1]
	tp := unpack(f.GetTypedConfig(), &tcpproxyv3.TcpProxy{})
	edit(tp)
	f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(tp)}
}

// logField sets a field of an access log's JSON format.
func logField(al *accesslogv3.AccessLog, key, value string) {
	cfg := unpack(al.GetTypedConfig(), &streamv3.StdoutAccessLog{})
	cfg.GetLogFormat().GetJsonFormat().Fields[key] = structpb.NewStringValue(value)
	al.ConfigType = &accesslogv3.AccessLog_TypedConfig{TypedConfig: mustAny(cfg)}
}

// otel edits the inbound connection manager's OpenTelemetry config.
func otel(r *envoyrules.Resources, edit func(*tracev3.OpenTelemetryConfig)) {
	inboundHTTP(r, func(h *hcmv3.HttpConnectionManager) {
		cfg := unpack(h.GetTracing().GetProvider().GetTypedConfig(), &tracev3.OpenTelemetryConfig{})
		edit(cfg)
		h.Tracing.Provider.ConfigType = &tracev3.Tracing_Http_TypedConfig{TypedConfig: mustAny(cfg)}
	})
}

func dropCluster(r *envoyrules.Resources, name string) {
	for i, c := range r.Clusters {
		if c.GetName() == name {
			r.Clusters = append(r.Clusters[:i], r.Clusters[i+1:]...)
			return
		}
	}
	panic("no cluster " + name)
}

// TestObservabilityRules: access log formats hold commands Envoy knows, with
// their syntax; tracers name a collector cluster the proxy has, over
// HTTP/2, a CDS one being fine; network RBAC shadow rules are checked as
// rules are. Each rule is broken on the translator's own output, and kept.
func TestObservabilityRules(t *testing.T) {
	bookstore := mesh.Identity{Namespace: "bookstore", ServiceAccount: "bookstore"}
	bookwarehouse := mesh.Identity{Namespace: "bookwarehouse", ServiceAccount: "bookwarehouse"}
	for _, g := range []mesh.Identity{bookstore, bookwarehouse} {
		if err := envoyrules.Check(observed(t, g), opts); err != nil {
			t.Fatalf("the translator's config of %s breaks a rule: %v", g, err)
		}
	}
	type edit func(*envoyrules.Resources)
	httpLog := func(key, value string) edit {
		return func(r *envoyrules.Resources) {
			inboundHTTP(r, func(h *hcmv3.HttpConnectionManager) { logField(h.AccessLog[0], key, value) })
		}
	}
	tcpLog := func(key, value string) edit {
		return func(r *envoyrules.Resources) {
			tcpOf(chain(listener(r, translate.OutboundListener), tcpOutbound), func(tp *tcpproxyv3.TcpProxy) { logField(tp.AccessLog[0], key, value) })
		}
	}
	cases := []struct {
		rule      string
		group     mesh.Identity
		bad, good edit
		want      string
	}{
		{rule: "a command Envoy knows",
			bad: httpLog("cluster", "%UPSTREAM_CLUSTERS%"), good: httpLog("cluster", "%UPSTREAM_CLUSTER%"),
			want: "Not supported field in StreamInfo: UPSTREAM_CLUSTERS"},
		{rule: "a command without parameters takes none",
			bad: httpLog("protocol", "%PROTOCOL(HTTP)%"), good: httpLog("protocol", "%PROTOCOL%"),
			want: "PROTOCOL does not take any parameters or length"},
		{rule: "a command with parameters has them",
			bad: httpLog("rbac_policy", "%DYNAMIC_METADATA%"), good: httpLog("rbac_policy", "%DYNAMIC_METADATA(envoy.filters.http.rbac:in|14001enforced_effective_policy_id)%"),
			want: "DYNAMIC_METADATA requires parameters"},
		{rule: "a length only where the command takes one",
			bad: httpLog("rbac_policy", "%DYNAMIC_METADATA(envoy.filters.http.rbac:x):10%"), good: httpLog("path", "%REQ(:PATH):100%"),
			want: "DYNAMIC_METADATA does not allow length to be specified."},
		{rule: "a header command has one alternative at most",
			bad: httpLog("path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH?X-PATH)%"), good: httpLog("path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"),
			want: "More than 1 alternative header specified in token"},
		{rule: "every % starts a command",
			bad: httpLog("start_time", "%START_TIME"), good: httpLog("start_time", "%START_TIME(%s.%3f)%"),
			want: "Couldn't find valid command at position 0"},
		{rule: "a TCP proxy's log names no command of requests",
			bad: tcpLog("method", "%REQ(:METHOD)%"), good: tcpLog("sni", "%REQUESTED_SERVER_NAME%"),
			want: "a TCP proxy's access log names no command of requests"},
		{rule: "the mesh's access logger",
			bad: func(r *envoyrules.Resources) {
				inboundHTTP(r, func(h *hcmv3.HttpConnectionManager) {
					h.AccessLog[0].ConfigType = &accesslogv3.AccessLog_TypedConfig{TypedConfig: mustAny(&streamv3.StderrAccessLog{})}
				})
			},
			good: func(r *envoyrules.Resources) {
				inboundHTTP(r, func(h *hcmv3.HttpConnectionManager) {
					h.AccessLog[0].ConfigType = &accesslogv3.AccessLog_TypedConfig{TypedConfig: mustAny(&streamv3.StdoutAccessLog{})}
				})
			},
			want: "is envoy.access_loggers.stdout"},
		// Without the rule, a tracer of a missing cluster would pass: Envoy
		// loads it and drops every span.
		{rule: "the tracer's cluster exists; a CDS cluster will do",
			bad:  func(r *envoyrules.Resources) { dropCluster(r, collector) },
			good: func(r *envoyrules.Resources) {}, // the collector's cluster comes over CDS
			want: "every cluster a tracer exports to exists"},
		{rule: "the tracer's cluster speaks HTTP/2",
			bad: func(r *envoyrules.Resources) { cluster(r, collector).TypedExtensionProtocolOptions = nil },
			good: func(r *envoyrules.Resources) {
				c := cluster(r, collector)
				c.TypedExtensionProtocolOptions = map[string]*anypb.Any{}
				h2Options(c, explicitH2)
			},
			want: "speaks HTTP/2"},
		{rule: "the tracer has one exporter",
			bad: func(r *envoyrules.Resources) { otel(r, func(c *tracev3.OpenTelemetryConfig) { c.GrpcService = nil }) },
			good: func(r *envoyrules.Resources) {
				otel(r, func(c *tracev3.OpenTelemetryConfig) { c.ServiceName = "bookstore" })
			},
			want: "OpenTelemetry Tracer must have exactly one of gRPC, HTTP, or custom exporter configured."},
		{rule: "the tracer's resource detectors are ones Envoy has",
			bad: func(r *envoyrules.Resources) {
				otel(r, func(c *tracev3.OpenTelemetryConfig) {
					c.ResourceDetectors = append(c.ResourceDetectors, &corev3.TypedExtensionConfig{Name: "envoy.tracers.opentelemetry.resource_detectors.k8s",
						TypedConfig: &anypb.Any{TypeUrl: "type.googleapis.com/envoy.extensions.tracers.opentelemetry.resource_detectors.v3.K8sResourceDetectorConfig"}})
				})
			},
			good: func(r *envoyrules.Resources) {
				otel(r, func(c *tracev3.OpenTelemetryConfig) { c.ResourceDetectors = nil })
			},
			want: "Resource detector factory not found"},
		{rule: "tracing names its provider",
			bad: func(r *envoyrules.Resources) {
				inboundHTTP(r, func(h *hcmv3.HttpConnectionManager) { h.Tracing.Provider = nil })
			},
			good: func(r *envoyrules.Resources) {
				inboundHTTP(r, func(h *hcmv3.HttpConnectionManager) { h.Tracing = nil })
			},
			want: "names its provider"},
		{rule: "shadow rules hold to the rules' rules", group: bookwarehouse,
			bad: func(r *envoyrules.Resources) {
				fc := chain(listener(r, translate.InboundListener), "in|5432")
				cfg := unpack(fc.Filters[0].GetTypedConfig(), &rbacnetv3.RBAC{})
				cfg.ShadowRules = &rbacv3.RBAC{Policies: map[string]*rbacv3.Policy{"p": {
					Permissions: []*rbacv3.Permission{{Rule: &rbacv3.Permission_Any{Any: true}}},
					Principals:  []*rbacv3.Principal{{Identifier: &rbacv3.Principal_DirectRemoteIp{DirectRemoteIp: &corev3.CidrRange{AddressPrefix: "10.0.0.0", PrefixLen: wrapperspb.UInt32(33)}}}},
				}}}
				fc.Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(cfg)}
			},
			good: func(r *envoyrules.Resources) {},
			want: "(shadow rules): RBAC policy \"p\": address principals are CIDRs"},
	}
	for _, c := range cases {
		t.Run(c.rule, func(t *testing.T) {
			g := c.group
			if g == (mesh.Identity{}) {
				g = bookstore
			}
			bad := observed(t, g)
			c.bad(bad)
			err := envoyrules.Check(bad, opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("breaking the rule gave %v, want a violation saying %q", err, c.want)
			}
			good := observed(t, g)
			c.good(good)
			if err := envoyrules.Check(good, opts); err != nil {
				t.Errorf("keeping the rule gave %v", err)
			}
		})
	}
}

// TestStatsTagRules: the bootstrap's stats tags pass; a tag without a
// name, a regex that does not compile or has no capture group is found.
func TestStatsTagRules(t *testing.T) {
	o := bootstrap.Options{NodeID: "sidecar~ns~pod", Cluster: "sa", XDSHost: "osm.svc", XDSPort: 15128, ServerName: "osm", IdentityDir: "/id", SDSDir: "/sds"}
	for _, c := range []struct {
		tag  *metricsv3.TagSpecifier
		want string
	}{
		{&metricsv3.TagSpecifier{TagValue: &metricsv3.TagSpecifier_Regex{Regex: `(a)`}}, "tag_name cannot be empty"},
		{&metricsv3.TagSpecifier{TagName: "x", TagValue: &metricsv3.TagSpecifier_Regex{Regex: `(a`}}, "its regex compiles"},
		{&metricsv3.TagSpecifier{TagName: "x", TagValue: &metricsv3.TagSpecifier_Regex{Regex: `(?:a)\.b`}}, "its regex has a capture group"},
		{&metricsv3.TagSpecifier{TagName: "x"}, "No regex specified for tag specifier"},
	} {
		b, err := bootstrap.Envoy(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := envoyrules.CheckBootstrap(b, nil, envoyrules.Options{}); err != nil {
			t.Fatalf("the bootstrap breaks a rule: %v", err)
		}
		b.StatsConfig.StatsTags = append(b.StatsConfig.StatsTags, c.tag)
		if err := envoyrules.CheckBootstrap(b, nil, envoyrules.Options{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want a violation saying %q", c.tag, err, c.want)
		}
	}
	// A fixed value needs no regex.
	b, _ := bootstrap.Envoy(o)
	b.StatsConfig.StatsTags = append(b.StatsConfig.StatsTags, &metricsv3.TagSpecifier{TagName: "mesh", TagValue: &metricsv3.TagSpecifier_FixedValue{FixedValue: "osm"}})
	if err := envoyrules.CheckBootstrap(b, nil, envoyrules.Options{}); err != nil {
		t.Errorf("a fixed tag: %v", err)
	}
}
