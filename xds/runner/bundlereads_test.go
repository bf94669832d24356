package runner_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

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

	bundle := client.ObjectKey{Namespace: trustNamespace, Name: meshv1alpha1.TrustBundleSecretName(name)}
	reads, snaps := countingRunner(t, ctx, func(key client.ObjectKey) bool { return key == bundle })
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
