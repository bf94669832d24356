package cache_test

import (
	"context"
	"os"
	"slices"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	corev1 "k8s.io/api/core/v1"

	"github.com/open-service-mesh/osm-operator/xds/cache"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

func translated(t *testing.T, mutate func(*mesh.Inputs)) (*mesh.Mesh, map[string]*translate.Resources) {
	t.Helper()
	data, err := os.ReadFile("../translate/testdata/in/bookstore.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in, err := meshtest.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(&in)
	}
	m, _ := mesh.Build(in)
	out := map[string]*translate.Resources{}
	sh := translate.NewShared()
	for _, g := range m.Groups {
		r, err := sh.Translate(m.View(g), &translate.Certificates{CertChain: []byte("c"), PrivateKey: []byte("k"), TrustBundle: []byte("ca")})
		if err != nil {
			t.Fatal(err)
		}
		out[g.String()] = r
	}
	return m, out
}

// TestVersionsAreContentHashes: two caches fed the same mesh (a restart, or a
// second replica) hold the same versions, and republishing unchanged config
// pushes nothing.
func TestVersionsAreContentHashes(t *testing.T) {
	ctx := context.Background()
	_, groups := translated(t, nil)
	a, b := cache.New(&cache.Nodes{}, nil), cache.New(&cache.Nodes{}, nil)
	for g, r := range groups {
		for _, c := range []*cache.Cache{a, b} {
			changed, err := c.Update(ctx, g, r)
			if err != nil {
				t.Fatal(err)
			}
			if len(changed) == 0 {
				t.Fatalf("group %s: a new group changed nothing", g)
			}
		}
	}
	for g := range groups {
		sa, _ := a.GetSnapshot(g)
		sb, _ := b.GetSnapshot(g)
		for _, url := range []string{"type.googleapis.com/envoy.config.listener.v3.Listener", "type.googleapis.com/envoy.config.cluster.v3.Cluster"} {
			if sa.GetVersion(url) != sb.GetVersion(url) || sa.GetVersion(url) == "" {
				t.Errorf("group %s %s: versions %q and %q", g, url, sa.GetVersion(url), sb.GetVersion(url))
			}
		}
	}
	// Translating again from scratch gives the same content: nothing to push.
	_, again := translated(t, nil)
	for g, r := range again {
		changed, err := a.Update(ctx, g, r)
		if err != nil {
			t.Fatal(err)
		}
		if len(changed) != 0 {
			t.Errorf("group %s: unchanged config changed %v", g, changed)
		}
	}
}

// TestAnEndpointChangeChangesOnlyEndpoints: moving an endpoint changes the
// endpoint version of the groups that see it, and nothing else.
func TestAnEndpointChangeChangesOnlyEndpoints(t *testing.T) {
	ctx := context.Background()
	_, before := translated(t, nil)
	c := cache.New(&cache.Nodes{}, nil)
	for g, r := range before {
		if _, err := c.Update(ctx, g, r); err != nil {
			t.Fatal(err)
		}
	}
	_, after := translated(t, func(in *mesh.Inputs) {
		// The endpoint moves as a pod's does: its pod has the new address
		// (the model believes an endpoint only at its pod's IP).
		for _, es := range in.EndpointSlices {
			if es.Name != "bookstore-v2-abc" {
				continue
			}
			es.Endpoints[0].Addresses = []string{"10.244.1.99"}
			for _, p := range in.Pods {
				if ref := es.Endpoints[0].TargetRef; ref != nil && p.Name == ref.Name && p.Namespace == es.Namespace {
					p.Status.PodIP, p.Status.PodIPs = "10.244.1.99", []corev1.PodIP{{IP: "10.244.1.99"}}
				}
			}
		}
	})
	buyer := "envoy/bookbuyer/bookbuyer"
	changed, err := c.Update(ctx, buyer, after[buyer])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(changed, []types.ResponseType{types.Endpoint}) {
		t.Errorf("bookbuyer: changed %v, want only endpoints", changed)
	}
	thief := "envoy/bookthief/bookthief"
	if changed, _ := c.Update(ctx, thief, after[thief]); len(changed) != 0 {
		t.Errorf("bookthief, which cannot call the bookstore, changed %v", changed)
	}
}

// TestInconsistentSnapshotsAreRefused: a group keeps its last good snapshot
// when new resources reference what they do not carry.
func TestInconsistentSnapshotsAreRefused(t *testing.T) {
	ctx := context.Background()
	_, groups := translated(t, nil)
	buyer := "envoy/bookbuyer/bookbuyer"
	c := cache.New(&cache.Nodes{}, nil)
	if _, err := c.Update(ctx, buyer, groups[buyer]); err != nil {
		t.Fatal(err)
	}
	good, _ := c.GetSnapshot(buyer)
	broken := *groups[buyer]
	broken.Endpoints = nil
	if _, err := c.Update(ctx, buyer, &broken); err == nil {
		t.Fatal("a snapshot without the endpoints its clusters name was accepted")
	}
	if now, _ := c.GetSnapshot(buyer); now != good {
		t.Error("the last good snapshot was replaced")
	}
}
