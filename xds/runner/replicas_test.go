package runner_test

import (
	"context"
	"crypto/tls"
	"slices"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/internal/testpki"
	"github.com/open-service-mesh/osm-operator/xds/xdstest"
)

// Every replica serves the same versions (they are content hashes), so a
// proxy that moves to another replica, or reconnects after its replica
// restarted, gets exactly the config it has: the same version of every type,
// nothing to apply. A replica's restart pushes nothing to proxies of others.
func TestReplicasAndRestartsServeTheSameVersions(t *testing.T) {
	forEachOrder(t, testReplicasAndRestartsServeTheSameVersions)
}

func testReplicasAndRestartsServeTheSameVersions(t *testing.T, o order) {
	ns, buyer, _ := shopIn(t, o)
	storeCluster := "out|" + ns + "/store|80"

	// held opens a stream to the replica's server, once the replica knows
	// the buyer's pod, and returns the versions of clusters and endpoints
	// once it holds the store's, and the stream.
	held := func(ctx context.Context, r replica) ([2]string, *xdstest.Stream) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, func() error {
			return r.informers.Get(ctx, client.ObjectKey{Namespace: ns, Name: "buyer-1"}, &corev1.Pod{})
		})
		address, err := r.server.Addr(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := xdstest.Dial(address.String(), "localhost", mustTLS(t, buyer), ca.Pool())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		s, err := xdstest.OpenStream(ctx, conn, nodeID(ns, "buyer-1"))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Subscribe(resourcev3.ClusterType, nil); err != nil {
			t.Fatal(err)
		}
		cds := awaitSotW(t, s, func(r *discoveryv3.DiscoveryResponse) bool {
			return r.GetTypeUrl() == resourcev3.ClusterType && slices.Contains(clusterNames(t, r), storeCluster)
		})
		if err := s.Subscribe(resourcev3.EndpointType, []string{storeCluster}); err != nil {
			t.Fatal(err)
		}
		eds := awaitSotW(t, s, func(r *discoveryv3.DiscoveryResponse) bool { return r.GetTypeUrl() == resourcev3.EndpointType })
		return [2]string{cds.GetVersionInfo(), eds.GetVersionInfo()}, s
	}

	onA, streamA := held(testContext(t), replica{server: xds, informers: informers})

	ctxB, stopB := context.WithCancel(context.Background())
	b := startReplica(ctxB, "replica-b", servingCert, logr.Discard())
	onB, _ := held(ctxB, b)
	if onB != onA {
		t.Errorf("replica B serves versions %v, replica A %v", onB, onA)
	}

	// B restarts: a new cache, runner and server.
	stopB()
	ctxC, stopC := context.WithCancel(context.Background())
	defer stopC()
	c := startReplica(ctxC, "replica-c", servingCert, logr.Discard())
	onC, _ := held(ctxC, c)
	if onC != onA {
		t.Errorf("after the restart the replica serves versions %v, before %v", onC, onA)
	}

	// A's proxy heard nothing of it.
	got := make(chan *discoveryv3.DiscoveryResponse, 1)
	go func() {
		if r, err := streamA.Recv(); err == nil {
			got <- r
		}
	}()
	select {
	case r := <-got:
		t.Errorf("a replica's restart pushed %s version %s to a proxy of another replica", r.GetTypeUrl(), r.GetVersionInfo())
	case <-time.After(time.Second):
	}
}

func mustTLS(t *testing.T, kp testpki.KeyPair) *tls.Certificate {
	t.Helper()
	c, err := kp.TLS()
	if err != nil {
		t.Fatal(err)
	}
	return &c
}
