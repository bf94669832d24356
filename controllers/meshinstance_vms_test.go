package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
)

// TestAMeshCountsAndWaitsForItsOwnVMs: a mesh counts the MeshVMs that join
// it and no other mesh's, and its deletion waits for its own VMs only: the
// VMs are listed by the mesh they name (an index), not all of them.
func TestAMeshCountsAndWaitsForItsOwnVMs(t *testing.T) {
	ctx := context.Background()
	own, other := readyMesh(t, "vm-owner"), readyMesh(t, "vm-bystander")
	ns := newNamespace(t, nil)
	vm := &meshv1alpha1.MeshVM{
		ObjectMeta: metav1.ObjectMeta{Name: "owned-vm", Namespace: ns},
		Spec: meshv1alpha1.MeshVMSpec{Mesh: own.Name, ServiceAccountName: "owned", Addresses: []string{"192.0.2.60"},
			Ports: []meshv1alpha1.VMPort{{Name: "http", Port: 8080, Protocol: meshv1alpha1.ProtocolHTTP}}},
	}
	if err := k8s.Create(ctx, vm); err != nil {
		t.Fatal(err)
	}
	vms := func(mi *meshv1alpha1.MeshInstance, want int32) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
				return err
			}
			if mi.Status.VMs != want || mi.Status.ObservedGeneration != mi.Generation {
				return fmt.Errorf("mesh %s counts %d VMs (observed generation %d of %d), want %d", mi.Name, mi.Status.VMs, mi.Status.ObservedGeneration, mi.Generation, want)
			}
			return nil
		})
	}
	vms(own, 1)
	// The bystander is reconciled after the VM exists (a MeshVM event wakes
	// every mesh), and still counts none.
	vms(other, 0)

	// The bystander goes at once: the other mesh's VM holds it not.
	if err := k8s.Delete(ctx, other); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(other), &meshv1alpha1.MeshInstance{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("mesh %s is still there (%v): %+v", other.Name, err, other.Status.Conditions)
		}
		return nil
	})

	// The owner waits for its VM, naming it.
	if err := k8s.Delete(ctx, own); err != nil {
		t.Fatal(err)
	}
	conds := func() []metav1.Condition { return own.Status.Conditions }
	testenv.Eventually(t, 30*time.Second, func() error {
		c := condition(t, own, conds, meshv1alpha1.ConditionReady)
		if c == nil || c.Reason != meshv1alpha1.ReasonDeleting || !strings.Contains(c.Message, "1 MeshVMs ("+ns+"/owned-vm)") {
			return fmt.Errorf("Ready = %+v", c)
		}
		return nil
	})
	if err := k8s.Delete(ctx, vm); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(own), &meshv1alpha1.MeshInstance{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("mesh %s is still there: %v", own.Name, err)
		}
		return nil
	})
}
