package envoyrules

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbacnetv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
)

const (
	tlsInspector  = "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
	httpInspector = "type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector"
	originalDst   = "type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst"
)

// Network filters by type URL: whether each is terminal.
var networkFilters = map[string]bool{
	"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager": true,
	"type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy":                            true,
	"type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC":                                     false,
	// A core extension of every Envoy build (source/extensions/extensions_build_config.bzl).
	"type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit": false,
}

const (
	terminalSource = "source/common/config/utility.cc, Config::Utility::validateTerminalFilters"
	chainsSource   = "source/common/listener_manager/filter_chain_manager_impl.cc"
)

// listener checks one listener; its chains are checked once each.
func (c *Checker) listener(l *listenerv3.Listener) *facts {
	f := &facts{}
	name := l.GetName()
	if l.GetApiListener() != nil {
		f.fail("listener", name, "a proxy's listeners have addresses", "an API listener is only for gRPC clients; Envoy proxies use it only as configured in the bootstrap")
		return f
	}
	additionalCompat(l, f)
	if len(l.GetFilterChains()) == 0 && l.GetDefaultFilterChain() == nil {
		f.fail("listener", name, "a listener has a filter chain or a default filter chain",
			fmt.Sprintf("\"error adding listener '%s': no filter chains specified\" (source/common/listener_manager/listener_impl.cc, validateFilterChains); in state-of-the-world LDS the whole update is NACKed", addressList(l)))
	}
	inspectors := map[string]bool{}
	// The TLS inspector's filter_disabled predicate: the ports it skips.
	var tlsDisabled *listenerv3.ListenerFilterChainMatchPredicate
	for _, lf := range l.GetListenerFilters() {
		url := lf.GetTypedConfig().GetTypeUrl()
		switch url {
		case tlsInspector, httpInspector, originalDst:
			inspectors[url] = true
			if url == tlsInspector {
				tlsDisabled = lf.GetFilterDisabled()
			}
		default:
			f.fail("listener", name, "listener filters are ones the mesh's Envoy has: "+lf.GetName()+" is not",
				"\"Didn't find a registered implementation for '"+lf.GetName()+"' with type URL: '"+url+"'\"")
		}
	}
	// Expanded matches, as Envoy builds its filter chain tree: two chains
	// with a common leaf are refused.
	// Equal matches have equal leaves: the leaves find both faults, and
	// the matches tell them apart.
	leaves := make(map[string]*listenerv3.FilterChain, len(l.GetFilterChains()))
	f.nested = make([]*facts, 0, len(l.GetFilterChains())+1)
	for _, fc := range l.GetFilterChains() {
		cf := c.cached(fc, func(cf *facts) { c.chain(name, fc, cf) })
		for _, leaf := range cf.leaves {
			prev, dup := leaves[leaf]
			if !dup {
				leaves[leaf] = fc
				continue
			}
			if matchKey(prev.GetFilterChainMatch()) == cf.match {
				f.fail("listener", name, fmt.Sprintf("filter chains %q and %q have different matches", prev.GetName(), fc.GetName()),
					fmt.Sprintf("\"error adding listener '%s': filter chain '%s' has the same matching rules defined as '%s'\" (%s, verifyNoDuplicateMatchers)", addressList(l), fc.GetName(), prev.GetName(), chainsSource))
			} else {
				f.fail("listener", name, fmt.Sprintf("filter chains %q and %q do not overlap", prev.GetName(), fc.GetName()),
					fmt.Sprintf("\"error adding listener '%s': multiple filter chains with overlapping matching rules are defined\" (%s, addFilterChainForSourcePorts)", addressList(l), chainsSource))
			}
			break
		}
		if cf.needTLS && !inspectors[tlsInspector] {
			f.fail("listener", name, fmt.Sprintf("filter chain %q matches server names or a transport protocol only with a TLS inspector", fc.GetName()),
				"without one, server names are empty and the transport protocol is raw_buffer: the chain never matches TLS (source/server/active_tcp_socket.cc)")
		}
		if cf.needALPN && !inspectors[tlsInspector] && !inspectors[httpInspector] {
			f.fail("listener", name, fmt.Sprintf("filter chain %q matches application protocols only with a TLS or HTTP inspector", fc.GetName()),
				"without one, the application protocols are empty: the chain never matches")
		}
		if port := fc.GetFilterChainMatch().GetDestinationPort().GetValue(); inspectors[tlsInspector] && port != 0 &&
			(cf.needTLS || cf.needALPN && !inspectors[httpInspector]) && disabledOn(tlsDisabled, port) {
			f.fail("listener", name, fmt.Sprintf("filter chain %q matches what the TLS inspector finds, so the inspector runs on its port %d", fc.GetName(), port),
				"a listener filter does not run on the connections its filter_disabled matches: their transport protocol stays raw_buffer and they offer no application protocol, so the chain never matches (api/envoy/config/listener/v3/listener_components.proto, ListenerFilter.filter_disabled)")
		}
		f.add(cf)
	}
	if dc := l.GetDefaultFilterChain(); dc != nil {
		if dc.GetFilterChainMatch() != nil {
			f.fail("listener", name, "the default filter chain has no match", "Envoy loads it and ignores the match (api/envoy/config/listener/v3/listener.proto)")
		}
		f.add(c.cached(dc, func(cf *facts) { c.chain(name, dc, cf) }))
	}
	return f
}

// chain checks a filter chain of listener ln.
func (c *Checker) chain(ln string, fc *listenerv3.FilterChain, f *facts) {
	where := fmt.Sprintf("filter chain %q", fc.GetName())
	m := fc.GetFilterChainMatch()
	f.match, f.leaves = matchKey(m), expand(m)
	// Without an inspector the transport protocol is raw_buffer: a chain
	// that asks for it matches.
	f.needTLS = len(m.GetServerNames()) > 0 || (m.GetTransportProtocol() != "" && m.GetTransportProtocol() != "raw_buffer")
	f.needALPN = len(m.GetApplicationProtocols()) > 0
	for _, pr := range fc.GetFilterChainMatch().GetPrefixRanges() {
		if _, err := cidr(pr); err != nil {
			f.fail("listener", ln, where+": prefix ranges are CIDRs: "+err.Error(), "the CidrRange is refused (source/common/network/cidr_range.cc)")
		}
	}
	for _, n := range m.GetServerNames() {
		if strings.Contains(n, "*") && !strings.HasPrefix(n, "*.") {
			f.fail("listener", ln, fmt.Sprintf("%s: server name %q is a name or a wildcard *.name", where, n),
				fmt.Sprintf("\"error adding listener '%s': partial wildcards are not supported in \\\"server_names\\\"\" (%s, setupFilterChainMatcher)", ln, chainsSource))
		}
	}
	if field, v := repeatedValue(m); field != "" {
		f.fail("listener", ln, fmt.Sprintf("%s: its match lists %s %s once", where, field, v),
			fmt.Sprintf("a value repeated in one chain's match takes the same leaf twice: \"error adding listener: multiple filter chains with overlapping matching rules are defined\" (%s, addFilterChainForSourcePorts)", chainsSource))
	}
	tls := c.downstreamTLS(ln, where, fc.GetTransportSocket(), f)
	switch tp := m.GetTransportProtocol(); {
	case tp == "tls" && !tls:
		f.fail("listener", ln, where+": a chain matched as tls has a TLS transport socket",
			"Envoy loads it and hands the caller's TLS records to the filters as if they were plaintext: every connection fails")
	case tp == "raw_buffer" && tls:
		f.fail("listener", ln, where+": a chain matched as raw_buffer has no TLS transport socket",
			"Envoy loads it and answers a plaintext caller with a TLS handshake: every connection fails")
	}
	filters := fc.GetFilters()
	if len(filters) == 0 {
		f.fail("listener", ln, where+" has filters, the last one terminal", "Envoy loads it; the chain accepts connections and never reads them")
	}
	for i, nf := range filters {
		if !filterOrder(ln, where, "network", networkFilters, nf.GetName(), nf.GetTypedConfig().GetTypeUrl(), i, len(filters), f) {
			continue
		}
		msg, err := c.unpack(nf.GetTypedConfig())
		if err != nil {
			f.fail("listener", ln, where+": "+nf.GetName()+"'s config decodes: "+err.Error(), "the listener is refused")
			continue
		}
		switch cfg := msg.(type) {
		case *hcmv3.HttpConnectionManager:
			c.hcm(ln, where, cfg, tls, f)
		case *tcpproxyv3.TcpProxy:
			c.accessLogs(ln, where+": its TCP proxy", cfg.GetAccessLog(), false, f)
			if n := cfg.GetCluster(); n != "" {
				f.clusters = append(f.clusters, n)
			}
			for _, w := range cfg.GetWeightedClusters().GetClusters() {
				f.clusters = append(f.clusters, w.GetName())
			}
		case *rbacnetv3.RBAC:
			c.rbac(ln, where, cfg.GetRules(), tls, f)
			// Shadow rules are built and evaluated as the rules are
			// (createShadowEngine, source/extensions/filters/common/rbac/utility.h).
			c.rbac(ln, where+" (shadow rules)", cfg.GetShadowRules(), tls, f)
		}
	}
}

// filterOrder checks the i-th of n filters of a filter chain of type kind
// ("network", "http"), known holding whether each type is terminal: it is a
// filter the mesh's Envoy has, and terminal only if last. It says whether
// the filter is known.
func filterOrder(ln, where, kind string, known map[string]bool, name, url string, i, n int, f *facts) bool {
	terminal, ok := known[url]
	switch {
	case !ok:
		f.fail("listener", ln, fmt.Sprintf("%s: %s filters are ones the mesh's Envoy has: %s is not", where, kind, name),
			"\"Didn't find a registered implementation for '"+name+"' with type URL: '"+url+"'\"")
	case terminal && i < n-1:
		f.fail("listener", ln, where+": the terminal filter "+name+" is last",
			fmt.Sprintf("\"Error: terminal filter named %s of type %s must be the last filter in a %s filter chain.\" (%s)", name, typeName(url), kind, terminalSource))
	case !terminal && i == n-1:
		f.fail("listener", ln, where+": the last filter is terminal, "+name+" is not",
			fmt.Sprintf("\"Error: non-terminal filter named %s of type %s is the last filter in a %s filter chain.\" (%s)", name, typeName(url), kind, terminalSource))
	}
	return ok
}

// disabledOn says whether a listener filter's filter_disabled predicate
// matches connections to port. A predicate of another kind (addresses,
// server names) is taken not to: the rule holds what it can read.
func disabledOn(p *listenerv3.ListenerFilterChainMatchPredicate, port uint32) bool {
	if p == nil {
		return false
	}
	switch r := p.GetRule().(type) {
	case *listenerv3.ListenerFilterChainMatchPredicate_AnyMatch:
		return r.AnyMatch
	case *listenerv3.ListenerFilterChainMatchPredicate_DestinationPortRange:
		return int64(r.DestinationPortRange.GetStart()) <= int64(port) && int64(port) < int64(r.DestinationPortRange.GetEnd())
	case *listenerv3.ListenerFilterChainMatchPredicate_NotMatch:
		return !disabledOn(r.NotMatch, port)
	case *listenerv3.ListenerFilterChainMatchPredicate_OrMatch:
		return slices.ContainsFunc(r.OrMatch.GetRules(), func(q *listenerv3.ListenerFilterChainMatchPredicate) bool { return disabledOn(q, port) })
	case *listenerv3.ListenerFilterChainMatchPredicate_AndMatch:
		return !slices.ContainsFunc(r.AndMatch.GetRules(), func(q *listenerv3.ListenerFilterChainMatchPredicate) bool { return !disabledOn(q, port) })
	}
	return false
}

// addresses records the addresses l binds, refusing one bound twice.
func (c *Checker) addresses(l *listenerv3.Listener, seen map[string]string, f *facts) {
	for _, a := range bound(l) {
		sa := a.GetSocketAddress()
		ip, err := netip.ParseAddr(sa.GetAddress())
		if err != nil {
			f.fail("listener", l.GetName(), "listener addresses are IP addresses", "\"malformed IP address: "+sa.GetAddress()+"\" (source/common/network/resolver_impl.cc)")
			continue
		}
		if sa.GetIpv4Compat() && !compatible(ip) {
			f.fail("listener", l.GetName(), "only :: or an IPv4-mapped address sets ipv4_compat",
				"\"Only IPv6 address '::' or valid IPv4-mapped IPv6 address can set ipv4_compat\" (source/common/listener_manager/listener_impl.cc)")
		}
		key := netip.AddrPortFrom(ip, uint16(sa.GetPortValue())).String()
		if prev, dup := seen[key]; dup {
			f.fail("listener", l.GetName(), "no two listeners bind the same address: "+prev+" binds "+key,
				fmt.Sprintf("\"error adding listener: '%s' has duplicate address '%s' as existing listener\" (source/common/listener_manager/listener_manager_impl.cc)", l.GetName(), addressList(l)))
		}
		seen[key] = l.GetName()
	}
}

// compatible says whether an address may set ipv4_compat.
func compatible(ip netip.Addr) bool { return ip == netip.IPv6Unspecified() || ip.Is4In6() }

// additionalCompat ports how Envoy checks ipv4_compat on additional
// addresses: it holds the listener's primary address to each additional
// address's flag (checkIpv4CompatAddress is called with the primary), so
// 0.0.0.0 with [::] ipv4_compat is refused although [::] may set it.
func additionalCompat(l *listenerv3.Listener, f *facts) {
	primary, err := netip.ParseAddr(l.GetAddress().GetSocketAddress().GetAddress())
	if err != nil {
		return
	}
	for _, a := range l.GetAdditionalAddresses() {
		if a.GetAddress().GetSocketAddress().GetIpv4Compat() && !compatible(primary) {
			f.fail("listener", l.GetName(), "an additional address sets ipv4_compat only when the listener's own address may",
				fmt.Sprintf("\"Only IPv6 address '::' or valid IPv4-mapped IPv6 address can set ipv4_compat: %s\" (source/common/listener_manager/listener_impl.cc, which checks the primary address with each additional address's flag)", addressList(l)))
		}
	}
}

// downstreamTLS checks a chain's transport socket and says whether it is TLS.
func (c *Checker) downstreamTLS(ln, where string, ts *corev3.TransportSocket, f *facts) bool {
	if ts == nil {
		return false
	}
	msg, err := c.unpack(ts.GetTypedConfig())
	if err != nil {
		f.fail("listener", ln, where+": its transport socket decodes: "+err.Error(), "the listener is refused")
		return false
	}
	d, ok := msg.(*tlsv3.DownstreamTlsContext)
	if !ok {
		f.fail("listener", ln, where+": a listener's transport socket is a DownstreamTlsContext", "any other is not a TLS server")
		return false
	}
	common := d.GetCommonTlsContext()
	c.tlsVersions("listener", ln, where, common.GetTlsParams(), serverDefaults, f)
	c.commonTLS("listener", ln, where, common, f)
	if len(common.GetTlsCertificates())+len(common.GetTlsCertificateSdsSecretConfigs()) == 0 && common.GetTlsCertificateProviderInstance() == nil {
		f.fail("listener", ln, where+": a TLS server has a certificate", "\"No TLS certificates found for server context\" (source/common/tls/server_context_config_impl.cc)")
	}
	if d.GetRequireClientCertificate().GetValue() && !hasValidation(common) {
		f.fail("listener", ln, where+": a required client certificate comes with a validation context",
			"without a trusted CA the client is never asked for a certificate: mutual TLS is silently not enforced (source/common/tls/cert_validator/default_validator.cc, addClientValidationContext)")
	}
	return true
}

func hasValidation(common *tlsv3.CommonTlsContext) bool {
	return common.GetValidationContext() != nil || common.GetValidationContextSdsSecretConfig() != nil || common.GetCombinedValidationContext() != nil
}

// repeatedValue finds a value a match's repeated fields list twice, as
// Envoy normalises them (CIDRs masked, server names lowercased): the field
// and the value, or "".
func repeatedValue(m *listenerv3.FilterChainMatch) (string, string) {
	dup := func(vals []string) string {
		seen := make(map[string]bool, len(vals))
		for _, v := range vals {
			if seen[v] {
				return v
			}
			seen[v] = true
		}
		return ""
	}
	ranges := func(rs []*corev3.CidrRange) []string {
		var out []string
		for _, r := range rs {
			if p, err := cidr(r); err == nil {
				out = append(out, p.String())
			}
		}
		return out
	}
	var names, ports []string
	for _, n := range m.GetServerNames() {
		names = append(names, strings.ToLower(n))
	}
	for _, p := range m.GetSourcePorts() {
		ports = append(ports, strconv.Itoa(int(p)))
	}
	for _, c := range []struct {
		field string
		vals  []string
	}{
		{"prefix_ranges", ranges(m.GetPrefixRanges())},
		{"server_names", names},
		{"application_protocols", m.GetApplicationProtocols()},
		{"direct_source_prefix_ranges", ranges(m.GetDirectSourcePrefixRanges())},
		{"source_prefix_ranges", ranges(m.GetSourcePrefixRanges())},
		{"source_ports", ports},
	} {
		if len(c.vals) > 1 {
			if v := dup(c.vals); v != "" {
				return c.field, v
			}
		}
	}
	return "", ""
}

// matchKey is a filter chain match as Envoy compares two for equality.
func matchKey(m *listenerv3.FilterChainMatch) string {
	if m == nil {
		m = &listenerv3.FilterChainMatch{}
	}
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	return string(b)
}

// expand lists the leaves of Envoy's filter chain tree that a match takes:
// every combination of its repeated fields, an empty one standing for any.
func expand(m *listenerv3.FilterChainMatch) []string {
	or := func(ss []string) []string {
		if len(ss) == 0 {
			return []string{""}
		}
		return ss
	}
	var prefixes []string
	for _, pr := range m.GetPrefixRanges() {
		p, err := cidr(pr)
		if err != nil {
			continue
		}
		prefixes = append(prefixes, p.String())
	}
	var sources []string
	for _, pr := range m.GetSourcePrefixRanges() {
		if p, err := cidr(pr); err == nil {
			sources = append(sources, p.String())
		}
	}
	var sourcePorts []string
	for _, p := range m.GetSourcePorts() {
		sourcePorts = append(sourcePorts, strconv.Itoa(int(p)))
	}
	var names []string
	for _, n := range m.GetServerNames() {
		names = append(names, strings.ToLower(n))
	}
	head := fmt.Sprintf("%d|%s|%s|%s", m.GetDestinationPort().GetValue(), m.GetDirectSourcePrefixRanges(), m.GetTransportProtocol(), m.GetSourceType())
	var out []string
	for _, p := range or(prefixes) {
		for _, n := range or(names) {
			for _, a := range or(m.GetApplicationProtocols()) {
				for _, s := range or(sources) {
					for _, sp := range or(sourcePorts) {
						out = append(out, strings.Join([]string{head, p, n, a, s, sp}, "|"))
					}
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func cidr(r *corev3.CidrRange) (netip.Prefix, error) {
	ip, err := netip.ParseAddr(r.GetAddressPrefix())
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address", r.GetAddressPrefix())
	}
	bits := ip.BitLen()
	if r.GetPrefixLen() != nil {
		bits = int(r.GetPrefixLen().GetValue())
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%s/%d: %w", ip, bits, err)
	}
	return p, nil
}

func addressList(l *listenerv3.Listener) string {
	var out []string
	for _, a := range bound(l) {
		sa := a.GetSocketAddress()
		out = append(out, netip.AddrPortFrom(netip.MustParseAddr(orZero(sa.GetAddress())), uint16(sa.GetPortValue())).String())
	}
	return strings.Join(out, ",")
}

// bound are the addresses a listener binds: its own and its additional ones.
func bound(l *listenerv3.Listener) []*corev3.Address {
	out := []*corev3.Address{l.GetAddress()}
	for _, a := range l.GetAdditionalAddresses() {
		out = append(out, a.GetAddress())
	}
	return out
}

func orZero(a string) string {
	if _, err := netip.ParseAddr(a); err != nil {
		return "0.0.0.0"
	}
	return a
}

func typeName(url string) string {
	return url[strings.LastIndex(url, "/")+1:]
}
