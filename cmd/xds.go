package main

import (
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/open-service-mesh/osm-operator/xds/cache"
	"github.com/open-service-mesh/osm-operator/xds/runner"
	"github.com/open-service-mesh/osm-operator/xds/server"
)

type xdsOptions struct {
	address, certDir, debugAddress string
	certManagerNamespace           string
	namespace                      string // the operator's own
}

// addXDS adds the xDS control plane to the manager: the runner that keeps the
// snapshots in step with the cluster, the ADS server and its debug endpoint.
// All three run on every replica.
func addXDS(mgr ctrl.Manager, o xdsOptions) error {
	log := ctrl.Log.WithName("xds")
	tlsSource := server.SecretTLS(mgr.GetCache(), o.namespace)
	if o.certDir != "" {
		tlsSource = server.FileTLS(o.certDir)
	}
	nodes := &cache.Nodes{}
	snapshots := cache.New(nodes, nil)
	srv := server.New(server.Options{
		Address:    o.address,
		TLS:        tlsSource,
		Authorizer: server.WorkloadAuthorizer{Reader: mgr.GetCache()},
		Cache:      snapshots,
		Nodes:      nodes,
		Observer:   &server.VMStatus{Client: mgr.GetClient(), Replica: replicaName(), Log: log.WithName("vm-status")},
		Log:        log.WithName("server"),
	})
	runnables := []manager.Runnable{
		runner.New(runner.Options{Cache: mgr.GetCache(), Snapshots: snapshots, Log: log.WithName("runner")}),
		srv,
	}
	if o.debugAddress != "" {
		runnables = append(runnables, &server.Debug{Address: o.debugAddress, Server: srv, Cache: snapshots, Nodes: nodes})
	}
	for _, r := range runnables {
		if err := mgr.Add(r); err != nil {
			return fmt.Errorf("adding the xDS control plane: %w", err)
		}
	}
	return nil
}

// replicaName names this replica in MeshVM status: the pod's name.
func replicaName() string {
	if name := os.Getenv("POD_NAME"); name != "" {
		return name
	}
	name, _ := os.Hostname()
	return name
}
