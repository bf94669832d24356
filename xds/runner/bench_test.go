package runner_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/open-service-mesh/osm-operator/xds/xdstest"
)

// BenchmarkEndpointChangeReachesProxy measures, through the real API server,
// informers, runner, cache and server, the time from an EndpointSlice update
// to a connected delta-xDS client receiving the new endpoints: what the
// runner's coalescing (50 ms quiet period) adds to the pipeline. Reported:
// the median and p99 of the runs.
func BenchmarkEndpointChangeReachesProxy(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ns, buyer, es := shop(b)

	d, err := xdstest.OpenDeltaStream(ctx, connect(b, &buyer), nodeID(ns, "buyer-1"))
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Subscribe(resourcev3.EndpointType, []string{"out|" + ns + "/store|80"}); err != nil {
		b.Fatal(err)
	}
	r, err := d.Recv()
	if err != nil {
		b.Fatal(err)
	}
	if err := d.ACK(r); err != nil {
		b.Fatal(err)
	}
	var took []time.Duration
	for i := 0; b.Loop(); i++ {
		es.Endpoints[0].Addresses = []string{fmt.Sprintf("10.2.%d.%d", i/250%250, i%250+1)}
		start := time.Now()
		if err := k8s.Update(ctx, es); err != nil {
			b.Fatal(err)
		}
		r, err := d.Recv()
		if err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
		if err := d.ACK(r); err != nil {
			b.Fatal(err)
		}
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
}
