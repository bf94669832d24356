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
// the long IPv6 form); a pod's IP is refused naming the pod, unless the pod
// has ended; an address of a host is accepted.
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
		{"10.1.0.6", "", ""}, // the failed pod's IP is free again
		{"192.0.2.10", "", ""},
		{"2001:db8::10", "", ""},
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
