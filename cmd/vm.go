package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/open-service-mesh/osm-operator/internal/vmbootstrap"
)

const vmUsage = `usage: osm-operator vm bootstrap <meshvm> [-n namespace] [--out dir] [--kubeconfig file]

Writes everything the virtual machine needs into dir: its certificate, key
and trust bundle, and, for an Envoy VM, the Envoy bootstrap, iptables.sh and
osm-envoy.service (copy the folder to /etc/osm on the VM, install the unit and
start it), or, for a proxyless gRPC VM (spec.proxy: ProxylessGRPC), the gRPC
xDS bootstrap grpc-xds-bootstrap.json (copy the folder to /etc/osm on the VM
and start the application with GRPC_XDS_BOOTSTRAP=/etc/osm/grpc-xds-bootstrap.json).`

// runVM runs the vm subcommand and returns the exit code.
func runVM(args []string) int {
	if len(args) < 2 || args[0] != "bootstrap" {
		fmt.Fprintln(os.Stderr, vmUsage)
		return 2
	}
	name := args[1]
	fs := flag.NewFlagSet("vm bootstrap", flag.ContinueOnError)
	ns := fs.String("n", "default", "Namespace of the MeshVM.")
	out := fs.String("out", "", "Directory to write (default: ./<meshvm>).")
	kubeconfig := fs.String("kubeconfig", "", "Path of the kubeconfig (default: $KUBECONFIG or ~/.kube/config).")
	if err := fs.Parse(args[2:]); err != nil {
		return 2
	}
	if *kubeconfig != "" {
		_ = os.Setenv("KUBECONFIG", *kubeconfig)
	}
	if err := vmBootstrap(context.Background(), *ns, name, cmp.Or(*out, name)); err != nil {
		fmt.Fprintln(os.Stderr, "osm-operator vm bootstrap:", err)
		return 1
	}
	return 0
}

func vmBootstrap(ctx context.Context, namespace, name, dir string) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: newScheme()})
	if err != nil {
		return err
	}
	vm, files, err := vmbootstrap.Fetch(ctx, c, namespace, name)
	if err != nil {
		return err
	}
	if err := vmbootstrap.Write(dir, files); err != nil {
		return err
	}
	fmt.Printf("Wrote %d files for MeshVM %s/%s to %s\n%s\n", len(files), namespace, name, dir, vmbootstrap.NextSteps(vm))
	return nil
}
