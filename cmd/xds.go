package main

import (
	"os"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/open-service-mesh/osm-operator/xds/controlplane"
	"github.com/open-service-mesh/osm-operator/xds/server"
)

type xdsOptions struct {
	address, certDir, debugAddress string
	certManagerNamespace           string
	namespace                      string // the operator's own
	clusterDomain                  string
}

// newXDS is the xDS control plane of the replica: the runner that keeps the
// snapshots in step with the cluster, the ADS server, the census Lease and the
// debug endpoint. All of them run on every replica (ControlPlane.AddTo).
func newXDS(mgr ctrl.Manager, o xdsOptions) *controlplane.ControlPlane {
	tlsSource := server.SecretTLS(mgr.GetCache(), o.namespace)
	if o.certDir != "" {
		tlsSource = server.FileTLS(o.certDir)
	}
	return controlplane.New(controlplane.Options{
		Cache:           mgr.GetCache(),
		Client:          mgr.GetClient(),
		Address:         o.address,
		TLS:             tlsSource,
		Replica:         replicaName(),
		TrustNamespace:  o.namespace,
		ClusterDomain:   o.clusterDomain,
		CensusNamespace: o.namespace,
		DebugAddress:    o.debugAddress,
		Log:             ctrl.Log.WithName("xds"),
	})
}

// replicaName names this replica in MeshVM status: the pod's name.
func replicaName() string {
	if name := os.Getenv("POD_NAME"); name != "" {
		return name
	}
	name, _ := os.Hostname()
	return name
}
