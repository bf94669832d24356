package runner_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/server"
)

// TestAVMIsAuthorizedInTheMeshItsSpecNames: the xDS server's authorizer,
// reading the real API server, places a MeshVM where the model does
// (mesh.VMMeshConflict): in the mesh its spec names, so a VM of a
// namespace in no mesh connects; not in a namespace of another mesh, by
// its label or by a MeshMember, nor in a namespace in no mesh whose first
// VM is of another mesh; whatever its certificate. A pod is in its
// namespace's mesh.
func TestAVMIsAuthorizedInTheMeshItsSpecNames(t *testing.T) {
	ctx := context.Background()
	n := seq.Add(1)
	meshA, meshB := fmt.Sprintf("auth-a-%d", n), fmt.Sprintf("auth-b-%d", n)
	for _, name := range []string{meshA, meshB} {
		mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: name}}
		mustCreate(t, mi)
		mi.Status.TrustBundle = []meshv1alpha1.TrustAnchor{{SHA256Fingerprint: "root-" + name, Subject: "CN=" + name, NotAfter: metav1.Now()}}
		if err := k8s.Status().Update(ctx, mi); err != nil {
			t.Fatal(err)
		}
	}
	ns := func(mesh string) string {
		name := fmt.Sprintf("auth-%d", seq.Add(1))
		o := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if mesh != "" {
			o.Labels = map[string]string{meshv1alpha1.MonitorLabel: mesh}
		}
		mustCreate(t, o)
		return name
	}
	vm := func(namespace, name, mesh string) {
		mustCreate(t, &meshv1alpha1.MeshVM{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
			Spec: meshv1alpha1.MeshVMSpec{Mesh: mesh, ServiceAccountName: "app", Addresses: []string{"192.0.2.1"},
				Ports: []meshv1alpha1.VMPort{{Name: "http", Port: 8080, Protocol: meshv1alpha1.ProtocolHTTP}}},
		})
	}
	none, inA, inB, member, pods := ns(""), ns(meshA), ns(meshB), ns(""), ns("")
	vm(none, "vm", meshA)
	vm(inA, "vm", meshA)
	vm(inB, "vm", meshA)
	vm(member, "vm", meshA)
	mustCreate(t, &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Namespace: member, Name: "m"}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: meshB}})
	for _, p := range []string{inA, pods} {
		mustCreate(t, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: p, Name: "pod"},
			Spec: corev1.PodSpec{ServiceAccountName: "app", Containers: []corev1.Container{{Name: "app", Image: "app"}}}})
	}
	time.Sleep(1100 * time.Millisecond) // creation timestamps have a resolution of a second
	vm(none, "later", meshB)

	auth := server.WorkloadAuthorizer{Reader: k8s}
	peer := func(namespace, meshName string) server.Peer {
		return server.Peer{TrustDomain: "cluster.local", Identity: mesh.Identity{Namespace: namespace, ServiceAccount: "app"}, Anchors: []string{"root-" + meshName}}
	}
	for _, tc := range []struct {
		name, node string
		peer       server.Peer
		allowed    bool
	}{
		{"VM of a namespace in no mesh, its mesh's certificate", mesh.VMNodeID(none, "vm"), peer(none, meshA), true},
		{"VM of a namespace in no mesh, another mesh's certificate", mesh.VMNodeID(none, "vm"), peer(none, meshB), false},
		{"a later VM of another mesh in that namespace, its mesh's certificate", mesh.VMNodeID(none, "later"), peer(none, meshB), false},
		{"VM of a namespace of its mesh", mesh.VMNodeID(inA, "vm"), peer(inA, meshA), true},
		{"VM of a namespace labelled for another mesh, its mesh's certificate", mesh.VMNodeID(inB, "vm"), peer(inB, meshA), false},
		{"VM of a namespace labelled for another mesh, that mesh's certificate", mesh.VMNodeID(inB, "vm"), peer(inB, meshB), false},
		{"VM of a namespace with a MeshMember of another mesh, its mesh's certificate", mesh.VMNodeID(member, "vm"), peer(member, meshA), false},
		{"pod of a namespace of the mesh", mesh.PodNodeID(inA, "pod"), peer(inA, meshA), true},
		{"pod of a namespace of the mesh, another mesh's certificate", mesh.PodNodeID(inA, "pod"), peer(inA, meshB), false},
		{"pod of a namespace in no mesh", mesh.PodNodeID(pods, "pod"), peer(pods, meshA), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := auth.Authorize(ctx, tc.node, tc.peer)
			if tc.allowed && err != nil {
				t.Fatalf("Authorize: %v, want allowed", err)
			}
			if !tc.allowed && !errors.Is(err, server.ErrDenied) {
				t.Fatalf("Authorize: %v, want a denial (ErrDenied)", err)
			}
		})
	}
}
