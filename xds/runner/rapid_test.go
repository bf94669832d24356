package runner_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/open-service-mesh/osm-operator/xds/xdstest"
)

// Endpoint changes made faster than the runner syncs (a rolling update)
// reach every proxy of a caller, state of the world and delta, whether a
// sync patches the caller's endpoints or translates it: each proxy ends up
// holding every type version its group's snapshot has.
func TestRapidEndpointChangesReachEveryProxy(t *testing.T) {
	ctx := testContext(t)
	ns, buyer, es := shop(t)
	buyer2 := workload(t, ns, "buyer-2", "buyer", nil)
	group := "envoy/" + ns + "/buyer"

	var mu sync.Mutex
	held := map[string][types.UnknownType]string{}
	for _, p := range []struct {
		pod   string
		delta bool
	}{{"buyer-1", false}, {"buyer-2", true}} {
		kp := buyer
		if p.delta {
			kp = buyer2
		}
		e := &xdstest.Envoy{NodeID: nodeID(ns, p.pod), Delta: p.delta, OnHeld: func(h xdstest.Held) {
			mu.Lock()
			held[p.pod] = h.Versions
			mu.Unlock()
		}}
		conn := connect(t, &kp)
		go func() { _ = e.Run(ctx, conn) }()
	}
	converged := func(step string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			want, ok := snapshots.Versions()[group]
			mu.Lock()
			a, b := held["buyer-1"], held["buyer-2"]
			mu.Unlock()
			if ok && a == want && b == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the buyer's proxies hold\n%q (SotW)\n%q (delta)\nnot\n%q", step, a, b, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	converged("connected")
	for round := range 3 {
		for i := range 12 {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(es), es); err != nil {
				t.Fatal(err)
			}
			es.Endpoints[0].Addresses = []string{fmt.Sprintf("10.1.%d.%d", 10+round, i+1)}
			if err := k8s.Update(ctx, es); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Duration(10+i*7) * time.Millisecond)
		}
		converged(fmt.Sprintf("round %d", round))
	}
}
