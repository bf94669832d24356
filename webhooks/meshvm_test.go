package webhooks_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
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

// TestUpdatingTheFirstVMOfANamespaceInNoMesh: in a namespace in no mesh,
// the first MeshVM decides the mesh of the others. A later VM of another
// mesh, made while the namespace was that mesh's member, is refused an
// update; the first VM is not refused one for it: the webhook counts the
// stored copy of the VM it updates, with its own creation and mesh.
// Before, it left the VM out, and the later VM was then the first.
func TestUpdatingTheFirstVMOfANamespaceInNoMesh(t *testing.T) {
	ctx := context.Background()
	for _, m := range []string{"first-vm", "later-vm"} {
		if err := k8s.Create(ctx, &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: m}}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	ns := namespace(t, nil, nil)
	// Named so that, created in the same second, a-first is still first.
	first := addressedVM(ns, "a-first", "192.0.2.70")
	first.Spec.Mesh = "first-vm"
	if err := k8s.Create(ctx, first); err != nil {
		t.Fatal(err)
	}
	// The namespace joins mesh later-vm, which takes a VM of it, and leaves.
	label := func(mesh string) {
		t.Helper()
		n := &corev1.Namespace{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: ns}, n); err != nil {
			t.Fatal(err)
		}
		n.Labels = map[string]string{}
		if mesh != "" {
			n.Labels[meshv1alpha1.MonitorLabel] = mesh
		}
		if err := k8s.Update(ctx, n); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 10*time.Second, func() error {
			if err := cache.Get(ctx, client.ObjectKey{Name: ns}, n); err != nil {
				return err
			}
			if got := n.Labels[meshv1alpha1.MonitorLabel]; got != mesh {
				return fmt.Errorf("the webhooks' cache has namespace %s in mesh %q, want %q", ns, got, mesh)
			}
			return nil
		})
	}
	label("later-vm")
	later := addressedVM(ns, "b-later", "192.0.2.71")
	later.Spec.Mesh = "later-vm"
	if err := k8s.Create(ctx, later); err != nil {
		t.Fatalf("a VM of the namespace's mesh was refused: %v", err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		return cache.Get(ctx, client.ObjectKeyFromObject(later), &meshv1alpha1.MeshVM{})
	})
	label("")

	update := func(vm *meshv1alpha1.MeshVM) error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(vm), vm); err != nil {
			t.Fatal(err)
		}
		vm.Spec.Ports = append(vm.Spec.Ports, meshv1alpha1.VMPort{Name: "admin", Port: 9090, Protocol: meshv1alpha1.ProtocolHTTP})
		return k8s.Update(ctx, vm)
	}
	if err := update(first); err != nil {
		t.Errorf("the namespace's first VM was refused an update: %v", err)
	}
	want := fmt.Sprintf(`spec.mesh "later-vm": namespace %s is in no mesh and holds MeshVM a-first of mesh "first-vm", created before`, ns)
	if err := update(later); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("the later VM's update: %v; want a refusal containing %q", err, want)
	}
}
