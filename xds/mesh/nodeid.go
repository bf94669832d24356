package mesh

import (
	"fmt"
	"strings"
)

// Node IDs name the workload a proxy runs for:
//
//	sidecar~<namespace>~<pod>   an Envoy sidecar, or a proxyless gRPC pod
//	vm~<namespace>~<meshvm>     the proxy of a MeshVM
//
// The injector and the VM bootstrap write them (PodNodeID, VMNodeID); the
// xDS server believes one only when the workload exists and runs as the
// identity of the proxy's client certificate (ParseNodeID).
const (
	NodeKindSidecar = "sidecar"
	NodeKindVM      = "vm"
)

// PodNodeID is the node ID of the proxy of pod namespace/name. The injector
// passes it the downward API's variables, which the kubelet expands.
func PodNodeID(namespace, name string) string { return nodeID(NodeKindSidecar, namespace, name) }

// VMNodeID is the node ID of the proxy of MeshVM namespace/name.
func VMNodeID(namespace, name string) string { return nodeID(NodeKindVM, namespace, name) }

func nodeID(kind, namespace, name string) string { return kind + "~" + namespace + "~" + name }

// ParseNodeID splits a node ID into its kind, namespace and name.
func ParseNodeID(id string) (kind, namespace, name string, err error) {
	parts := strings.Split(id, "~")
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" || (parts[0] != NodeKindSidecar && parts[0] != NodeKindVM) {
		return "", "", "", fmt.Errorf("node ID %q is not %s or %s", id, PodNodeID("<namespace>", "<pod>"), VMNodeID("<namespace>", "<meshvm>"))
	}
	return parts[0], parts[1], parts[2], nil
}

// DefaultServiceAccount is the service account of a pod that names none.
const DefaultServiceAccount = "default"

// ServiceAccountOf is the service account a pod runs as.
func ServiceAccountOf(serviceAccountName string) string {
	if serviceAccountName == "" {
		return DefaultServiceAccount
	}
	return serviceAccountName
}
