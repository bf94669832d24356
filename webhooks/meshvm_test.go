package webhooks_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/webhooks"
)

// unsafeVMAddresses are addresses of each class no MeshVM may have, with what
// the MeshVM webhook says of each.
var unsafeVMAddresses = []struct{ addr, why string }{
	{"127.0.0.1", "is a loopback address (127.0.0.0/8, ::1): each caller would reach its own host"},
	{"::1", "is a loopback address"},
	{"0.0.0.0", "is unspecified (0.0.0.0/8, ::): it names no host"},
	{"0.1.2.3", "is unspecified"},
	{"::", "is unspecified"},
	{"169.254.169.254", "is a cloud metadata service's address: each caller would reach its own node's metadata service"},
	{"fd00:ec2::254", "is a cloud metadata service's address"},
	{"fd20:ce::254", "is a cloud metadata service's address"},
	{"168.63.129.16", "is a cloud metadata service's address"},
	{"::127.0.0.1", "is a loopback address (127.0.0.0/8, ::1): each caller would reach its own host (it embeds the IPv4 address 127.0.0.1: IPv4-compatible, ::/96)"},
	{"64:ff9b::a9fe:a9fe", "is a cloud metadata service's address: each caller would reach its own node's metadata service (it embeds the IPv4 address 169.254.169.254: NAT64, 64:ff9b::/96)"},
	{"2002:a9fe:a9fe::1", "is a cloud metadata service's address: each caller would reach its own node's metadata service (it embeds the IPv4 address 169.254.169.254: 6to4, 2002::/16)"},
	{"169.254.1.1", "is link-local (169.254.0.0/16, which holds the cloud metadata address 169.254.169.254, or fe80::/10)"},
	{"fe80::1", "is link-local"},
	{"224.0.0.251", "is a multicast address (224.0.0.0/4, ff00::/8): it names a group of hosts, not one VM"},
	{"ff02::1", "is a multicast address"},
	{"255.255.255.255", "is the broadcast address: it names every host of the caller's network"},
}

func addressedVM(ns, name string, addrs ...string) *meshv1alpha1.MeshVM {
	return &meshv1alpha1.MeshVM{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: meshv1alpha1.MeshVMSpec{
		Mesh: "addressed", ServiceAccountName: "warehouse", Addresses: addrs,
		Ports: []meshv1alpha1.VMPort{{Name: "http", Port: 8080, Protocol: meshv1alpha1.ProtocolHTTP}}}}
}

// TestVMAddressesOfNoHostAreRefused: through the real API server, a MeshVM
// with an address of each unsafe class is refused, naming the field and the
// address: by the CRD's CEL rule for what it knows (loopback, unspecified,
// link-local, multicast, broadcast), by the webhook for the rest. The
// webhook alone refuses every class, saying which and why, for a CRD
// without the rule (the webhook's failure policy is Ignore; CEL always
// holds). An address of a host is accepted.
func TestVMAddressesOfNoHostAreRefused(t *testing.T) {
	ctx := context.Background()
	ns := meshNamespace(t, "addressed", nil)
	for i, tc := range unsafeVMAddresses {
		t.Run(tc.addr, func(t *testing.T) {
			vm := addressedVM(ns, fmt.Sprintf("vm-%d", i), fmt.Sprintf("192.0.2.%d", 100+i), tc.addr)
			err := k8s.Create(ctx, vm)
			if err == nil {
				t.Fatal("accepted")
			}
			if msg := err.Error(); !strings.Contains(msg, "spec.addresses[1]") || !strings.Contains(msg, tc.addr) ||
				!strings.Contains(msg, "each address must name one host") && !strings.Contains(msg, tc.why) {
				t.Errorf("refused with %q; want spec.addresses[1], %s and why", msg, tc.addr)
			}

			_, err = webhooks.MeshVMValidator{Reader: cache}.Validate(ctx, vm)
			if want := fmt.Sprintf("MeshVM %s/%s: spec.addresses[1]: %s %s", ns, vm.Name, tc.addr, tc.why); err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("the webhook says %v; want %q", err, want)
			}
		})
	}
	if err := k8s.Create(ctx, addressedVM(ns, "host", "192.0.2.60", "2001:db8::60", "10.20.0.1")); err != nil {
		t.Errorf("addresses of a host were refused: %v", err)
	}
}
