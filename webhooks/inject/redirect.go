package inject

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// portRange is a port or a range of ports, inclusive.
type portRange struct{ from, to int }

func (p portRange) String() string {
	if p.from == p.to {
		return strconv.Itoa(p.from)
	}
	return fmt.Sprintf("%d:%d", p.from, p.to)
}

// redirect is what the pod's traffic redirection leaves out.
type redirect struct {
	outboundPorts, inboundPorts []portRange
	outboundRanges              []netip.Prefix
}

// exclusions merges the mesh's exclusions with the pod's annotations.
func exclusions(pod *corev1.Pod, s meshv1alpha1.Sidecar) (redirect, error) {
	var r redirect
	for _, p := range s.ExcludeOutboundPorts {
		r.outboundPorts = append(r.outboundPorts, portRange{int(p), int(p)})
	}
	for _, p := range s.ExcludeInboundPorts {
		r.inboundPorts = append(r.inboundPorts, portRange{int(p), int(p)})
	}
	for _, c := range s.ExcludeOutboundIPRanges {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return r, fmt.Errorf("the mesh's spec.sidecar.excludeOutboundIPRanges: %q is not a CIDR", c)
		}
		r.outboundRanges = append(r.outboundRanges, p.Masked())
	}
	var err error
	var ports []portRange
	if ports, err = parsePorts(pod.Annotations[OutboundPortExclusionAnnotation]); err != nil {
		return r, fmt.Errorf("annotation %s: %w", OutboundPortExclusionAnnotation, err)
	}
	r.outboundPorts = append(r.outboundPorts, ports...)
	if ports, err = parsePorts(pod.Annotations[InboundPortExclusionAnnotation]); err != nil {
		return r, fmt.Errorf("annotation %s: %w", InboundPortExclusionAnnotation, err)
	}
	r.inboundPorts = append(r.inboundPorts, ports...)
	ranges, err := parseIPRanges(pod.Annotations[OutboundIPRangeExclusionAnnotation])
	if err != nil {
		return r, fmt.Errorf("annotation %s: %w", OutboundIPRangeExclusionAnnotation, err)
	}
	r.outboundRanges = append(r.outboundRanges, ranges...)
	return r, nil
}

// parsePorts reads a comma-separated list of ports and ranges: "80, 8000-8100".
func parsePorts(s string) ([]portRange, error) {
	var out []portRange
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(f, "-")
		from, err1 := strconv.Atoi(strings.TrimSpace(lo))
		to, err2 := from, error(nil)
		if isRange {
			to, err2 = strconv.Atoi(strings.TrimSpace(hi))
		}
		if err1 != nil || err2 != nil || from < 1 || to > 65535 || from > to {
			return nil, fmt.Errorf("%q is not a port (1-65535) or a range of ports such as 8000-8100", f)
		}
		out = append(out, portRange{from, to})
	}
	return out, nil
}

// parseIPRanges reads a comma-separated list of CIDRs or addresses.
func parseIPRanges(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8 or an IP address", f)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// script is the init container's shell script: the same rules for IPv4 and,
// where the pod has it, IPv6, loaded atomically by iptables-restore.
func (r redirect) script() string {
	var b strings.Builder
	b.WriteString("set -e\n")
	b.WriteString("iptables-restore --noflush <<'EOF'\n" + r.rules(false) + "EOF\n")
	b.WriteString("if [ -e /proc/net/if_inet6 ] && command -v ip6tables-restore >/dev/null; then\n")
	b.WriteString("ip6tables-restore --noflush <<'EOF'\n" + r.rules(true) + "EOF\nfi\n")
	return b.String()
}

// rules are the nat table's rules for one address family. Inbound TCP goes
// to the proxy's inbound listener except the proxy's own ports and the
// excluded ones; outbound TCP goes to its outbound listener except the
// proxy's own traffic, loopback and the excluded ports and ranges.
func (r redirect) rules(v6 bool) string {
	loopback := "127.0.0.1/32"
	if v6 {
		loopback = "::1/128"
	}
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("*nat")
	for _, c := range []string{"OSM_PROXY_INBOUND", "OSM_PROXY_IN_REDIRECT", "OSM_PROXY_OUTBOUND", "OSM_PROXY_OUT_REDIRECT"} {
		line(":%s - [0:0]", c)
	}
	line("-A OSM_PROXY_IN_REDIRECT -p tcp -j REDIRECT --to-ports %d", mesh.InboundListenerPort)
	line("-A PREROUTING -p tcp -j OSM_PROXY_INBOUND")
	line("-A OSM_PROXY_INBOUND -p tcp --dport %d -j RETURN", mesh.PrometheusPort)
	line("-A OSM_PROXY_INBOUND -p tcp --dport %d -j RETURN", mesh.HealthPort)
	line("-A OSM_PROXY_INBOUND -p tcp --dport %d:%d -j RETURN", mesh.ProbePort, mesh.LastProxyPort)
	for _, ports := range multiport(r.inboundPorts) {
		line("-A OSM_PROXY_INBOUND -p tcp -m multiport --dports %s -j RETURN", ports)
	}
	line("-A OSM_PROXY_INBOUND -p tcp -j OSM_PROXY_IN_REDIRECT")

	line("-A OSM_PROXY_OUT_REDIRECT -p tcp -j REDIRECT --to-ports %d", mesh.OutboundListenerPort)
	line("-A OUTPUT -p tcp -j OSM_PROXY_OUTBOUND")
	// The proxy calling its own pod's address is inbound traffic.
	line("-A OSM_PROXY_OUTBOUND -o lo ! -d %s -m owner --uid-owner %d -j OSM_PROXY_IN_REDIRECT", loopback, ProxyUID)
	line("-A OSM_PROXY_OUTBOUND -o lo -m owner ! --uid-owner %d -j RETURN", ProxyUID)
	line("-A OSM_PROXY_OUTBOUND -m owner --uid-owner %d -j RETURN", ProxyUID)
	line("-A OSM_PROXY_OUTBOUND -d %s -j RETURN", loopback)
	for _, p := range r.outboundRanges {
		if p.Addr().Is6() == v6 {
			line("-A OSM_PROXY_OUTBOUND -d %s -j RETURN", p)
		}
	}
	for _, ports := range multiport(r.outboundPorts) {
		line("-A OSM_PROXY_OUTBOUND -p tcp -m multiport --dports %s -j RETURN", ports)
	}
	line("-A OSM_PROXY_OUTBOUND -p tcp -j OSM_PROXY_OUT_REDIRECT")
	line("COMMIT")
	return b.String()
}

// multiport groups ports for the multiport match, which takes 15 ports to a
// rule, a range counting as two.
func multiport(ports []portRange) []string {
	ports = slices.Clone(ports)
	slices.SortFunc(ports, func(a, b portRange) int { return a.from - b.from })
	ports = slices.Compact(ports)
	var out []string
	var group []string
	n := 0
	for _, p := range ports {
		w := 1
		if p.from != p.to {
			w = 2
		}
		if n+w > 15 {
			out = append(out, strings.Join(group, ","))
			group, n = nil, 0
		}
		group = append(group, p.String())
		n += w
	}
	if len(group) > 0 {
		out = append(out, strings.Join(group, ","))
	}
	return out
}
