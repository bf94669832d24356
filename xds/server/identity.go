package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/san"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// Peer is what a proxy's verified client certificate proves: a workload
// identity of a trust domain, signed under some roots.
type Peer struct {
	TrustDomain string
	Identity    mesh.Identity
	// Anchors are the SHA-256 fingerprints (hex) of the certificates the
	// verified chains end at.
	Anchors []string
}

// PeerOf reads the peer of a TLS connection's verified chains.
func PeerOf(chains [][]*x509.Certificate) (Peer, error) {
	if len(chains) == 0 || len(chains[0]) == 0 {
		return Peer{}, errors.New("a verified client certificate is required")
	}
	td, id, err := PeerIdentity(chains[0][0])
	if err != nil {
		return Peer{}, err
	}
	p := Peer{TrustDomain: td, Identity: id}
	for _, c := range chains {
		p.Anchors = append(p.Anchors, meshv1alpha1.Fingerprint(c[len(c)-1]))
	}
	return p, nil
}

// String names the peer as its SPIFFE ID.
func (p Peer) String() string { return p.Identity.SPIFFE(p.TrustDomain) }

// PeerIdentity is the workload identity in a verified client certificate: its
// one subject alternative name, a URI spiffe://<trust domain>/ns/<namespace>/sa/<service account>
// spelled exactly so (mesh.ParseSPIFFE), read from the extension as the
// certificate holds it. A certificate with any other name besides is not
// one the mesh issued.
func PeerIdentity(cert *x509.Certificate) (trustDomain string, id mesh.Identity, err error) {
	names, err := san.Parse(cert.Extensions)
	if err != nil {
		return "", mesh.Identity{}, fmt.Errorf("the client certificate: %w", err)
	}
	if len(names.URI) != 1 || names.Count() != 1 {
		return "", mesh.Identity{}, fmt.Errorf("the client certificate has %d subject alternative names, %d of them URIs, not one SPIFFE workload ID", names.Count(), len(names.URI))
	}
	td, id, ok := mesh.ParseSPIFFE(names.URI[0])
	if !ok {
		return "", mesh.Identity{}, fmt.Errorf("the client certificate's URI SAN %q is not spiffe://<trust domain>/ns/<namespace>/sa/<service account>", names.URI[0])
	}
	return td, id, nil
}

// Authorizer decides which proxy group a node belongs to, given what its
// certificate proves.
type Authorizer interface {
	Authorize(ctx context.Context, nodeID string, peer Peer) (mesh.Group, error)
}

// WorkloadAuthorizer checks node IDs against the pods and MeshVMs in the
// informer cache, and peers against the workload's mesh (a pod's
// namespace's, a MeshVM's own: mesh.VMMesh): its trust domain and the roots
// in its trust bundle.
type WorkloadAuthorizer struct {
	Reader client.Reader
}

// ErrDenied is wrapped by every refusal of WorkloadAuthorizer.
var ErrDenied = errors.New("permission denied")

// Authorize implements Authorizer.
func (a WorkloadAuthorizer) Authorize(ctx context.Context, nodeID string, peer Peer) (mesh.Group, error) {
	kind, ns, name, err := mesh.ParseNodeID(nodeID)
	if err != nil {
		return mesh.Group{}, fmt.Errorf("%w: %w", ErrDenied, err)
	}
	key := client.ObjectKey{Namespace: ns, Name: name}
	namespace := &corev1.Namespace{}
	if err := a.Reader.Get(ctx, client.ObjectKey{Name: ns}, namespace); err != nil {
		return mesh.Group{}, lookupError("namespace", client.ObjectKey{Name: ns}, err)
	}
	// A pod is in the mesh of its namespace; a MeshVM in the one its spec
	// names, as the model places it (mesh.VMMeshConflict).
	meshName := namespace.Labels[meshv1alpha1.MonitorLabel]
	var g mesh.Group
	var vm *meshv1alpha1.MeshVM
	switch kind {
	case mesh.NodeKindSidecar:
		pod := &corev1.Pod{}
		if err := a.Reader.Get(ctx, key, pod); err != nil {
			return g, lookupError("pod", key, err)
		}
		g = mesh.PodGroup(pod)
	case mesh.NodeKindVM:
		vm = &meshv1alpha1.MeshVM{}
		if err := a.Reader.Get(ctx, key, vm); err != nil {
			return g, lookupError("MeshVM", key, err)
		}
		g = mesh.VMGroup(vm)
	}
	if g.Identity != peer.Identity {
		return mesh.Group{}, fmt.Errorf("%w: node %s runs as %s but its certificate is for %s", ErrDenied, nodeID, g.Identity, peer.Identity)
	}
	if vm != nil {
		why, err := mesh.ReadVMMeshConflict(ctx, a.Reader, vm)
		if err != nil {
			return mesh.Group{}, err
		}
		if why != "" {
			return mesh.Group{}, fmt.Errorf("%w: %s", ErrDenied, why)
		}
		meshName = vm.Spec.Mesh
	}
	if meshName == "" {
		return mesh.Group{}, fmt.Errorf("%w: namespace %s is not in a mesh", ErrDenied, ns)
	}
	if err := a.checkMesh(ctx, meshName, peer); err != nil {
		return mesh.Group{}, err
	}
	return g, nil
}

// checkMesh checks that peer holds an identity of mesh name: of its trust
// domain, and signed under a root of its trust bundle. The xDS server
// trusts the roots of every mesh for the handshake; this is what keeps a
// certificate of one mesh from serving for a workload of another.
func (a WorkloadAuthorizer) checkMesh(ctx context.Context, name string, peer Peer) error {
	mi := &meshv1alpha1.MeshInstance{}
	if err := a.Reader.Get(ctx, client.ObjectKey{Name: name}, mi); err != nil {
		return lookupError("MeshInstance", client.ObjectKey{Name: name}, err)
	}
	if td := mi.EffectiveTrustDomain(); peer.TrustDomain != td {
		return fmt.Errorf("%w: the certificate is of trust domain %q, and mesh %s is %q", ErrDenied, peer.TrustDomain, name, td)
	}
	if len(mi.Status.TrustBundle) == 0 {
		return fmt.Errorf("mesh %s has no trust bundle yet", name)
	}
	for _, anchor := range mi.Status.TrustBundle {
		if slices.Contains(peer.Anchors, anchor.SHA256Fingerprint) {
			return nil
		}
	}
	return fmt.Errorf("%w: the certificate does not chain to a root of mesh %s", ErrDenied, name)
}

func lookupError(kind string, key client.ObjectKey, err error) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w: %s %s does not exist", ErrDenied, kind, key)
	}
	return fmt.Errorf("looking up %s %s: %w", kind, key, err)
}
