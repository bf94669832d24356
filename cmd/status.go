package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/open-service-mesh/osm-operator/internal/summary"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

const statusUsage = `usage: osm-operator status

Prints the meshes of the cluster of the current kubeconfig as their statuses
say: each MeshInstance, MeshMember and MeshVM with its Ready condition and
counts (member namespaces, identities, injected pods, connected proxies),
and each policy the mesh judges (IngressBackend, Egress,
UpstreamTrafficSetting, Retry, ResiliencePolicy, HTTPRoute, GRPCRoute) with
its condition; each SMI policy (TrafficTarget, HTTPRouteGroup, TCPRoute,
TrafficSplit) with its Accepted condition; and where a policy says so, its
Enforced condition: how many connected proxies of the groups it configures
run the config that includes it.`

// clusterClient is a client of the cluster of config, of the mesh's kinds,
// for the commands that read a cluster (status, plan, explain).
func clusterClient(config func() (*rest.Config, error)) (client.Client, error) {
	cfg, err := config()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: mesh.NewScheme()})
	if err != nil {
		return nil, fmt.Errorf("a client of the cluster: %w", err)
	}
	return c, nil
}

// runStatus runs the status subcommand and returns the exit code: 0, or 1
// when the cluster cannot be read.
func runStatus(args []string, out, errOut io.Writer, config func() (*rest.Config, error)) int {
	fset := flag.NewFlagSet("status", flag.ContinueOnError)
	fset.SetOutput(errOut)
	fset.Usage = func() { fmt.Fprintln(errOut, statusUsage); fset.PrintDefaults() }
	timeout := fset.Duration("timeout", 30*time.Second, "How long to wait for the API server.")
	if err := fset.Parse(args); err != nil || fset.NArg() > 0 {
		fset.Usage()
		return 1
	}
	fail := func(err error) int {
		fmt.Fprintln(errOut, "osm-operator status:", err)
		return 1
	}
	c, err := clusterClient(config)
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := summary.Write(ctx, c, out); err != nil {
		return fail(err)
	}
	return 0
}
