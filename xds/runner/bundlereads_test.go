package runner_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrlcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/controllers"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/xds/cache"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/runner"
)

// countingReads is an informer cache that counts the runner's syncs (each
// begins by reading the MeshInstances' store) and, per sync, its reads of
// one Secret.
type countingReads struct {
	ctrlcache.Cache
	secret client.ObjectKey

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
	if _, ok := obj.(*corev1.Secret); ok && key == c.secret {
		c.mu.Lock()
		c.reads[c.syncs]++
		c.mu.Unlock()
	}
	return c.Cache.Get(ctx, key, obj, opts...)
}

// A sync reads a mesh's trust bundle Secret once, however many of its
// groups it publishes: every group of the mesh trusts the same bundle.
// Before, it read it once per group.
func TestASyncReadsAMeshsTrustBundleOnce(t *testing.T) {
	ctx := testContext(t)
	name := fmt.Sprintf("bundle-reads-%d", seq.Add(1))
	if err := createMesh(ctx, name, "", ca); err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: fmt.Sprintf("xds-%d", seq.Add(1)), Labels: map[string]string{meshv1alpha1.MonitorLabel: name},
	}}
	mustCreate(t, ns)
	accounts := []string{"buyer", "store", "warehouse"}
	for _, sa := range accounts {
		workload(t, ns.Name, sa+"-1", sa, nil)
	}

	opts := controllers.CacheOptions("")
	opts.Scheme = mesh.NewScheme()
	inf, err := ctrlcache.New(env.Config, opts)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = inf.Start(ctx) }()
	reads := &countingReads{
		Cache:  inf,
		secret: client.ObjectKey{Namespace: trustNamespace, Name: meshv1alpha1.TrustBundleSecretName(name)},
		reads:  map[int]int{},
	}
	snaps := cache.New(&cache.Nodes{}, nil)
	r := runner.New(runner.Options{Cache: reads, Snapshots: snaps, TrustNamespace: trustNamespace, Log: logr.Discard()})
	go func() { _ = r.Start(ctx) }()
	// Each group gets its secrets: the bundle was read for each.
	testenv.Eventually(t, 20*time.Second, func() error {
		for _, sa := range accounts {
			key := mesh.Group{Kind: mesh.ProxyEnvoy, Identity: mesh.Identity{Namespace: ns.Name, ServiceAccount: sa}}.String()
			if snaps.Versions()[key][types.Secret] == "" {
				return fmt.Errorf("the group of %s has no secrets yet", sa)
			}
		}
		return nil
	})
	reads.mu.Lock()
	defer reads.mu.Unlock()
	if len(reads.reads) == 0 {
		t.Fatal("the trust bundle Secret was never read")
	}
	for sync, n := range reads.reads {
		if n != 1 {
			t.Errorf("sync %d read the trust bundle Secret %d times, want once", sync, n)
		}
	}
}
