package mesh_test

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// TestCheckVMAddress: each address class no VM may have is refused, saying
// which class and why, in each spelling that reaches it (IPv4-mapped IPv6,
// the long IPv6 form, and an IPv6 address embedding the IPv4 one:
// IPv4-compatible, NAT64, 6to4); each cloud's metadata address is refused
// (AWS, GCP, Azure's WireServer, Alibaba); a pod's IP is refused naming the
// pod, in those spellings too, unless the pod has ended; an address of a
// host is accepted.
func TestCheckVMAddress(t *testing.T) {
	pods := mesh.PodIPs{}
	for _, p := range []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1"}, Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.1.0.5",
			PodIPs: []corev1.PodIP{{IP: "10.1.0.5"}, {IP: "fd00:10::5"}}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "job-1"}, Status: corev1.PodStatus{Phase: corev1.PodFailed, PodIP: "10.1.0.6"}},
	} {
		pods.Add(p)
	}
	for _, tc := range []struct {
		addr string
		// want is in the refusal; empty when the address is accepted. pod
		// is the pod the refusal names.
		want, pod string
	}{
		{"127.0.0.1", "is a loopback address", ""},
		{"127.10.0.1", "is a loopback address", ""},
		{"::1", "is a loopback address", ""},
		{"0:0:0:0:0:0:0:1", "is a loopback address", ""},
		{"::ffff:127.0.0.1", "is a loopback address", ""},
		{"0.0.0.0", "is unspecified", ""},
		{"0.1.2.3", "is unspecified", ""},
		{"::", "is unspecified", ""},
		{"169.254.169.254", "is a cloud metadata service's address", ""},
		{"::ffff:169.254.169.254", "is a cloud metadata service's address", ""},
		{"fd00:ec2::254", "is a cloud metadata service's address", ""},
		{"fd20:ce::254", "is a cloud metadata service's address", ""},
		{"fd20:00ce:0000:0000:0000:0000:0000:0254", "is a cloud metadata service's address", ""},
		{"168.63.129.16", "is a cloud metadata service's address", ""},
		{"::ffff:168.63.129.16", "is a cloud metadata service's address", ""},
		{"100.100.100.200", "is a cloud metadata service's address", ""},
		// An IPv6 address embedding an IPv4 one is checked as the IPv4:
		// IPv4-compatible (::/96), NAT64 (64:ff9b::/96), 6to4 (2002::/16).
		{"::127.0.0.1", "is a loopback address", ""},
		{"::7f00:1", "is a loopback address", ""},
		{"::169.254.169.254", "is a cloud metadata service's address", ""},
		{"::0.1.2.3", "is unspecified", ""},
		{"64:ff9b::a9fe:a9fe", "is a cloud metadata service's address", ""},
		{"64:ff9b::169.254.169.254", "is a cloud metadata service's address", ""},
		{"64:ff9b::127.0.0.1", "is a loopback address", ""},
		{"64:ff9b::a9fe:101", "is link-local", ""},
		{"64:ff9b::e000:1", "is a multicast address", ""},
		{"64:ff9b::ffff:ffff", "is the broadcast address", ""},
		{"64:ff9b::a83f:8110", "is a cloud metadata service's address", ""},
		{"2002:a9fe:a9fe::1", "is a cloud metadata service's address", ""},
		{"2002:7f00:1::", "is a loopback address", ""},
		{"2002:a9fe:a9fe:1234:5678::1", "is a cloud metadata service's address", ""},
		{"2002::1", "is unspecified", ""},
		{"169.254.10.1", "is link-local", ""},
		{"fe80::1", "is link-local", ""},
		{"fe80::1%eth0", "has an IPv6 zone", ""},
		{"224.0.0.1", "is a multicast address", ""},
		{"239.255.255.250", "is a multicast address", ""},
		{"ff02::1", "is a multicast address", ""},
		{"255.255.255.255", "is the broadcast address", ""},
		{"warehouse.example", "is not an IP address", ""},
		{"10.1.0.5", "is the IP of pod shop/web-1", "shop/web-1"},
		{"::ffff:10.1.0.5", "is the IP of pod shop/web-1", "shop/web-1"},
		{"fd00:10::5", "is the IP of pod shop/web-1", "shop/web-1"},
		{"64:ff9b::10.1.0.5", "is the IP of pod shop/web-1", "shop/web-1"},
		{"2002:a01:5::1", "is the IP of pod shop/web-1", "shop/web-1"},
		{"::10.1.0.5", "is the IP of pod shop/web-1", "shop/web-1"},
		{"10.1.0.6", "", ""}, // the failed pod's IP is free again
		{"192.0.2.10", "", ""},
		{"2001:db8::10", "", ""},
		// Embedding a host's IPv4 address is an address of that host.
		{"::192.0.2.10", "", ""},
		{"64:ff9b::192.0.2.10", "", ""},
		{"2002:c000:20a::1", "", ""},
	} {
		err := mesh.CheckVMAddress(tc.addr, pods)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: refused: %v", tc.addr, err)
			}
			continue
		}
		var refused *mesh.VMAddressError
		if !errors.As(err, &refused) || !strings.HasPrefix(err.Error(), tc.addr+" "+tc.want) || refused.Pod != tc.pod {
			t.Errorf("%s: %v, want a refusal saying %q, of pod %q", tc.addr, err, tc.want, tc.pod)
		}
		// Admission sees no pods: it refuses the classes only.
		if err := mesh.CheckVMAddress(tc.addr, nil); (err == nil) != (tc.pod != "") {
			t.Errorf("%s without pods: %v", tc.addr, err)
		}
	}
}
