package runner_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/xds/controlplane"
	"github.com/open-service-mesh/osm-operator/xds/xdstest"
)

// A proxy that rejects its config is reported (its last NACK in the
// server's registry) and backed off, and its backoff holds only its own
// stream: a proxy of the same group gets an endpoint change at once.
func TestANACKingProxyDoesNotStallOthers(t *testing.T) {
	forEachOrder(t, testANACKingProxyDoesNotStallOthers)
}

func testANACKingProxyDoesNotStallOthers(t *testing.T, o order) {
	ctx := testContext(t)
	ns, buyer, es := shopIn(t, o)
	workload(t, ns, "buyer-2", "buyer", nil)
	storeCluster := "out|" + ns + "/store|80"
	endpoints := func(r *discoveryv3.DiscoveryResponse) []string {
		var out []string
		for _, a := range r.GetResources() {
			cla := &endpointv3.ClusterLoadAssignment{}
			if err := a.UnmarshalTo(cla); err != nil {
				t.Fatal(err)
			}
			for _, l := range cla.GetEndpoints() {
				for _, e := range l.GetLbEndpoints() {
					out = append(out, e.GetEndpoint().GetAddress().GetSocketAddress().GetAddress())
				}
			}
		}
		return out
	}
	subscribe := func(pod string) *xdstest.Stream {
		s, err := xdstest.OpenStream(ctx, connect(t, &buyer), nodeID(ns, pod))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Subscribe(resourcev3.EndpointType, []string{storeCluster}); err != nil {
			t.Fatal(err)
		}
		return s
	}

	// The rejecting proxy NACKs until its backoff is 3.2 s: well past the
	// bound below, which leaves room for a loaded machine.
	rejecting := subscribe("buyer-1")
	for range 6 {
		r, err := rejecting.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if err := rejecting.NACK(r, "", "cannot take it"); err != nil {
			t.Fatal(err)
		}
	}
	accepting := subscribe("buyer-2")
	awaitSotW(t, accepting, func(r *discoveryv3.DiscoveryResponse) bool {
		return slices.Contains(endpoints(r), "10.1.0.5")
	})

	es.Endpoints[0].Addresses = []string{"10.1.0.6"}
	start := time.Now()
	if err := k8s.Update(ctx, es); err != nil {
		t.Fatal(err)
	}
	awaitSotW(t, accepting, func(r *discoveryv3.DiscoveryResponse) bool {
		return slices.Contains(endpoints(r), "10.1.0.6")
	})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the accepting proxy got the change after %s, while the other proxy of its group was backed off", took)
	}

	var reported bool
	for _, p := range xds.Proxies() {
		if p.NodeID == nodeID(ns, "buyer-1") && p.LastNACK != nil && p.LastNACK.Detail == "cannot take it" {
			reported = true
		}
	}
	if !reported {
		t.Error("the rejecting proxy's NACK is not in the server's registry")
	}
	// The census says so of the group: one of its two proxies rejects its
	// config, and the other runs the current one (it asked for endpoints
	// only, and holds the current endpoints).
	group := "envoy/" + ns + "/buyer"
	testenv.Eventually(t, 10*time.Second, func() error {
		s := controlplane.GroupStates(xds.Proxies(), snapshots.Versions())[group]
		if s.Connected != 2 || s.Rejecting != 1 || !strings.Contains(s.Rejection, "cannot take it") || s.Holding != 1 || s.Version == "" {
			return fmt.Errorf("the census of group %s: %+v", group, s)
		}
		return nil
	})
}
