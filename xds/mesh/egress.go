package mesh

import (
	"cmp"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
)

// Limits on what Egresses give one source identity on one port. The CRD
// caps each list of one Egress at 64; many Egresses naming one source add
// up, and each host is a virtual host or a filter chain in every proxy of
// the source: past these, an Egress's port is left out for that source.
const (
	MaxEgressListItems     = 64
	MaxEgressHostsPerPort  = 256
	MaxEgressRangesPerPort = 256
	// MaxEgressHostsPerSource bounds the hosts of all ports of a source
	// (each is a cluster): one Egress within the CRD's limits could name
	// 64 hosts on 64 ports.
	MaxEgressHostsPerSource = 1024
)

// egressHost is a host name an Egress may name: a DNS name, or a wildcard
// *.name, as the CRD's pattern allows and Envoy's domains and server names
// take them (a leading "*." only: Envoy refuses partial wildcards in
// server_names).
var egressHost = regexp.MustCompile(`^([*][.])?[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?([.][a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$`)

// EgressPort is what a source identity may reach outside the mesh on one
// destination port: every Egress naming the identity, merged.
type EgressPort struct {
	Port int32
	// Protocol is canonical: http, https, tcp or tcp-server-first.
	Protocol policyv1alpha1.EgressProtocol
	// Hosts are the destinations by name (http: Host header; https: SNI),
	// sorted by name, each once.
	Hosts []EgressHost
	// Ranges are the destinations by address (https, tcp), masked, sorted,
	// none inside another.
	Ranges []netip.Prefix
	// AnyAddress is a tcp port of an Egress without ipAddresses: every
	// address is a destination.
	AnyAddress bool
}

// EgressHost is a destination host name and, on an http port, the requests
// allowed to it.
type EgressHost struct {
	// Name is a lower-case DNS name: api.example.com (the model leaves
	// wildcards out).
	Name string
	// AllowAll: some Egress naming the host has no HTTPRouteGroup match.
	// Else only HTTP's requests are allowed (none when it is empty).
	AllowAll bool
	HTTP     []HTTPMatch
}

// Egress are what the identity may reach outside the mesh, by port, sorted:
// nil when the mesh allows all egress (Egresses then add nothing).
func (m *Mesh) Egress(id Identity) []EgressPort { return m.egress[id] }

// egressPolicy is a checked Egress.
type egressPolicy struct {
	obj     *policyv1alpha1.Egress
	key     string // namespace/name
	sources []Identity
	hosts   []string
	ranges  []netip.Prefix
	ports   []policyv1alpha1.EgressPort
	// restricted: the Egress names HTTPRouteGroups; http allows their
	// matches only.
	restricted bool
	http       []HTTPMatch
}

// collectEgresses resolves the Egresses of member namespaces and merges
// them by source identity and port. It runs only when the mesh denies
// egress: with Allow every destination is reachable already.
func (b *builder) collectEgresses() {
	groups := b.routeGroups
	if b.m.EgressAllowed || len(b.in.Egresses) == 0 {
		return
	}
	var pols []*egressPolicy
	for _, eg := range b.in.Egresses {
		if _, ok := b.members[eg.Namespace]; !ok || eg.DeletionTimestamp != nil {
			continue
		}
		if p := b.egressPolicy(eg, groups); p != nil {
			pols = append(pols, p)
		}
	}
	slices.SortFunc(pols, func(a, c *egressPolicy) int { return cmp.Compare(a.key, c.key) })
	b.m.egress = mergeEgress(pols, func(p *egressPolicy, format string, args ...any) {
		b.problem("Egress", p.obj, format, args...)
	})
}

// egressPolicy checks an Egress: what it cannot use is left out and
// reported; nil when nothing is left.
func (b *builder) egressPolicy(eg *policyv1alpha1.Egress, groups map[string]*routeGroup) *egressPolicy {
	const kind = "Egress"
	s := eg.Spec
	for _, l := range []struct {
		field string
		n     int
	}{{"spec.sources", len(s.Sources)}, {"spec.hosts", len(s.Hosts)}, {"spec.ipAddresses", len(s.IPAddresses)}, {"spec.ports", len(s.Ports)}, {"spec.matches", len(s.Matches)}} {
		if l.n > MaxEgressListItems {
			b.problem(kind, eg, "%s has %d items, more than %d; the Egress allows nothing", l.field, l.n, MaxEgressListItems)
			return nil
		}
	}
	p := &egressPolicy{obj: eg, key: eg.Namespace + "/" + eg.Name}
	for i, src := range s.Sources {
		id := Identity{Namespace: src.Namespace, ServiceAccount: src.Name}
		switch {
		case src.Kind != policyv1alpha1.EgressSourceServiceAccount:
			b.problem(kind, eg, "spec.sources[%d]: kind %q is not ServiceAccount; %s", i, src.Kind, sourceOut)
		case src.Name == "" || src.Namespace == "":
			b.problem(kind, eg, "spec.sources[%d]: a source names a service account and its namespace; %s", i, sourceOut)
		case id.Namespace != eg.Namespace:
			b.problem(kind, eg, "spec.sources[%d]: namespace %s is not the Egress's namespace %s: an Egress grants egress to its own namespace's service accounts only; %s", i, id.Namespace, eg.Namespace, sourceOut)
		case !b.holdsWorkloads(id.Namespace):
			b.problem(kind, eg, "spec.sources[%d]: namespace %s holds no workload of mesh %s; %s", i, id.Namespace, b.m.Name, sourceOut)
		default:
			p.sources = append(p.sources, id)
		}
	}
	slices.SortFunc(p.sources, compareIdentity)
	p.sources = slices.Compact(p.sources)
	for i, h := range s.Hosts {
		h = strings.ToLower(h)
		if len(h) > 253 || !egressHost.MatchString(h) {
			b.problem(kind, eg, "spec.hosts[%d]: %q is not a DNS name or a wildcard *.name; the host is left out", i, s.Hosts[i])
			continue
		}
		if strings.HasPrefix(h, "*.") {
			b.problem(kind, eg, "spec.hosts[%d]: wildcard %q is not honoured: its chain would match any destination address by the server name or Host the caller sends; the host is left out", i, s.Hosts[i])
			continue
		}
		p.hosts = append(p.hosts, h)
	}
	slices.Sort(p.hosts)
	p.hosts = slices.Compact(p.hosts)
	for i, a := range s.IPAddresses {
		pr, err := netip.ParsePrefix(a)
		if err != nil {
			b.problem(kind, eg, "spec.ipAddresses[%d]: %q is not a CIDR; the range is left out", i, a)
			continue
		}
		pr = unmapPrefix(pr)
		if why := egressRangeProblem(pr); why != "" {
			b.problem(kind, eg, "spec.ipAddresses[%d]: %q %s; the range is left out", i, a, why)
			continue
		}
		p.ranges = append(p.ranges, pr)
	}
	p.ranges = collapseRanges(p.ranges)
	seen := map[int32]bool{}
	for i, port := range s.Ports {
		proto := port.Protocol.Canonical()
		switch {
		case port.Number < 1 || port.Number > 65535 || seen[port.Number]:
			b.problem(kind, eg, "spec.ports[%d]: port %d is out of range or repeated; %s", i, port.Number, portOut)
			continue
		case proto != policyv1alpha1.EgressProtocolHTTP && proto != policyv1alpha1.EgressProtocolHTTPS &&
			proto != policyv1alpha1.EgressProtocolTCP && proto != policyv1alpha1.EgressProtocolTCPServerFirst:
			b.problem(kind, eg, "spec.ports[%d]: protocol %q is not http, https, tcp or tcp-server-first; %s", i, port.Protocol, portOut)
			continue
		case port.Number >= FirstProxyPort && port.Number <= LastProxyPort:
			b.problem(kind, eg, "spec.ports[%d]: port %d is one of the proxy's own (%d-%d); %s", i, port.Number, FirstProxyPort, LastProxyPort, portOut)
			continue
		case proto == policyv1alpha1.EgressProtocolHTTP && len(p.hosts) == 0:
			b.problem(kind, eg, "spec.ports[%d]: an http port needs hosts, matched against the Host header; %s", i, portOut)
			continue
		case tcpLike(proto) && len(p.ranges) == 0:
			b.problem(kind, eg, "spec.ports[%d]: a tcp port needs ipAddresses, else it matches every destination address; %s", i, portOut)
			continue
		case proto == policyv1alpha1.EgressProtocolHTTPS && len(p.hosts) == 0 && len(p.ranges) == 0:
			b.problem(kind, eg, "spec.ports[%d]: an https port needs hosts or ipAddresses; %s", i, portOut)
			continue
		}
		seen[port.Number] = true
		p.ports = append(p.ports, policyv1alpha1.EgressPort{Number: port.Number, Protocol: proto})
	}
	for i, ref := range s.Matches {
		if !ref.IsHTTPRouteGroup() {
			continue // an UpstreamTrafficSetting tunes, and restricts nothing
		}
		p.restricted = true
		g := groups[eg.Namespace+"/"+ref.Name]
		if g == nil {
			b.problem(kind, eg, "spec.matches[%d]: HTTPRouteGroup %s/%s does not exist; it matches no request", i, eg.Namespace, ref.Name)
			continue
		}
		p.http = append(p.http, g.matches...)
	}
	if len(p.sources) == 0 || len(p.ports) == 0 {
		b.problem(kind, eg, "no usable source or port is left; the Egress allows nothing")
		return nil
	}
	return p
}

// mergeEgress merges the policies (sorted by key) by source identity and
// port. A port that an earlier policy gives the same source with another
// protocol stays the earlier one's, and the later policy's is left out for
// that source, reported: the result does not depend on the inputs' order.
// tcp and tcp-server-first are one protocol here: both are proxied by
// address, and neither waits for the client.
func mergeEgress(pols []*egressPolicy, report func(p *egressPolicy, format string, args ...any)) map[Identity][]EgressPort {
	type slot struct {
		port  *EgressPort
		owner string
		hosts map[string]int // name → index in port.Hosts
	}
	byID := map[Identity]map[int32]*slot{}
	hostsOf := map[Identity]int{} // hosts of every port of the identity
	for _, p := range pols {
		for _, id := range p.sources {
			ports := byID[id]
			if ports == nil {
				ports = map[int32]*slot{}
				byID[id] = ports
			}
			for _, pp := range p.ports {
				s := ports[pp.Number]
				if s != nil && tcpLike(s.port.Protocol) != tcpLike(pp.Protocol) {
					report(p, "port %d is %s for %s by Egress %s, which sorts first; this Egress's %s is left out for that source",
						pp.Number, s.port.Protocol, id, s.owner, pp.Protocol)
					continue
				}
				if s == nil {
					s = &slot{port: &EgressPort{Port: pp.Number, Protocol: pp.Protocol}, owner: p.key, hosts: map[string]int{}}
				}
				before := len(s.port.Hosts)
				maxHosts := min(MaxEgressHostsPerPort, before+MaxEgressHostsPerSource-hostsOf[id])
				if !addEgress(s.port, s.hosts, p, pp.Protocol, maxHosts) {
					report(p, "port %d would give %s more than %d hosts or %d address ranges on the port, or %d hosts in all; this Egress's port is left out for that source",
						pp.Number, id, MaxEgressHostsPerPort, MaxEgressRangesPerPort, MaxEgressHostsPerSource)
					continue
				}
				hostsOf[id] += len(s.port.Hosts) - before
				ports[pp.Number] = s
			}
		}
	}
	out := make(map[Identity][]EgressPort, len(byID))
	for id, ports := range byID {
		list := make([]EgressPort, 0, len(ports))
		for _, s := range ports {
			slices.SortFunc(s.port.Hosts, func(a, c EgressHost) int { return cmp.Compare(a.Name, c.Name) })
			list = append(list, *s.port)
		}
		slices.SortFunc(list, func(a, c EgressPort) int { return cmp.Compare(a.Port, c.Port) })
		out[id] = list
	}
	return out
}

func tcpLike(p policyv1alpha1.EgressProtocol) bool {
	return p == policyv1alpha1.EgressProtocolTCP || p == policyv1alpha1.EgressProtocolTCPServerFirst
}

// addEgress adds what policy p allows on a port of protocol proto to ep,
// unless that would give it more than maxHosts hosts or too many ranges;
// it says whether it did. hosts indexes ep.Hosts by name.
func addEgress(ep *EgressPort, hosts map[string]int, p *egressPolicy, proto policyv1alpha1.EgressProtocol, maxHosts int) bool {
	useHosts := proto == policyv1alpha1.EgressProtocolHTTP || proto == policyv1alpha1.EgressProtocolHTTPS
	useRanges := proto != policyv1alpha1.EgressProtocolHTTP
	anyAddress := tcpLike(proto) && len(p.ranges) == 0
	var ranges []netip.Prefix
	if useRanges && !anyAddress && !ep.AnyAddress {
		ranges = collapseRanges(append(slices.Clone(ep.Ranges), p.ranges...))
		if len(ranges) > MaxEgressRangesPerPort {
			return false
		}
	}
	if useHosts {
		added := 0
		for _, h := range p.hosts {
			if _, ok := hosts[h]; !ok {
				added++
			}
		}
		if len(ep.Hosts)+added > maxHosts {
			return false
		}
		for _, h := range p.hosts {
			i, ok := hosts[h]
			if !ok {
				i = len(ep.Hosts)
				hosts[h] = i
				ep.Hosts = append(ep.Hosts, EgressHost{Name: h})
			}
			eh := &ep.Hosts[i]
			if proto != policyv1alpha1.EgressProtocolHTTP {
				continue
			}
			if !p.restricted {
				eh.AllowAll, eh.HTTP = true, nil
			} else if !eh.AllowAll {
				eh.HTTP = append(eh.HTTP, p.http...)
			}
		}
	}
	switch {
	case anyAddress || ep.AnyAddress:
		ep.AnyAddress, ep.Ranges = true, nil
	case useRanges:
		ep.Ranges = ranges
	}
	if proto == policyv1alpha1.EgressProtocolTCPServerFirst {
		ep.Protocol = proto
	}
	return true
}

// collapseRanges sorts and masks ranges and drops those inside another:
// Envoy takes the longest match, so an inner range of the same chain adds
// nothing, and a range repeated in one chain is refused.
func collapseRanges(rs []netip.Prefix) []netip.Prefix {
	slices.SortFunc(rs, func(a, c netip.Prefix) int {
		return cmp.Or(a.Addr().Compare(c.Addr()), cmp.Compare(a.Bits(), c.Bits()))
	})
	out := rs[:0]
	for _, r := range rs {
		if !slices.ContainsFunc(out, func(o netip.Prefix) bool { return o.Bits() <= r.Bits() && o.Contains(r.Addr()) }) {
			out = append(out, r)
		}
	}
	return out
}

// String is the port as problems and tests name it.
func (ep EgressPort) String() string { return fmt.Sprintf("%s/%d", ep.Protocol, ep.Port) }

// specialRanges hold the addresses an Egress range may not reach: the
// node's own (unspecified, loopback), link-local (the cloud's metadata
// server answers at 169.254.169.254 with the node's credentials) and
// multicast.
var specialRanges = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("::/128"), netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fe80::/10"), netip.MustParsePrefix("ff00::/8"),
}

// egressRangeProblem says why an Egress may not name the range p (masked
// and unmapped), or "".
func egressRangeProblem(p netip.Prefix) string {
	if p.Bits() == 0 {
		return "is every address: to let sources reach any destination, set the mesh's spec.egress.mode to Allow"
	}
	for _, s := range specialRanges {
		if p.Overlaps(s) {
			return fmt.Sprintf("holds addresses of %s (the node's own, link-local or multicast), which no Egress reaches", s)
		}
	}
	return ""
}
