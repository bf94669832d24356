package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Run by hand (go run ./hack/demo/mesh), the demo says what it is missing
// before it starts anything.
func TestCheckOptions(t *testing.T) {
	dir := t.TempDir()
	full, partial := filepath.Join(dir, "full"), filepath.Join(dir, "partial")
	for _, d := range []string{full, partial} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	touch := func(path string) {
		if err := os.WriteFile(path, nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		touch(filepath.Join(full, b))
	}
	touch(filepath.Join(partial, "etcd"))
	touch(filepath.Join(partial, "kube-apiserver"))
	operator := filepath.Join(dir, "osm-operator")
	touch(operator)

	for _, c := range []struct {
		name string
		o    options
		want []string // what the error names; none: no error
	}{
		{"everything there", options{assets: full, operator: operator}, nil},
		{"no control plane", options{operator: operator}, []string{"-assets", "KUBEBUILDER_ASSETS"}},
		{"no kube-controller-manager", options{assets: partial, operator: operator}, []string{partial, "no kube-controller-manager", "hack/build-envtest.sh kube-controller-manager"}},
		{"no operator", options{assets: full}, []string{"-operator"}},
		{"the operator not built", options{assets: full, operator: filepath.Join(dir, "missing")}, []string{"the operator binary", filepath.Join(dir, "missing")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkOptions(c.o)
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("checkOptions = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("checkOptions = nil, want an error naming %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("checkOptions = %q, want it to name %q", err, w)
				}
			}
		})
	}
}

// TestAddressesInReadsAnIngressPolicy: a policy for callers outside the
// mesh is shown by the addresses it names.
func TestAddressesInReadsAnIngressPolicy(t *testing.T) {
	p := &rbacv3.Policy{Principals: []*rbacv3.Principal{{Identifier: &rbacv3.Principal_OrIds{OrIds: &rbacv3.Principal_Set{Ids: []*rbacv3.Principal{
		{Identifier: &rbacv3.Principal_DirectRemoteIp{DirectRemoteIp: &corev3.CidrRange{AddressPrefix: "10.244.0.7", PrefixLen: wrapperspb.UInt32(32)}}},
		{Identifier: &rbacv3.Principal_DirectRemoteIp{DirectRemoteIp: &corev3.CidrRange{AddressPrefix: "192.168.0.0", PrefixLen: wrapperspb.UInt32(16)}}},
	}}}}}}
	got := addressesIn(marshalPolicies(map[string]*rbacv3.Policy{"p": p})["p"])
	if want := []string{"10.244.0.7/32", "192.168.0.0/16"}; !slices.Equal(got, want) {
		t.Errorf("addresses %v, want %v", got, want)
	}
}
