package routesim

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// Conn is a connection a listener accepts, as its filter chain match sees
// it: the destination (the original one, with original_dst) and source,
// and what the listener filters detected.
type Conn struct {
	Dst, Src netip.AddrPort
	// TransportProtocol is "raw_buffer" (plaintext, the default) or "tls".
	TransportProtocol string
	// ServerName is the TLS SNI, lower case; ALPN the application protocols.
	ServerName string
	ALPN       []string
}

// Chain is the filter chain of l that Envoy picks for c, as
// FilterChainManagerImpl::findFilterChain does
// (source/common/listener_manager/filter_chain_manager_impl.cc): the chains
// of c's destination port if any chain names it (and if none of those
// matches, the default chain: there is no falling back to the chains of
// any port), else the chains naming no port; among them the longest
// destination prefix that holds c's address (a chain with no prefix holds
// every address), then the exact server name, the longest wildcard one, or
// none; the transport protocol, or none; the first of c's application
// protocols a chain names, or none; the longest direct source prefix; the
// source type; the longest source prefix; the source port, or none. Nil
// when nothing matches and the listener has no default chain. A listener
// with a filter_chain_matcher is not simulated: nil.
func Chain(l *listenerv3.Listener, c Conn) *listenerv3.FilterChain {
	if l.GetFilterChainMatcher() != nil {
		return nil
	}
	if c.TransportProtocol == "" {
		c.TransportProtocol = "raw_buffer"
	}
	chains := l.GetFilterChains()
	port := func(fc *listenerv3.FilterChain) uint32 {
		return fc.GetFilterChainMatch().GetDestinationPort().GetValue()
	}
	var cands []*listenerv3.FilterChain
	if slices.ContainsFunc(chains, func(fc *listenerv3.FilterChain) bool { return port(fc) == uint32(c.Dst.Port()) }) {
		cands = filter(chains, func(fc *listenerv3.FilterChain) bool { return port(fc) == uint32(c.Dst.Port()) })
	} else {
		cands = filter(chains, func(fc *listenerv3.FilterChain) bool { return port(fc) == 0 })
	}
	cands = longestPrefix(cands, c.Dst.Addr(), func(m *listenerv3.FilterChainMatch) []*corev3.CidrRange { return m.GetPrefixRanges() })
	cands = byServerName(cands, c.ServerName)
	cands = byKey(cands, func(m *listenerv3.FilterChainMatch) []string {
		if m.GetTransportProtocol() == "" {
			return nil
		}
		return []string{m.GetTransportProtocol()}
	}, []string{c.TransportProtocol})
	cands = byKey(cands, func(m *listenerv3.FilterChainMatch) []string { return m.GetApplicationProtocols() }, c.ALPN)
	cands = longestPrefix(cands, c.Src.Addr(), func(m *listenerv3.FilterChainMatch) []*corev3.CidrRange { return m.GetDirectSourcePrefixRanges() })
	cands = bySourceType(cands, c)
	cands = longestPrefix(cands, c.Src.Addr(), func(m *listenerv3.FilterChainMatch) []*corev3.CidrRange { return m.GetSourcePrefixRanges() })
	if ports := filter(cands, func(fc *listenerv3.FilterChain) bool {
		return slices.Contains(fc.GetFilterChainMatch().GetSourcePorts(), uint32(c.Src.Port()))
	}); len(ports) > 0 {
		cands = ports
	} else {
		cands = filter(cands, func(fc *listenerv3.FilterChain) bool { return len(fc.GetFilterChainMatch().GetSourcePorts()) == 0 })
	}
	if len(cands) > 0 {
		return cands[0]
	}
	return l.GetDefaultFilterChain()
}

// filter keeps the chains keep says, in order (one level of the maps of
// filter_chain_manager_impl.cc).
func filter(fcs []*listenerv3.FilterChain, keep func(*listenerv3.FilterChain) bool) []*listenerv3.FilterChain {
	var out []*listenerv3.FilterChain
	for _, fc := range fcs {
		if keep(fc) {
			out = append(out, fc)
		}
	}
	return out
}

// longestPrefix keeps the chains whose ranges hold addr with the longest
// prefix, a chain without ranges holding every address with length 0 (the
// LC tries of filter_chain_manager_impl.cc).
func longestPrefix(fcs []*listenerv3.FilterChain, addr netip.Addr, ranges func(*listenerv3.FilterChainMatch) []*corev3.CidrRange) []*listenerv3.FilterChain {
	best := -1
	lengths := make([]int, len(fcs))
	for i, fc := range fcs {
		lengths[i] = -1
		rs := ranges(fc.GetFilterChainMatch())
		if len(rs) == 0 {
			lengths[i] = 0
		}
		for _, r := range rs {
			ip, err := netip.ParseAddr(r.GetAddressPrefix())
			if err != nil {
				continue
			}
			bits := int(r.GetPrefixLen().GetValue())
			if r.GetPrefixLen() == nil {
				bits = ip.BitLen()
			}
			p, err := ip.Prefix(bits)
			if err != nil || !addr.IsValid() || !p.Contains(addr.Unmap()) {
				continue
			}
			lengths[i] = max(lengths[i], bits)
		}
		best = max(best, lengths[i])
	}
	var out []*listenerv3.FilterChain
	for i, fc := range fcs {
		if best >= 0 && lengths[i] == best {
			out = append(out, fc)
		}
	}
	return out
}

// byServerName keeps the chains of the exact server name, else of the
// longest wildcard (".foo.com", written "*.foo.com"), else of none.
func byServerName(fcs []*listenerv3.FilterChain, sni string) []*listenerv3.FilterChain {
	names := func(fc *listenerv3.FilterChain) []string {
		var out []string
		for _, n := range fc.GetFilterChainMatch().GetServerNames() {
			out = append(out, strings.TrimPrefix(strings.ToLower(n), "*"))
		}
		return out
	}
	if sni != "" {
		if ex := filter(fcs, func(fc *listenerv3.FilterChain) bool { return slices.Contains(names(fc), sni) }); len(ex) > 0 {
			return ex
		}
		pos := -1
		if i := strings.IndexByte(sni[1:], '.'); i >= 0 {
			pos = i + 1
		}
		for pos >= 0 && pos < len(sni)-1 {
			wild := sni[pos:]
			if w := filter(fcs, func(fc *listenerv3.FilterChain) bool { return slices.Contains(names(fc), wild) }); len(w) > 0 {
				return w
			}
			next := strings.IndexByte(sni[pos+1:], '.')
			if next < 0 {
				break
			}
			pos += 1 + next
		}
	}
	return filter(fcs, func(fc *listenerv3.FilterChain) bool { return len(names(fc)) == 0 })
}

// byKey keeps the chains naming the first of want that any names, else
// those naming none.
func byKey(fcs []*listenerv3.FilterChain, keys func(*listenerv3.FilterChainMatch) []string, want []string) []*listenerv3.FilterChain {
	for _, w := range want {
		if m := filter(fcs, func(fc *listenerv3.FilterChain) bool { return slices.Contains(keys(fc.GetFilterChainMatch()), w) }); len(m) > 0 {
			return m
		}
	}
	return filter(fcs, func(fc *listenerv3.FilterChain) bool { return len(keys(fc.GetFilterChainMatch())) == 0 })
}

// bySourceType keeps the chains of c's source type (SAME_IP_OR_LOOPBACK or
// EXTERNAL) when any names it, else those of ANY.
func bySourceType(fcs []*listenerv3.FilterChain, c Conn) []*listenerv3.FilterChain {
	local := c.Src.Addr().IsLoopback() || c.Src.Addr() == c.Dst.Addr()
	want := listenerv3.FilterChainMatch_EXTERNAL
	if local {
		want = listenerv3.FilterChainMatch_SAME_IP_OR_LOOPBACK
	}
	if m := filter(fcs, func(fc *listenerv3.FilterChain) bool { return fc.GetFilterChainMatch().GetSourceType() == want }); len(m) > 0 {
		return m
	}
	return filter(fcs, func(fc *listenerv3.FilterChain) bool {
		return fc.GetFilterChainMatch().GetSourceType() == listenerv3.FilterChainMatch_ANY
	})
}

// ConnectionManager is the HTTP connection manager of a filter chain (its
// network filter envoy.filters.network.http_connection_manager); nil when
// the chain has none (a TCP proxy).
func ConnectionManager(fc *listenerv3.FilterChain) (*hcmv3.HttpConnectionManager, error) {
	for _, f := range fc.GetFilters() {
		tc := f.GetTypedConfig()
		if tc == nil || !strings.HasSuffix(tc.GetTypeUrl(), "/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager") {
			continue
		}
		hcm := &hcmv3.HttpConnectionManager{}
		if err := tc.UnmarshalTo(hcm); err != nil {
			return nil, fmt.Errorf("filter %s: %w", f.GetName(), err)
		}
		return hcm, nil
	}
	return nil, nil
}

// APIListenerManager is the HTTP connection manager of an API listener (a
// proxyless gRPC client's listener).
func APIListenerManager(l *listenerv3.Listener) (*hcmv3.HttpConnectionManager, error) {
	tc := l.GetApiListener().GetApiListener()
	if tc == nil {
		return nil, fmt.Errorf("listener %s is not an API listener", l.GetName())
	}
	hcm := &hcmv3.HttpConnectionManager{}
	if err := tc.UnmarshalTo(hcm); err != nil {
		return nil, fmt.Errorf("listener %s: %w", l.GetName(), err)
	}
	return hcm, nil
}
