package runner_test

import (
	"slices"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/open-service-mesh/osm-operator/xds/xdstest"
)

// A destination's first endpoints reach its callers, in the order a GitOps
// tool may apply things: the policy first, then the Service, then its
// endpoints. Before, a Service with no endpoints was in no caller's
// dependencies, so its first endpoint republished only the store's own
// group, and the buyer never heard of the store until some unrelated full
// sync.
func TestFirstEndpointsReachTheCallers(t *testing.T) {
	ctx := testContext(t)
	ns := memberNamespace(t)
	buyer := workload(t, ns, "buyer-1", "buyer", nil)
	allow(t, ns, "buyer", "store")

	s, err := xdstest.OpenStream(ctx, connect(t, &buyer), nodeID(ns, "buyer-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Subscribe(resourcev3.ClusterType, nil); err != nil {
		t.Fatal(err)
	}
	awaitSotW(t, s, func(r *discoveryv3.DiscoveryResponse) bool { return len(r.GetResources()) > 0 })
	// Each step is synced on its own, as when they are applied apart: the
	// runner coalesces changes for up to half a second, and a full sync
	// (the HTTPRouteGroup's) taken together with the endpoints would hide
	// the bug.
	settle := func() { time.Sleep(time.Second) }
	settle()
	service(t, ns, "store", "http", 80, "http")
	settle()
	workload(t, ns, "store-1", "store", nil)
	settle()
	endpointSlice(t, ns, "store", "http", 8080, map[string]string{"store-1": "10.1.0.5"})
	awaitSotW(t, s, func(r *discoveryv3.DiscoveryResponse) bool {
		return slices.Contains(clusterNames(t, r), "out|"+ns+"/store|80")
	})
}
