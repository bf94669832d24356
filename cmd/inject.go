package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"sigs.k8s.io/yaml"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/webhooks/inject"
)

const injectUsage = `usage: osm-operator inject -f <file|-> [--mesh name | --mesh-file meshinstance.yaml] [--operator-namespace ns]

Writes the manifests of the file (multi-document YAML; - reads standard
input) to standard output with the mesh's sidecar injected into every Pod,
Deployment, StatefulSet, DaemonSet, ReplicaSet, Job and CronJob, as the
admission webhook would. Other kinds pass through unchanged. Pods that opted
out are left alone and named on standard error.`

// runInject runs the inject subcommand and returns the exit code. Nothing is
// written to out unless every document was read and injected.
func runInject(args []string, in io.Reader, out, errOut io.Writer) int {
	fs := flag.NewFlagSet("inject", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.Usage = func() { fmt.Fprintln(errOut, injectUsage); fs.PrintDefaults() }
	file := fs.String("f", "", "File of manifests; - for standard input.")
	mesh := fs.String("mesh", "osm", "Name of the mesh, used when --mesh-file is not given; the mesh's defaults apply.")
	meshFile := fs.String("mesh-file", "", "A MeshInstance manifest whose spec.sidecar and spec.xds configure the sidecar.")
	operatorNS := fs.String("operator-namespace", "osm-system", "Namespace of the operator, whose xDS Service the proxies dial.")
	initImage := fs.String("init-image", inject.DefaultInitImage, "Init container image, when the mesh names none.")
	sidecarImage := fs.String("sidecar-image", inject.DefaultSidecarImage, "Envoy image of the sidecar, when the mesh names none: the operator's --sidecar-image, so that the MeshMember counts these pods as up to date.")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *file == "" {
		fs.Usage()
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(errOut, "osm-operator inject:", err)
		return 1
	}
	mi := &meshv1alpha1.MeshInstance{}
	mi.Name = *mesh
	if *meshFile != "" {
		raw, err := os.ReadFile(*meshFile)
		if err != nil {
			return fail(err)
		}
		if err := yaml.UnmarshalStrict(raw, mi); err != nil {
			return fail(fmt.Errorf("%s: %w", *meshFile, err))
		}
		if mi.Kind != "MeshInstance" || mi.Name == "" {
			return fail(fmt.Errorf("%s: not a named MeshInstance (kind %q, name %q)", *meshFile, mi.Kind, mi.Name))
		}
	}
	var raw []byte
	var err error
	if *file == "-" {
		raw, err = io.ReadAll(in)
	} else {
		raw, err = os.ReadFile(*file)
	}
	if err != nil {
		return fail(err)
	}
	injected, notes, err := inject.Manifests(raw, inject.ConfigFor(mi, *operatorNS, inject.Images{Init: *initImage, Sidecar: *sidecarImage}))
	if err != nil {
		return fail(fmt.Errorf("%s: %w", *file, err))
	}
	for _, n := range notes {
		fmt.Fprintln(errOut, n)
	}
	if _, err := out.Write(injected); err != nil {
		return fail(err)
	}
	return 0
}
