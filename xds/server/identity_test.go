package server

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// TestAVMIsAuthorizedInTheMeshItsSpecNames: the authorizer places a MeshVM
// where the model does (mesh.VMMesh), in the mesh its spec names, so a VM
// of a namespace that is in no mesh connects, and one in a namespace of
// another mesh does not, whatever its certificate.
func TestAVMIsAuthorizedInTheMeshItsSpecNames(t *testing.T) {
	meshes := map[string]*meshv1alpha1.MeshInstance{}
	for _, name := range []string{"a", "b"} {
		mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: name}}
		mi.Status.TrustBundle = []meshv1alpha1.TrustAnchor{{SHA256Fingerprint: "root-" + name}}
		meshes[name] = mi
	}
	ns := func(name, mesh string) *corev1.Namespace {
		n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if mesh != "" {
			n.Labels = map[string]string{meshv1alpha1.MonitorLabel: mesh}
		}
		return n
	}
	vm := func(namespace, mesh string) *meshv1alpha1.MeshVM {
		return &meshv1alpha1.MeshVM{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "vm"},
			Spec:       meshv1alpha1.MeshVMSpec{Mesh: mesh, ServiceAccountName: "app"},
		}
	}
	pod := func(namespace string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "pod"}, Spec: corev1.PodSpec{ServiceAccountName: "app"}}
	}
	objs := []client.Object{meshes["a"], meshes["b"], ns("none", ""), ns("in-a", "a"), ns("in-b", "b"), ns("pods-none", ""),
		vm("none", "a"), vm("in-a", "a"), vm("in-b", "a"), pod("in-a"), pod("pods-none")}
	c := fake.NewClientBuilder().WithScheme(mesh.NewScheme()).WithObjects(objs...).Build()
	auth := WorkloadAuthorizer{Reader: c}
	peer := func(namespace, root string) Peer {
		return Peer{TrustDomain: "cluster.local", Identity: mesh.Identity{Namespace: namespace, ServiceAccount: "app"}, Anchors: []string{root}}
	}
	for _, tc := range []struct {
		name, node string
		peer       Peer
		allowed    bool
	}{
		{"VM of a namespace in no mesh, mesh a's certificate", mesh.VMNodeID("none", "vm"), peer("none", "root-a"), true},
		{"VM of a namespace in no mesh, mesh b's certificate", mesh.VMNodeID("none", "vm"), peer("none", "root-b"), false},
		{"VM of a namespace of its mesh", mesh.VMNodeID("in-a", "vm"), peer("in-a", "root-a"), true},
		{"VM of a namespace of another mesh, its mesh's certificate", mesh.VMNodeID("in-b", "vm"), peer("in-b", "root-a"), false},
		{"VM of a namespace of another mesh, that mesh's certificate", mesh.VMNodeID("in-b", "vm"), peer("in-b", "root-b"), false},
		{"pod of a namespace of the mesh", mesh.PodNodeID("in-a", "pod"), peer("in-a", "root-a"), true},
		{"pod of a namespace of the mesh, another mesh's certificate", mesh.PodNodeID("in-a", "pod"), peer("in-a", "root-b"), false},
		{"pod of a namespace in no mesh", mesh.PodNodeID("pods-none", "pod"), peer("pods-none", "root-a"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := auth.Authorize(context.Background(), tc.node, tc.peer)
			if tc.allowed && err != nil {
				t.Fatalf("Authorize: %v, want allowed", err)
			}
			if !tc.allowed && !errors.Is(err, ErrDenied) {
				t.Fatalf("Authorize: %v, want a denial (ErrDenied)", err)
			}
		})
	}
}
