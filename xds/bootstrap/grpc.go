package bootstrap

import (
	"encoding/json"
	"path"
	"time"

	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// GRPCOptions describe a proxyless gRPC application's xDS bootstrap.
type GRPCOptions struct {
	// NodeID and Cluster name the node, as for Envoy.
	NodeID, Cluster string
	// ServerURI is the xDS server's gRPC target, host:port.
	ServerURI string
	// IdentityDir holds CertFile, KeyFile and CAFile, used for the xDS
	// connection and, re-read every Refresh, for the mesh's mTLS.
	IdentityDir string
	Refresh     time.Duration
}

// GRPCRefresh is how often a proxyless application re-reads its identity
// files: a renewed certificate is in use within a minute, well inside the
// renewal window cert-manager leaves.
const GRPCRefresh = time.Minute

// GRPC returns the bootstrap JSON gRPC's xDS support reads
// (GRPC_XDS_BOOTSTRAP_CONFIG): the xDS server over TLS with the identity
// files, the certificate provider the translated clusters and listeners name,
// and the server listener template their listeners are named by.
func GRPC(o GRPCOptions) ([]byte, error) {
	files := map[string]string{
		"ca_certificate_file": path.Join(o.IdentityDir, CAFile),
		"certificate_file":    path.Join(o.IdentityDir, CertFile),
		"private_key_file":    path.Join(o.IdentityDir, KeyFile),
	}
	// Both the xDS channel's credentials and the mesh's provider are
	// gRPC's file watcher: each re-reads the files every Refresh (its
	// default is an hour, past a root rotation's settle time).
	provider := map[string]string{"refresh_interval": o.Refresh.String()}
	for k, v := range files {
		provider[k] = v
	}
	node := map[string]string{"id": o.NodeID}
	if o.Cluster != "" {
		node["cluster"] = o.Cluster
	}
	return json.Marshal(map[string]any{
		"xds_servers": []any{map[string]any{
			"server_uri":      o.ServerURI,
			"channel_creds":   []any{map[string]any{"type": "tls", "config": provider}},
			"server_features": []string{"xds_v3"},
		}},
		"node": node,
		"certificate_providers": map[string]any{
			translate.CertificateProviderInstance: map[string]any{"plugin_name": "file_watcher", "config": provider},
		},
		"server_listener_resource_name_template": translate.GRPCServerListenerTemplate,
	})
}
