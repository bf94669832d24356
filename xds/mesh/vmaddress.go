package mesh

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
)

// A MeshVM's addresses become endpoints of the Services it backs: every
// caller's proxy connects to them. An address that names no single host of
// its own would send those callers elsewhere: to themselves (loopback,
// unspecified), to whatever shares their link (link-local, which holds the
// cloud metadata service), to a group (multicast, broadcast), or to a pod
// whose address the VM took. CheckVMAddress is the one rule: the MeshVM
// webhook refuses the classes, the MeshVM controller leaves out of its
// EndpointSlices what the rule refuses, pods included, and Build leaves out
// every VM endpoint it refuses, and every pod endpoint of a class it
// refuses (a pod's address must be the pod's own instead of no pod's).

// VMAddressError says why an address cannot be a MeshVM's.
type VMAddressError struct {
	// Address is the address as written.
	Address string
	// Pod is the pod, as namespace/name, whose IP the address is; empty when
	// the address is of a class no VM may have.
	Pod string
	// Why explains the refusal.
	Why string
}

func (e *VMAddressError) Error() string { return e.Address + " " + e.Why }

// PodIPs maps the IPs of a cluster's pods to the pod holding each, as
// namespace/name. Of pods sharing an IP (those of the host's network), the
// first by name holds it, whatever the order they were added in.
type PodIPs map[netip.Addr]string

// Add records the IPs of pod, unless it has ended: the IP of a Succeeded or
// Failed pod goes back to the pool while the pod object stays.
func (ips PodIPs) Add(pod *corev1.Pod) {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return
	}
	name := pod.Namespace + "/" + pod.Name
	add := func(s string) {
		if ip, err := netip.ParseAddr(s); err == nil {
			ip = ip.Unmap().WithZone("")
			if held, taken := ips[ip]; !taken || name < held {
				ips[ip] = name
			}
		}
	}
	add(pod.Status.PodIP)
	for _, ip := range pod.Status.PodIPs {
		add(ip.IP)
	}
}

// metadataAddresses are cloud metadata services outside the link-local
// ranges: AWS's and GCP's IPv6 instance metadata, Alibaba Cloud's, and
// Azure's WireServer (which hands a VM its provisioning data and agent
// configuration). They answer any caller of the node, with the node's
// credentials.
var metadataAddresses = map[netip.Addr]bool{
	netip.MustParseAddr("fd00:ec2::254"):   true,
	netip.MustParseAddr("fd20:ce::254"):    true,
	netip.MustParseAddr("100.100.100.200"): true,
	netip.MustParseAddr("168.63.129.16"):   true,
}

var (
	metadataV4    = netip.MustParseAddr("169.254.169.254")
	broadcast     = netip.MustParseAddr("255.255.255.255")
	thisNetworkV4 = netip.MustParsePrefix("0.0.0.0/8")
	// The IPv6 prefixes whose addresses carry an IPv4 address a host
	// reaches through them: IPv4-compatible (::/96, deprecated, still
	// routed by automatic tunnels), NAT64's well-known prefix (a NAT64
	// gateway connects to the IPv4 address in the last four bytes) and 6to4
	// (2002::/16, the IPv4 relay in bytes 2 to 5).
	compatibleV6 = netip.MustParsePrefix("::/96")
	nat64V6      = netip.MustParsePrefix("64:ff9b::/96")
	sixToFourV6  = netip.MustParsePrefix("2002::/16")
)

// embeddedV4 is the IPv4 address that ip, an IPv6 address, reaches through
// its prefix, with the prefix's name; ok is false when ip embeds none. :: and
// ::1, though in ::/96, are IPv6's own unspecified and loopback addresses.
func embeddedV4(ip netip.Addr) (v4 netip.Addr, prefix string, ok bool) {
	if !ip.Is6() || ip.IsUnspecified() || ip.IsLoopback() {
		return netip.Addr{}, "", false
	}
	b := ip.As16()
	switch {
	case compatibleV6.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), "IPv4-compatible, ::/96", true
	case nat64V6.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), "NAT64, 64:ff9b::/96", true
	case sixToFourV6.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), "6to4, 2002::/16", true
	}
	return netip.Addr{}, "", false
}

// CheckVMAddress says why addr cannot be an address of a MeshVM, or nil when
// it can. pods holds the cluster's pod IPs; nil checks the address's class
// only, as admission does (a pod may take the address after), and as Build
// does for a pod's endpoint (whose address must be the pod's own instead).
//
// An IPv6 address that reaches an IPv4 address (IPv4-mapped, ::ffff:0:0/96,
// and the prefixes of embeddedV4) is checked as that IPv4 address.
func CheckVMAddress(addr string, pods PodIPs) error {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return &VMAddressError{Address: addr, Why: "is not an IP address"}
	}
	if ip.Zone() != "" {
		return &VMAddressError{Address: addr, Why: "has an IPv6 zone: a zone names an interface of one host, not an address its peers reach"}
	}
	// An IPv4-mapped IPv6 address reaches the IPv4 address it maps.
	ip = ip.Unmap()
	embeds := ""
	if v4, prefix, ok := embeddedV4(ip); ok {
		ip, embeds = v4, fmt.Sprintf(" (it embeds the IPv4 address %s: %s)", v4, prefix)
	}
	if why := unsafeClass(ip); why != "" {
		return &VMAddressError{Address: addr, Why: why + embeds}
	}
	if pod, ok := pods[ip]; ok {
		return &VMAddressError{Address: addr, Pod: pod,
			Why: "is the IP of pod " + pod + ": a VM cannot take a pod's address, and the mesh would send the VM's callers to the pod" + embeds}
	}
	return nil
}

// unsafeClass says why ip, without zone and unmapped, names no single host
// of its own, or "" when it does.
func unsafeClass(ip netip.Addr) string {
	switch {
	case ip.IsUnspecified() || ip.Is4() && thisNetworkV4.Contains(ip):
		return "is unspecified (0.0.0.0/8, ::): it names no host, and a connection to it reaches the caller's own host"
	case ip.IsLoopback():
		return "is a loopback address (127.0.0.0/8, ::1): each caller would reach its own host"
	case ip == metadataV4 || metadataAddresses[ip]:
		return "is a cloud metadata service's address: each caller would reach its own node's metadata service"
	case ip.IsLinkLocalUnicast():
		return "is link-local (169.254.0.0/16, which holds the cloud metadata address 169.254.169.254, or fe80::/10): it reaches whatever shares the caller's own link"
	case ip.IsMulticast():
		return "is a multicast address (224.0.0.0/4, ff00::/8): it names a group of hosts, not one VM"
	case ip == broadcast:
		return "is the broadcast address: it names every host of the caller's network"
	}
	return ""
}
