package main

import (
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/cache"
	"github.com/open-service-mesh/osm-operator/xds/census"
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
	var srv *server.Server
	var run *runner.Runner
	publisher := census.NewPublisher(census.Options{
		Client:       mgr.GetClient(),
		Namespace:    o.namespace,
		Replica:      replicaName(),
		Count:        func() census.Counts { return sidecarCounts(srv.Proxies()) },
		Failing:      func() census.Failing { return run.Failing() },
		FieldManager: meshv1alpha1.FieldManager,
		Log:          log.WithName("census"),
	})
	nodes := &cache.Nodes{}
	snapshots := cache.New(nodes, nil)
	srv = server.New(server.Options{
		Address:    o.address,
		TLS:        tlsSource,
		Authorizer: server.WorkloadAuthorizer{Reader: mgr.GetCache()},
		Cache:      snapshots,
		Nodes:      nodes,
		Observer: server.Observers{
			&server.VMStatus{Client: mgr.GetClient(), Replica: replicaName(), Log: log.WithName("vm-status")},
			publisher,
		},
		Log: log.WithName("server"),
	})
	run = runner.New(runner.Options{Cache: mgr.GetCache(), Snapshots: snapshots, OnFailing: publisher.Changed, Log: log.WithName("runner")})
	runnables := []manager.Runnable{
		run,
		srv,
		publisher,
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

// sidecarCounts counts the connected sidecars per namespace; VMs report
// their connection in their own status.
func sidecarCounts(proxies []server.ProxyStatus) census.Counts {
	c := census.Counts{}
	for _, p := range proxies {
		if kind, ns, _, err := server.ParseNodeID(p.NodeID); err == nil && kind == server.NodeKindSidecar {
			c[ns]++
		}
	}
	return c
}
