package runner_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrlcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/open-service-mesh/osm-operator/controllers"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/xds/cache"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/runner"
)

// failingReads is an informer cache whose model reads (GetInformer without
// options, as the runner's sync calls it) fail while failures remain.
type failingReads struct {
	ctrlcache.Cache
	failures atomic.Int32
}

func (f *failingReads) GetInformer(ctx context.Context, obj client.Object, opts ...ctrlcache.InformerGetOption) (ctrlcache.Informer, error) {
	if len(opts) == 0 && f.failures.Add(-1) >= 0 {
		return nil, errors.New("the informer is not there (injected)")
	}
	return f.Cache.GetInformer(ctx, obj, opts...)
}

// A sync that fails as a whole is retried with backoff, with no change
// needed to trigger it. Before, the runner waited for "the next change or
// tick", and there was no tick: a mesh stayed unpublished until some
// unrelated object changed.
func TestAFailedSyncIsRetried(t *testing.T) {
	ctx := testContext(t)
	ns, _, _ := shop(t)
	opts := controllers.CacheOptions("")
	opts.Scheme = mesh.NewScheme()
	inf, err := ctrlcache.New(env.Config, opts)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = inf.Start(ctx) }()
	reads := &failingReads{Cache: inf}
	reads.failures.Store(3)
	snaps := cache.New(&cache.Nodes{}, nil)
	r := runner.New(runner.Options{Cache: reads, Snapshots: snaps, Log: logr.Discard()})
	go func() { _ = r.Start(ctx) }()
	group := mesh.Group{Kind: mesh.ProxyEnvoy, Identity: mesh.Identity{Namespace: ns, ServiceAccount: "buyer"}}.String()
	start := time.Now()
	testenv.Eventually(t, 20*time.Second, func() error {
		_, err := snaps.GetSnapshot(group)
		return err
	})
	if reads.failures.Load() >= 0 {
		t.Fatalf("the runner's reads did not fail as injected (%d failures left)", reads.failures.Load())
	}
	t.Logf("published %s after its first syncs failed", time.Since(start).Round(10*time.Millisecond))
}
