package envoyrules

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/config/metrics/v3"
	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/tracers/opentelemetry/resource_detectors/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// Access logs, tracing and stats tags: the rules Envoy holds them to when
// it loads a listener or its bootstrap. A listener is refused whole for one
// bad access log format or tracer (the HTTP connection manager's and the TCP
// proxy's configs are built when the listener is), and in state-of-the-world
// LDS that refuses the whole update.

const (
	stdoutLogURL     = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
	openTelemetryURL = "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig"
	envDetectorURL   = "type.googleapis.com/envoy.extensions.tracers.opentelemetry.resource_detectors.v3.EnvironmentResourceDetectorConfig"

	formatterTableSource = "source/common/formatter/stream_info_formatter.cc and http_specific_formatter.cc, the built-in command parsers"
	otelSource           = "source/extensions/tracers/opentelemetry/opentelemetry_tracer_impl.cc"
)

// Command syntax, as CommandSyntaxChecker (source/common/formatter/
// substitution_format_utility.cc) checks it.
type cmdSyntax uint8

const (
	cmdOnly      cmdSyntax = 0
	paramsNeeded cmdSyntax = 1 << iota
	paramsMay
	lengthMay
)

// formatCommands are the commands of Envoy's built-in formatters (stream
// info and HTTP), with their syntax: a port of their tables. A command
// Envoy added after this port is refused here: add it from the source.
var formatCommands = func() map[string]cmdSyntax {
	m := map[string]cmdSyntax{}
	for _, n := range strings.Fields(`
		REQUEST_DURATION REQUEST_TX_DURATION RESPONSE_DURATION RESPONSE_TX_DURATION
		DOWNSTREAM_HANDSHAKE_DURATION ROUNDTRIP_DURATION BYTES_RECEIVED BYTES_RETRANSMITTED
		PACKETS_RETRANSMITTED UPSTREAM_WIRE_BYTES_RECEIVED UPSTREAM_HEADER_BYTES_RECEIVED
		DOWNSTREAM_WIRE_BYTES_RECEIVED DOWNSTREAM_HEADER_BYTES_RECEIVED PROTOCOL UPSTREAM_PROTOCOL
		RESPONSE_CODE RESPONSE_CODE_DETAILS CONNECTION_TERMINATION_DETAILS BYTES_SENT
		UPSTREAM_WIRE_BYTES_SENT UPSTREAM_HEADER_BYTES_SENT DOWNSTREAM_WIRE_BYTES_SENT
		DOWNSTREAM_HEADER_BYTES_SENT DURATION RESPONSE_FLAGS RESPONSE_FLAGS_LONG
		UPSTREAM_HOST_NAME UPSTREAM_HOST UPSTREAM_CONNECTION_ID UPSTREAM_CLUSTER UPSTREAM_CLUSTER_RAW
		UPSTREAM_LOCAL_ADDRESS UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT UPSTREAM_LOCAL_PORT
		UPSTREAM_REMOTE_ADDRESS UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT UPSTREAM_REMOTE_PORT
		UPSTREAM_REQUEST_ATTEMPT_COUNT UPSTREAM_TLS_CIPHER UPSTREAM_TLS_VERSION UPSTREAM_TLS_SESSION_ID
		UPSTREAM_PEER_ISSUER UPSTREAM_PEER_CERT UPSTREAM_PEER_SUBJECT
		DOWNSTREAM_LOCAL_ADDRESS DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT DOWNSTREAM_LOCAL_PORT
		DOWNSTREAM_REMOTE_ADDRESS DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT DOWNSTREAM_REMOTE_PORT
		DOWNSTREAM_DIRECT_REMOTE_ADDRESS DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT
		DOWNSTREAM_DIRECT_REMOTE_PORT CONNECTION_ID REQUESTED_SERVER_NAME ROUTE_NAME
		UPSTREAM_PEER_URI_SAN UPSTREAM_PEER_DNS_SAN UPSTREAM_PEER_IP_SAN
		UPSTREAM_LOCAL_URI_SAN UPSTREAM_LOCAL_DNS_SAN UPSTREAM_LOCAL_IP_SAN
		DOWNSTREAM_PEER_URI_SAN DOWNSTREAM_PEER_DNS_SAN DOWNSTREAM_PEER_IP_SAN
		DOWNSTREAM_LOCAL_URI_SAN DOWNSTREAM_LOCAL_DNS_SAN DOWNSTREAM_LOCAL_IP_SAN
		DOWNSTREAM_PEER_SUBJECT DOWNSTREAM_LOCAL_SUBJECT DOWNSTREAM_TLS_SESSION_ID
		DOWNSTREAM_TLS_CIPHER DOWNSTREAM_TLS_VERSION DOWNSTREAM_PEER_FINGERPRINT_256
		DOWNSTREAM_PEER_FINGERPRINT_1 DOWNSTREAM_PEER_SERIAL DOWNSTREAM_PEER_CHAIN_FINGERPRINTS_256
		DOWNSTREAM_PEER_CHAIN_FINGERPRINTS_1 DOWNSTREAM_PEER_CHAIN_SERIALS DOWNSTREAM_PEER_ISSUER
		DOWNSTREAM_PEER_CERT DOWNSTREAM_TRANSPORT_FAILURE_REASON UPSTREAM_TRANSPORT_FAILURE_REASON
		HOSTNAME FILTER_CHAIN_NAME VIRTUAL_CLUSTER_NAME TLS_JA3_FINGERPRINT UNIQUE_ID STREAM_ID
		UPSTREAM_CONNECTION_POOL_READY_DURATION
		LOCAL_REPLY_BODY ACCESS_LOG_TYPE GRPC_STATUS_NUMBER REQUEST_HEADERS_BYTES
		RESPONSE_HEADERS_BYTES RESPONSE_TRAILERS_BYTES TRACE_ID`) {
		m[n] = cmdOnly
	}
	for _, n := range []string{"START_TIME", "START_TIME_LOCAL", "EMIT_TIME", "EMIT_TIME_LOCAL",
		"DOWNSTREAM_PEER_CERT_V_START", "DOWNSTREAM_PEER_CERT_V_END", "UPSTREAM_PEER_CERT_V_START", "UPSTREAM_PEER_CERT_V_END", "GRPC_STATUS"} {
		m[n] = paramsMay
	}
	for _, n := range []string{"COMMON_DURATION", "DYNAMIC_METADATA", "CLUSTER_METADATA", "UPSTREAM_METADATA"} {
		m[n] = paramsNeeded
	}
	for _, n := range []string{"FILTER_STATE", "UPSTREAM_FILTER_STATE"} {
		m[n] = paramsMay | lengthMay
	}
	for _, n := range []string{"ENVIRONMENT", "REQ", "RESP", "TRAILER", "STREAM_INFO_REQ"} {
		m[n] = paramsNeeded | lengthMay
	}
	return m
}()

// httpCommands are the commands of the HTTP formatter, and the response
// code and its details: in a TCP proxy's access log they parse, and are
// always null or 0 (a connection has no headers, span or response code).
var httpCommands = []string{"REQ", "RESP", "TRAILER", "LOCAL_REPLY_BODY", "ACCESS_LOG_TYPE", "GRPC_STATUS", "GRPC_STATUS_NUMBER",
	"REQUEST_HEADERS_BYTES", "RESPONSE_HEADERS_BYTES", "RESPONSE_TRAILERS_BYTES", "STREAM_INFO_REQ", "TRACE_ID", "RESPONSE_CODE", "RESPONSE_CODE_DETAILS"}

// headerToken is what Http::HeaderUtility::headerNameIsValid takes of a
// lowercased header name: an RFC 9110 token, or a pseudo-header.
var headerToken = regexp.MustCompile("^:?[!#$%&'*+\\-.^_`|~0-9a-z]+$")

// commandErrors are the errors Envoy's parser gives the commands of a
// format string (SubstitutionFormatParser::parse, then each command's
// parser), and whether an HTTP command was named.
func commandErrors(format string) (errs []string, httpOnly bool) {
	if pos, ok := formatString(format); !ok {
		return []string{fmt.Sprintf("\"Incorrect configuration: %s. Couldn't find valid command at position %d\" (%s)", format, pos, formatterSource)}, false
	}
	for pos := 0; pos < len(format); {
		switch {
		case format[pos] != '%':
			pos++
			continue
		case pos+1 < len(format) && format[pos+1] == '%':
			pos += 2
			continue
		}
		m := formatCommand.FindStringSubmatchIndex(format[pos:])
		cmd := format[pos+m[2] : pos+m[3]]
		sub, length := "", false
		if m[4] >= 0 {
			sub = format[pos+m[4] : pos+m[5]]
		}
		length = m[6] >= 0
		pos += m[1]
		syntax, known := formatCommands[cmd]
		if !known {
			errs = append(errs, fmt.Sprintf("\"Not supported field in StreamInfo: %s\" (%s; %s)", cmd, formatterSource, formatterTableSource))
			continue
		}
		httpOnly = httpOnly || slices.Contains(httpCommands, cmd)
		switch {
		case syntax == cmdOnly && (sub != "" || length):
			errs = append(errs, fmt.Sprintf("\"%s does not take any parameters or length\" (source/common/formatter/substitution_format_utility.cc, CommandSyntaxChecker::verifySyntax)", cmd))
			continue
		case syntax&paramsNeeded != 0 && sub == "":
			errs = append(errs, fmt.Sprintf("\"%s requires parameters\" (CommandSyntaxChecker::verifySyntax)", cmd))
			continue
		case syntax&lengthMay == 0 && length:
			errs = append(errs, fmt.Sprintf("\"%s does not allow length to be specified.\" (CommandSyntaxChecker::verifySyntax)", cmd))
			continue
		}
		switch cmd {
		case "REQ", "RESP", "TRAILER", "STREAM_INFO_REQ":
			hs := strings.Split(sub, "?")
			if len(hs) > 2 {
				errs = append(errs, fmt.Sprintf("\"More than 1 alternative header specified in token: %s\" (SubstitutionFormatUtils::parseSubcommandHeaders)", sub))
				continue
			}
			for i, h := range hs {
				if (i == 0 || h != "") && !headerToken.MatchString(strings.ToLower(h)) {
					errs = append(errs, fmt.Sprintf("\"Invalid header configuration. Format string contains invalid characters.\" (SubstitutionFormatUtils::parseSubcommandHeaders: %q)", h))
				}
			}
		case "COMMON_DURATION":
			parts := strings.Split(sub, ":")
			if len(parts) < 2 || len(parts) > 3 {
				errs = append(errs, fmt.Sprintf("\"Invalid common duration configuration: %s.\" (stream_info_formatter.cc, CommonDurationFormatter::create)", sub))
			} else if len(parts) == 3 && !slices.Contains([]string{"ms", "us", "ns"}, parts[2]) {
				errs = append(errs, fmt.Sprintf("\"Invalid common duration precision: %s.\" (CommonDurationFormatter::create)", parts[2]))
			}
		case "GRPC_STATUS":
			if !slices.Contains([]string{"", "CAMEL_STRING", "SNAKE_STRING", "NUMBER"}, sub) {
				errs = append(errs, "\"GrpcStatusFormatter only supports CAMEL_STRING, SNAKE_STRING or NUMBER.\" (http_specific_formatter.cc)")
			}
		case "FILTER_STATE", "UPSTREAM_FILTER_STATE":
			key, rest, _ := strings.Cut(sub, ":")
			typ, field, _ := strings.Cut(rest, ":")
			switch {
			case key == "":
				errs = append(errs, "\"Invalid filter state configuration, key cannot be empty.\" (FilterStateFormatter::create)")
			case !slices.Contains([]string{"", "PLAIN", "TYPED", "FIELD"}, typ):
				errs = append(errs, "\"Invalid filter state serialize type, only support PLAIN/TYPED/FIELD.\" (FilterStateFormatter::create)")
			case (typ == "FIELD") != (field != ""):
				errs = append(errs, "\"Invalid filter state serialize type, FIELD should be used with the field name.\" (FilterStateFormatter::create)")
			}
		}
	}
	return errs, httpOnly
}

// accessLogs checks the access logs of an HTTP connection manager (http)
// or a TCP proxy of chain where of listener ln.
func (c *Checker) accessLogs(ln, where string, logs []*accesslogv3.AccessLog, http bool, f *facts) {
	for i, al := range logs {
		at := fmt.Sprintf("%s: its access log %d (%s)", where, i, al.GetName())
		if al.GetFilter() != nil {
			f.fail("listener", ln, at+" has no filter", "the mesh's access logs log every request and connection")
		}
		if url := al.GetTypedConfig().GetTypeUrl(); url != stdoutLogURL {
			f.fail("listener", ln, at+" is envoy.access_loggers.stdout, the mesh's one access logger",
				"\"Didn't find a registered implementation for '"+al.GetName()+"' with type URL: '"+url+"'\", or a logger that is not part of the mesh")
			continue
		}
		msg, err := c.unpack(al.GetTypedConfig())
		cfg, ok := msg.(*streamv3.StdoutAccessLog)
		if err != nil || !ok {
			f.fail("listener", ln, fmt.Sprintf("%s decodes: %v", at, err), "the listener is refused")
			continue
		}
		format := cfg.GetLogFormat()
		if format == nil {
			continue // Envoy's default text format
		}
		if len(format.GetFormatters()) > 0 {
			f.fail("listener", ln, at+" uses the built-in command parsers only", "formatter extensions (%CEL%, %METADATA%) are not part of the mesh")
		}
		var templates []string
		switch {
		case format.GetJsonFormat() != nil:
			walkStrings(structpb.NewStructValue(format.GetJsonFormat()), func(s string) {
				// Only strings holding a % are parsed (JsonFormatBuilder,
				// substitution_formatter.cc).
				if strings.Contains(s, "%") {
					templates = append(templates, s)
				}
			})
		case format.GetTextFormatSource() != nil:
			templates = append(templates, format.GetTextFormatSource().GetInlineString())
		default:
			templates = append(templates, format.GetTextFormat())
		}
		httpOnly := false
		for _, tpl := range templates {
			errs, h := commandErrors(tpl)
			httpOnly = httpOnly || h
			for _, e := range errs {
				f.fail("listener", ln, fmt.Sprintf("%s: its format %q holds only commands Envoy knows, with their syntax", at, tpl), e+": the listener is refused")
			}
		}
		if !http && httpOnly {
			f.fail("listener", ln, at+": a TCP proxy's access log names no command of requests (REQ, RESPONSE_CODE, TRACE_ID…)",
				"Envoy loads it (every built-in command parses in any access log) and logs null or 0 for them: a TCP connection has no request headers, response code or span")
		}
	}
}

// walkStrings calls visit with every string in v.
func walkStrings(v *structpb.Value, visit func(string)) {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		visit(k.StringValue)
	case *structpb.Value_StructValue:
		for _, fv := range k.StructValue.GetFields() {
			walkStrings(fv, visit)
		}
	case *structpb.Value_ListValue:
		for _, lv := range k.ListValue.GetValues() {
			walkStrings(lv, visit)
		}
	}
}

// tracing checks an HTTP connection manager's tracing, and records the
// clusters its tracer exports to (facts.tracers).
//
// Envoy's OpenTelemetry tracer asks the gRPC client manager to skip the
// check that its cluster is a static cluster of the bootstrap
// (factoryForGrpcService(grpc_service, scope, true) in otelSource; in
// source/common/grpc/async_client_manager_impl.cc the check,
// checkActiveStaticCluster, runs only when skip_cluster_check is false, as
// for ADS): the collector's cluster may be a CDS cluster, and a missing one
// does not refuse the listener but fails every export with UNAVAILABLE
// "Cluster not available" (source/common/grpc/async_client_impl.cc). The
// check runs in Check, against the proxy's clusters.
func (c *Checker) tracing(ln, where string, t *hcmv3.HttpConnectionManager_Tracing, f *facts) {
	if t == nil {
		return
	}
	where += ": its tracing"
	p := t.GetProvider()
	if p == nil {
		f.fail("listener", ln, where+" names its provider",
			"without one the connection manager falls back to the bootstrap's tracing, which the mesh's proxies have none of: nothing is traced (api/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto, Tracing.provider)")
		return
	}
	if url := p.GetTypedConfig().GetTypeUrl(); url != openTelemetryURL {
		f.fail("listener", ln, where+"'s provider is envoy.tracers.opentelemetry, the mesh's one tracer",
			"\"Didn't find a registered implementation for '"+p.GetName()+"' with type URL: '"+url+"'\", or a tracer that is not part of the mesh")
		return
	}
	msg, err := c.unpack(p.GetTypedConfig())
	cfg, ok := msg.(*tracev3.OpenTelemetryConfig)
	if err != nil || !ok {
		f.fail("listener", ln, fmt.Sprintf("%s: its OpenTelemetry config decodes: %v", where, err), "the listener is refused")
		return
	}
	exporters := 0
	for _, set := range []bool{cfg.GetGrpcService() != nil, cfg.GetHttpService() != nil, cfg.GetExporter() != nil} {
		if set {
			exporters++
		}
	}
	if exporters != 1 {
		f.fail("listener", ln, where+": the OpenTelemetry tracer has one exporter: a gRPC service, an HTTP service or a custom exporter",
			"\"OpenTelemetry Tracer must have exactly one of gRPC, HTTP, or custom exporter configured.\" ("+otelSource+", Driver::Driver)")
	}
	if gs := cfg.GetGrpcService(); gs != nil {
		if gs.GetEnvoyGrpc() == nil {
			f.fail("listener", ln, where+": the OpenTelemetry tracer's gRPC service is an Envoy gRPC client of a cluster",
				"the Google gRPC client is not part of the mesh's proxies' configuration")
		} else {
			f.tracers = append(f.tracers, gs.GetEnvoyGrpc().GetClusterName())
		}
	}
	if cfg.GetHttpService() != nil || cfg.GetExporter() != nil {
		f.fail("listener", ln, where+": the OpenTelemetry tracer exports over gRPC", "the mesh's collectors are reached over OTLP/gRPC")
	}
	if cfg.GetSampler() != nil {
		f.fail("listener", ln, where+": the OpenTelemetry tracer samples by the connection manager's percentages",
			"a sampler extension replaces them (\"Sampler factory not found\" for one Envoy lacks, "+otelSource+")")
	}
	for _, d := range cfg.GetResourceDetectors() {
		if d.GetTypedConfig().GetTypeUrl() != envDetectorURL {
			f.fail("listener", ln, fmt.Sprintf("%s: resource detector %q is the environment detector", where, d.GetName()),
				fmt.Sprintf("\"Resource detector factory not found: '%s'\" (source/extensions/tracers/opentelemetry/resource_detectors/resource_provider.cc)", d.GetName()))
			continue
		}
		if msg, err := c.unpack(d.GetTypedConfig()); err != nil {
			f.fail("listener", ln, fmt.Sprintf("%s: resource detector %q decodes: %v", where, d.GetName(), err), "the listener is refused")
		} else if _, ok := msg.(*resourcev3.EnvironmentResourceDetectorConfig); !ok {
			f.fail("listener", ln, fmt.Sprintf("%s: resource detector %q holds an EnvironmentResourceDetectorConfig", where, d.GetName()), "the listener is refused")
		}
	}
}

// tracerCluster checks the cluster a tracer exports spans to: it exists,
// and speaks HTTP/2, which gRPC needs (a cluster speaks HTTP/1.1 unless
// its HTTP protocol options say otherwise).
func tracerCluster(n string, cl *clusterv3.Cluster, fail func(kind, name, rule, envoy string)) {
	if cl == nil {
		fail("cluster", n, "every cluster a tracer exports to exists",
			"the listener loads (the OpenTelemetry tracer's gRPC client skips the cluster check: "+otelSource+", factoryForGrpcService(..., true)), and every export fails with UNAVAILABLE \"Cluster not available\" (source/common/grpc/async_client_impl.cc): no span reaches the collector")
		return
	}
	a := cl.GetTypedExtensionProtocolOptions()[httpOptionsKey]
	o := &httpv3.HttpProtocolOptions{}
	if a == nil || a.UnmarshalTo(o) != nil || o.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
		fail("cluster", n, "a cluster a tracer exports to over gRPC speaks HTTP/2 (explicit HTTP/2 protocol options)",
			"Envoy speaks HTTP/1.1 to a cluster unless its protocol options say otherwise, and gRPC is HTTP/2: every export fails")
	}
}

// statsConfig checks a bootstrap's stats tags (source/common/stats/
// tag_producer_impl.cc, tag_extractor_impl.cc). A bad one stops Envoy at
// start: the bootstrap is not loaded.
func statsConfig(name string, sc *metricsv3.StatsConfig, f *facts) {
	hasGroup := regexp.MustCompile(`\((?:[^?]|$)`)
	for i, t := range sc.GetStatsTags() {
		at := fmt.Sprintf("stats tag %d (%q)", i, t.GetTagName())
		if t.GetTagName() == "" {
			f.fail("bootstrap", name, at+" has a name", "\"tag_name cannot be empty\" (source/common/stats/tag_extractor_impl.cc, createTagExtractor)")
		}
		if _, fixed := t.GetTagValue().(*metricsv3.TagSpecifier_FixedValue); fixed {
			continue
		}
		re := t.GetRegex()
		if re == "" {
			f.fail("bootstrap", name, at+" has a regex (this port does not hold Envoy's default tag names, which may go without)",
				"\"No regex specified for tag specifier and no default regex for name: '"+t.GetTagName()+"'\" (tag_producer_impl.cc) for a name of no default extractor")
			continue
		}
		if _, err := regexp.Compile(re); err != nil {
			f.fail("bootstrap", name, fmt.Sprintf("%s: its regex compiles (held to the syntax RE2 and ECMAScript share): %v", at, err),
				"a custom tag regex is a std::regex (ECMAScript): one it refuses stops Envoy with \"Invalid regex\" (source/common/common/regex.cc, parseStdRegex)")
			continue
		}
		if !hasGroup.MatchString(strings.ReplaceAll(re, `\(`, "")) {
			f.fail("bootstrap", name, at+": its regex has a capture group: the part of the name it removes",
				"Envoy loads it and never extracts the tag: an extractor needs a submatch (TagExtractorStdRegexImpl::extractTag, match.size() > 1)")
		}
	}
}
