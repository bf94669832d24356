package runner_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

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

	podNames := func(in mesh.Inputs) []string {
		var names []string
		for _, p := range in.Pods {
			if p.Namespace == ns {
				names = append(names, p.Name)
			}
		}
		return names
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		in, _, err := mesh.ListInformers(ctx, informers)
		if err != nil {
			return err
		}
		if !slices.Equal(podNames(in), []string{"store-1"}) {
			return errors.New("pod store-1 is not in the informer store yet")
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
	for kind, n := range map[string][2]int{
		"namespaces": {len(listed.Namespaces), len(first.Namespaces)},
		"services":   {len(listed.Services), len(first.Services)},
		"pods":       {len(listed.Pods), len(first.Pods)},
	} {
		if n[0] != n[1] {
			t.Errorf("List has %d %s, ListInformers %d", n[0], kind, n[1])
		}
	}
	if len(meshes) == 0 || meshes[0].Name != meshName {
		t.Errorf("meshes: %v", meshes)
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
