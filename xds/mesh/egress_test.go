package mesh_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
)

func egress(name string, hosts, ranges []string, ports ...policyv1alpha1.EgressPort) *policyv1alpha1.Egress {
	return &policyv1alpha1.Egress{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"},
		Spec: policyv1alpha1.EgressSpec{
			Sources:     []policyv1alpha1.EgressSource{{Kind: policyv1alpha1.EgressSourceServiceAccount, Name: "client", Namespace: "shop"}},
			Hosts:       hosts,
			IPAddresses: ranges,
			Ports:       ports,
		},
	}
}

func port(n int32, p policyv1alpha1.EgressProtocol) policyv1alpha1.EgressPort {
	return policyv1alpha1.EgressPort{Number: n, Protocol: p}
}

func hostList(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d.example.com", prefix, i)
	}
	return out
}

// TestEgressInputIsCheckedAndMergedInOneWay: untrusted Egresses (lists past
// the CRD's limits, odd host names, overlapping ranges, one host in two
// Egresses, one port with two protocols, more hosts than a port takes)
// give problems and one merge, whatever the order of the inputs.
func TestEgressInputIsCheckedAndMergedInOneWay(t *testing.T) {
	http, https, tcp := policyv1alpha1.EgressProtocolHTTP, policyv1alpha1.EgressProtocolHTTPS, policyv1alpha1.EgressProtocolTCP
	egs := []*policyv1alpha1.Egress{
		egress("a-too-long", hostList("a", 65), nil, port(80, http)),
		egress("b-https", []string{"API.example.com", "odd_host!", "*.cdn.example.com"}, []string{"10.0.0.0/8", "10.1.0.0/16", "10.0.0.1/8", "not-a-cidr"}, port(443, https), port(80, http)),
		egress("c-tcp", nil, []string{"192.0.2.0/24"}, port(443, tcp), port(5432, tcp), port(15001, tcp)),
		egress("d-http", []string{"api.example.com"}, nil, port(80, http)),
	}
	for i := range 4 {
		egs = append(egs, egress(fmt.Sprintf("e-many-%d", i), hostList(fmt.Sprintf("e%d-", i), 64), nil, port(8080, http)))
	}
	egs = append(egs, egress("f-over", hostList("f", 1), nil, port(8080, http)))
	build := func(order []*policyv1alpha1.Egress) ([]mesh.EgressPort, []string) {
		in, err := meshtest.Decode([]byte(base))
		if err != nil {
			t.Fatal(err)
		}
		in.Egresses = order
		m, ps := mesh.Build(in)
		var problems []string
		for _, p := range ps {
			problems = append(problems, p.Error())
		}
		return m.Egress(mesh.Identity{Namespace: "shop", ServiceAccount: "client"}), problems
	}
	got, problems := build(egs)
	reversed := slices.Clone(egs)
	slices.Reverse(reversed)
	if again, againProblems := build(reversed); !cmp.Equal(got, again, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })) || !slices.Equal(problems, againProblems) {
		t.Errorf("the merge depends on the order of the inputs:\n%v\n%v\n%v\n%v", got, again, problems, againProblems)
	}
	for _, want := range []string{
		"Egress shop/a-too-long: spec.hosts has 65 items, more than 64",
		`Egress shop/b-https: spec.hosts[1]: "odd_host!" is not a DNS name`,
		`Egress shop/b-https: spec.ipAddresses[3]: "not-a-cidr" is not a CIDR`,
		"Egress shop/c-tcp: port 443 is https for shop/client by Egress shop/b-https, which sorts first",
		"Egress shop/c-tcp: spec.ports[2]: port 15001 is one of the proxy's own",
		"Egress shop/f-over: port 8080 would give shop/client more than 256 hosts",
	} {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, want) }) {
			t.Errorf("no problem says %q; problems:\n%s", want, strings.Join(problems, "\n"))
		}
	}
	summary := map[int32]string{}
	for _, ep := range got {
		var hosts []string
		for _, h := range ep.Hosts {
			hosts = append(hosts, fmt.Sprintf("%s(all=%t)", h.Name, h.AllowAll))
		}
		if len(hosts) > 4 {
			hosts = []string{fmt.Sprint(len(hosts), " hosts")}
		}
		summary[ep.Port] = fmt.Sprintf("%s %v %v any=%t", ep.Protocol, hosts, ep.Ranges, ep.AnyAddress)
	}
	want := map[int32]string{
		80:   "http [api.example.com(all=true)] [] any=false",
		443:  "https [api.example.com(all=false)] [10.0.0.0/8] any=false",
		5432: "tcp [] [192.0.2.0/24] any=false",
		8080: "http [256 hosts] [] any=false",
	}
	if d := cmp.Diff(want, summary); d != "" {
		t.Errorf("merged egress (-want +got):\n%s", d)
	}
}

// TestEgressHostsOfASourceAreBounded: one Egress within the CRD's limits
// (64 hosts on 64 ports) would be 4,096 clusters in every proxy of its
// source; the ports past MaxEgressHostsPerSource hosts are left out.
func TestEgressHostsOfASourceAreBounded(t *testing.T) {
	var ports []policyv1alpha1.EgressPort
	for i := range int32(64) {
		ports = append(ports, port(20000+i, policyv1alpha1.EgressProtocolHTTPS))
	}
	in, err := meshtest.Decode([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	in.Egresses = []*policyv1alpha1.Egress{egress("wide", hostList("w", 64), nil, ports...)}
	m, ps := mesh.Build(in)
	got := m.Egress(mesh.Identity{Namespace: "shop", ServiceAccount: "client"})
	if want := mesh.MaxEgressHostsPerSource / 64; len(got) != want || got[len(got)-1].Port != 20000+int32(want)-1 {
		t.Errorf("%d ports kept, want the first %d", len(got), want)
	}
	if len(ps) != 64-16 || !strings.Contains(ps[0].Error(), "hosts in all") {
		t.Errorf("problems: %v", ps)
	}
}

// TestEgressSourcesAreOfItsOwnNamespace: an Egress grants egress only to
// service accounts of its own namespace; one of namespace store naming
// shop's client (a namespace of the mesh with workloads) grants nothing
// and says so.
func TestEgressSourcesAreOfItsOwnNamespace(t *testing.T) {
	in, err := meshtest.Decode([]byte(base + `
---
apiVersion: v1
kind: Namespace
metadata: {name: store, labels: {openservicemesh.io/monitor: osm}}
`))
	if err != nil {
		t.Fatal(err)
	}
	eg := egress("other", []string{"api.example.com"}, nil, port(443, policyv1alpha1.EgressProtocolHTTPS))
	eg.Namespace = "store"
	in.Egresses = []*policyv1alpha1.Egress{eg}
	m, ps := mesh.Build(in)
	if got := m.Egress(mesh.Identity{Namespace: "shop", ServiceAccount: "client"}); len(got) != 0 {
		t.Errorf("store's Egress grants shop/client egress: %v", got)
	}
	if !slices.ContainsFunc(ps, func(p mesh.Problem) bool { return strings.Contains(p.Error(), "is not the Egress's namespace store") }) {
		t.Errorf("problems: %v", ps)
	}
}

// TestEgressReachesNoAddressByNameOnly: a wildcard host and a tcp port
// without ipAddresses would match any destination address by port (and a
// server name or Host the caller chooses): both are left out and reported.
func TestEgressReachesNoAddressByNameOnly(t *testing.T) {
	in, err := meshtest.Decode([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	in.Egresses = []*policyv1alpha1.Egress{egress("wild", []string{"*.example.com"}, nil, port(443, policyv1alpha1.EgressProtocolHTTPS), port(5432, policyv1alpha1.EgressProtocolTCP))}
	m, ps := mesh.Build(in)
	if got := m.Egress(mesh.Identity{Namespace: "shop", ServiceAccount: "client"}); len(got) != 0 {
		t.Errorf("egress by name only: %v", got)
	}
	for _, want := range []string{`"*.example.com"`, "a tcp port needs ipAddresses"} {
		if !slices.ContainsFunc(ps, func(p mesh.Problem) bool { return strings.Contains(p.Error(), want) }) {
			t.Errorf("no problem says %s: %v", want, ps)
		}
	}
}

// TestEgressRangesReachNoSpecialAddress: an Egress's ipAddresses are
// untrusted input. A range that is every address (egress.mode Allow says
// that), or that holds the node's own, link-local (cloud metadata at
// 169.254.169.254), multicast or unspecified addresses, is refused and
// reported; an IPv4-mapped IPv6 range is the IPv4 range it maps, and is
// judged as such.
func TestEgressRangesReachNoSpecialAddress(t *testing.T) {
	in, err := meshtest.Decode([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	bad := []string{"0.0.0.0/0", "::/0", "169.254.169.254/32", "::ffff:169.254.169.254/128", "127.0.0.1/32", "::1/128",
		"fe80::/64", "224.0.0.1/32", "ff02::1/128", "0.0.0.0/1", "128.0.0.0/1", "0.0.0.0/32"}
	in.Egresses = []*policyv1alpha1.Egress{egress("special", nil, append(bad, "::ffff:203.0.113.0/120", "2001:db8::/32"),
		port(5432, policyv1alpha1.EgressProtocolTCP))}
	m, ps := mesh.Build(in)
	got := m.Egress(mesh.Identity{Namespace: "shop", ServiceAccount: "client"})
	var ranges []string
	for _, p := range got {
		for _, r := range p.Ranges {
			ranges = append(ranges, r.String())
		}
	}
	if want := []string{"203.0.113.0/24", "2001:db8::/32"}; !slices.Equal(ranges, want) {
		t.Errorf("ranges: got %v, want %v", ranges, want)
	}
	for i, b := range bad {
		want := fmt.Sprintf("spec.ipAddresses[%d]: %q", i, b)
		if !slices.ContainsFunc(ps, func(p mesh.Problem) bool { return strings.Contains(p.Error(), want) }) {
			t.Errorf("no problem says %s: %v", want, ps)
		}
	}
}
