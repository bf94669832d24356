package runner_test

import (
	"context"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	ctrlcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/controllers"
	"github.com/open-service-mesh/osm-operator/xds/cache"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/runner"
)

// countingReads is an informer cache that counts the runner's syncs (each
// begins by reading the MeshInstances' store) and, per sync, its reads of
// the Secrets that counted says to count.
type countingReads struct {
	ctrlcache.Cache
	counted func(client.ObjectKey) bool

	mu    sync.Mutex
	syncs int
	reads map[int]int // by sync
}

func (c *countingReads) GetInformer(ctx context.Context, obj client.Object, opts ...ctrlcache.InformerGetOption) (ctrlcache.Informer, error) {
	if _, ok := obj.(*meshv1alpha1.MeshInstance); ok && len(opts) == 0 {
		c.mu.Lock()
		c.syncs++
		c.mu.Unlock()
	}
	return c.Cache.GetInformer(ctx, obj, opts...)
}

func (c *countingReads) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*corev1.Secret); ok && c.counted(key) {
		c.mu.Lock()
		c.reads[c.syncs]++
		c.mu.Unlock()
	}
	return c.Cache.Get(ctx, key, obj, opts...)
}

// total is the number of counted reads.
func (c *countingReads) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.reads {
		n += r
	}
	return n
}

// countingRunner starts a runner of its own until the test ends, over an
// informer cache of its own that counts the Secret reads counted says to,
// publishing into the snapshot cache it returns.
func countingRunner(t *testing.T, ctx context.Context, counted func(client.ObjectKey) bool) (*countingReads, *cache.Cache) {
	t.Helper()
	opts := controllers.CacheOptions("")
	opts.Scheme = mesh.NewScheme()
	inf, err := ctrlcache.New(env.Config, opts)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = inf.Start(ctx) }()
	reads := &countingReads{Cache: inf, counted: counted, reads: map[int]int{}}
	snaps := cache.New(&cache.Nodes{}, nil)
	r := runner.New(runner.Options{Cache: reads, Snapshots: snaps, TrustNamespace: trustNamespace, Log: logr.Discard()})
	go func() { _ = r.Start(ctx) }()
	return reads, snaps
}

// syncCount is the number of syncs the runner began.
func (c *countingReads) syncCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.syncs
}
