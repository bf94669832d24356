package runner_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// The runner reads the model's inputs from the informers' stores in place:
// the same objects as List, without copying them on every sync.
func TestListInformersReadsTheStoresInPlace(t *testing.T) {
	ctx := context.Background()
	ns := memberNamespace(t)
	workload(t, ns, "store-1", "store", nil)
	service(t, ns, "store", "http", 80, "http")

	// Other tests' objects may arrive at any time: look at this test's
	// namespace only, once its pod and Service are in the cache.
	inNS := func(in mesh.Inputs) [2]int {
		var n [2]int
		for _, p := range in.Pods {
			if p.Namespace == ns {
				n[0]++
			}
		}
		for _, s := range in.Services {
			if s.Namespace == ns {
				n[1]++
			}
		}
		return n
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		in, _, err := mesh.List(ctx, informers)
		if err != nil {
			return err
		}
		if n := inNS(in); n != [2]int{1, 1} {
			return fmt.Errorf("the cache holds %v pods and services of %s, want 1 of each", n, ns)
		}
		return nil
	})
	listed, _, err := mesh.List(ctx, informers)
	if err != nil {
		t.Fatal(err)
	}
	first, meshes, err := mesh.ListInformers(ctx, informers)
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := mesh.ListInformers(ctx, informers)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := inNS(listed), inNS(first); a != b || a != [2]int{1, 1} {
		t.Errorf("List has %v pods and services in %s, ListInformers %v; want 1 of each", a, ns, b)
	}
	// Other tests make meshes of their own, in any order.
	if !slices.ContainsFunc(meshes, func(m *meshv1alpha1.MeshInstance) bool { return m.Name == meshName }) {
		t.Errorf("%d meshes listed, want %s among them", len(meshes), meshName)
	}
	pod := func(in mesh.Inputs) any {
		for _, p := range in.Pods {
			if p.Namespace == ns {
				return p
			}
		}
		return nil
	}
	if pod(first) != pod(second) {
		t.Error("two reads returned different copies of the same pod: the store was copied")
	}
}
