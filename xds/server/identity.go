package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// Node IDs name the workload a proxy runs for:
//
//	sidecar~<namespace>~<pod>   an Envoy sidecar, or a proxyless gRPC pod
//	vm~<namespace>~<meshvm>     the proxy of a MeshVM
//
// The server believes a node ID only when the workload exists and runs as the
// identity of the proxy's client certificate.
const (
	NodeKindSidecar = "sidecar"
	NodeKindVM      = "vm"
)

// ParseNodeID splits a node ID into its kind, namespace and name.
func ParseNodeID(id string) (kind, namespace, name string, err error) {
	parts := strings.Split(id, "~")
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" || (parts[0] != NodeKindSidecar && parts[0] != NodeKindVM) {
		return "", "", "", fmt.Errorf("node ID %q is not sidecar~<namespace>~<pod> or vm~<namespace>~<meshvm>", id)
	}
	return parts[0], parts[1], parts[2], nil
}

// PeerIdentity is the workload identity in a verified client certificate: its
// SPIFFE URI SAN spiffe://<trust domain>/ns/<namespace>/sa/<service account>.
func PeerIdentity(cert *x509.Certificate) (trustDomain string, id mesh.Identity, err error) {
	for _, u := range cert.URIs {
		if u.Scheme != "spiffe" {
			continue
		}
		parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
		if len(parts) == 4 && parts[0] == "ns" && parts[2] == "sa" && parts[1] != "" && parts[3] != "" {
			return u.Host, mesh.Identity{Namespace: parts[1], ServiceAccount: parts[3]}, nil
		}
	}
	return "", mesh.Identity{}, errors.New("the client certificate has no SPIFFE workload ID")
}

// Authorizer decides which proxy group a node belongs to, given the identity
// proven by its certificate.
type Authorizer interface {
	Authorize(ctx context.Context, nodeID string, peer mesh.Identity) (mesh.Group, error)
}

// WorkloadAuthorizer checks node IDs against the pods and MeshVMs in the
// informer cache.
type WorkloadAuthorizer struct {
	Reader client.Reader
}

// ErrDenied is wrapped by every refusal of WorkloadAuthorizer.
var ErrDenied = errors.New("permission denied")

// Authorize implements Authorizer.
func (a WorkloadAuthorizer) Authorize(ctx context.Context, nodeID string, peer mesh.Identity) (mesh.Group, error) {
	kind, ns, name, err := ParseNodeID(nodeID)
	if err != nil {
		return mesh.Group{}, fmt.Errorf("%w: %w", ErrDenied, err)
	}
	key := client.ObjectKey{Namespace: ns, Name: name}
	var g mesh.Group
	switch kind {
	case NodeKindSidecar:
		pod := &corev1.Pod{}
		if err := a.Reader.Get(ctx, key, pod); err != nil {
			return g, lookupError("pod", key, err)
		}
		sa := pod.Spec.ServiceAccountName
		if sa == "" {
			sa = "default"
		}
		g = mesh.Group{Kind: mesh.ProxyEnvoy, Identity: mesh.Identity{Namespace: ns, ServiceAccount: sa}}
		if pod.Annotations[mesh.ProxyKindAnnotation] == string(mesh.ProxyGRPC) {
			g.Kind = mesh.ProxyGRPC
		}
	case NodeKindVM:
		vm := &meshv1alpha1.MeshVM{}
		if err := a.Reader.Get(ctx, key, vm); err != nil {
			return g, lookupError("MeshVM", key, err)
		}
		g = mesh.Group{Kind: mesh.ProxyEnvoy, Identity: mesh.Identity{Namespace: ns, ServiceAccount: vm.Spec.ServiceAccountName}}
		if vm.Spec.Proxy == meshv1alpha1.ProxyProxylessGRPC {
			g.Kind = mesh.ProxyGRPC
		}
	}
	if g.Identity != peer {
		return mesh.Group{}, fmt.Errorf("%w: node %s runs as %s but its certificate is for %s", ErrDenied, nodeID, g.Identity, peer)
	}
	return g, nil
}

func lookupError(kind string, key client.ObjectKey, err error) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w: %s %s does not exist", ErrDenied, kind, key)
	}
	return fmt.Errorf("looking up %s %s: %w", kind, key, err)
}
