package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/open-service-mesh/osm-operator/internal/manifests"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/plan"
)

const planUsage = `usage: osm-operator plan -f <file|dir|-> [--namespace ns] [--server-dry-run=false]

Reads proposed manifests (multi-document YAML or JSON; a directory is read
recursively, or rendered with kustomize when it holds a kustomization), puts
them over the live state of the cluster of the current kubeconfig, and prints
which proxy groups' configuration would change and how, and the problems the
mesh would report. The API server checks each object with a server-side dry
run; nothing is written.

Exit code: 0 when nothing would change, 2 when something would, 1 on error
(including an object the API server refuses).`

// Plan exit codes.
const (
	planNoChange = 0
	planError    = 1
	planChanges  = 2
)

// runPlan runs the plan subcommand against the cluster of config and
// returns the exit code.
func runPlan(args []string, in io.Reader, out, errOut io.Writer, config func() (*rest.Config, error)) int {
	fset := flag.NewFlagSet("plan", flag.ContinueOnError)
	fset.SetOutput(errOut)
	fset.Usage = func() { fmt.Fprintln(errOut, planUsage); fset.PrintDefaults() }
	file := fset.String("f", "", "File or directory of manifests; - for standard input.")
	namespace := fset.String("namespace", "default", "Namespace of the namespaced objects that name none.")
	dryRun := fset.Bool("server-dry-run", true, "Have the API server check each object (a dry run: nothing is written).")
	clusterDomain := fset.String("cluster-domain", mesh.DefaultClusterDomain, "The cluster's DNS domain, as the operator's --cluster-domain.")
	timeout := fset.Duration("timeout", 2*time.Minute, "How long to wait for the API server.")
	if err := fset.Parse(args); err != nil {
		return planError
	}
	if *file == "" || fset.NArg() > 0 {
		fset.Usage()
		return planError
	}
	fail := func(err error) int {
		fmt.Fprintln(errOut, "osm-operator plan:", err)
		return planError
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	objs, err := readManifests(*file, in, *namespace)
	if err != nil {
		return fail(err)
	}
	c, err := clusterClient(config)
	if err != nil {
		return fail(err)
	}
	inputs, meshes, err := mesh.List(ctx, c)
	if err != nil {
		return fail(fmt.Errorf("reading the cluster: %w", err))
	}
	inputs.ClusterDomain = *clusterDomain
	live := plan.State{Inputs: inputs, Meshes: meshes}
	typed, other, err := typedObjects(objs)
	if err != nil {
		return fail(err)
	}
	refused := 0
	if *dryRun {
		var ok []client.Object
		for _, o := range typed {
			switch err := serverDryRun(ctx, c, o); {
			case err == nil:
				ok = append(ok, o)
			case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
				fmt.Fprintf(errOut, "note: %s not checked by the API server (%v)\n", objectName(o), err)
				ok = append(ok, o)
			default:
				refused++
				fmt.Fprintf(out, "! refused by the API server: %s: %v\n", objectName(o), err)
			}
		}
		typed = ok
	}
	after, ignored, err := plan.Apply(live, typed)
	if err != nil {
		return fail(err)
	}
	for _, o := range append(other, ignored...) {
		fmt.Fprintf(errOut, "note: %s is not read by the mesh; its effect (pods, for a workload) is not planned\n", objectName(o))
	}
	plans := plan.Compute(live, after)
	if err := plan.Write(out, plans); err != nil {
		return fail(err)
	}
	if refused > 0 {
		return planError
	}
	if slices.ContainsFunc(plans, func(p plan.MeshPlan) bool { return !p.Empty() }) {
		return planChanges
	}
	return planNoChange
}

// readManifests reads the objects of file: a manifest, a directory of them
// (rendered with kustomize when it holds a kustomization), or "-" for in.
// A namespaced object without a namespace gets namespace.
func readManifests(file string, in io.Reader, namespace string) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	readDoc := func(name string, raw []byte) error {
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
		for i := 0; ; i++ {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: document %d: %w", name, i, err)
			}
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			u := &unstructured.Unstructured{}
			if err := utilyaml.Unmarshal(doc, &u.Object); err != nil {
				return fmt.Errorf("%s: document %d: %w", name, i, err)
			}
			if len(u.Object) == 0 {
				continue // a document of comments only
			}
			if u.GetKind() == "" || u.GetAPIVersion() == "" {
				return fmt.Errorf("%s: document %d has no apiVersion and kind", name, i)
			}
			if u.IsList() {
				if err := u.EachListItem(func(o runtime.Object) error {
					objs = append(objs, o.(*unstructured.Unstructured))
					return nil
				}); err != nil {
					return fmt.Errorf("%s: document %d: %w", name, i, err)
				}
				continue
			}
			objs = append(objs, u)
		}
	}
	switch info, err := os.Stat(file); {
	case file == "-":
		raw, err := io.ReadAll(in)
		if err != nil {
			return nil, err
		}
		if err := readDoc("standard input", raw); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	case info.IsDir() && hasKustomization(file):
		rendered, err := manifests.Kustomize(file)
		if err != nil {
			return nil, err
		}
		objs = rendered
	case info.IsDir():
		err := filepath.WalkDir(file, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if ext := filepath.Ext(path); ext != ".yaml" && ext != ".yml" && ext != ".json" {
				return nil
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return readDoc(path, raw)
		})
		if err != nil {
			return nil, err
		}
	default:
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		if err := readDoc(file, raw); err != nil {
			return nil, err
		}
	}
	for _, o := range objs {
		if o.GetNamespace() == "" && !clusterScoped[o.GroupVersionKind().GroupKind().String()] {
			o.SetNamespace(namespace)
		}
	}
	return objs, nil
}

// clusterScoped are the cluster-scoped kinds of the mesh and of Kubernetes
// a GitOps repository commonly holds.
var clusterScoped = map[string]bool{
	"MeshInstance.mesh.openservicemesh.io": true, "Namespace": true,
	"ClusterRole.rbac.authorization.k8s.io": true, "ClusterRoleBinding.rbac.authorization.k8s.io": true,
	"CustomResourceDefinition.apiextensions.k8s.io": true, "ClusterIssuer.cert-manager.io": true,
}

func hasKustomization(dir string) bool {
	for _, n := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			return true
		}
	}
	return false
}

// typedObjects converts the objects of kinds the mesh's scheme knows;
// the others are returned apart, as read.
func typedObjects(objs []*unstructured.Unstructured) ([]client.Object, []client.Object, error) {
	scheme := mesh.NewScheme()
	var typed, other []client.Object
	for _, u := range objs {
		gvk := u.GroupVersionKind()
		if !scheme.Recognizes(gvk) {
			other = append(other, u)
			continue
		}
		o, err := scheme.New(gvk)
		if err != nil {
			return nil, nil, err
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, o, true); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", objectName(u), err)
		}
		typed = append(typed, o.(client.Object))
	}
	return typed, other, nil
}

// serverDryRun has the API server check o as an apply would create or
// update it, writing nothing.
func serverDryRun(ctx context.Context, c client.Client, o client.Object) error {
	probe := o.DeepCopyObject().(client.Object)
	err := c.Create(ctx, probe, client.DryRunAll)
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	current := o.DeepCopyObject().(client.Object)
	if err := c.Get(ctx, client.ObjectKeyFromObject(o), current); err != nil {
		return err
	}
	probe = o.DeepCopyObject().(client.Object)
	probe.SetResourceVersion(current.GetResourceVersion())
	return c.Update(ctx, probe, client.DryRunAll)
}

// objectName is "Kind namespace/name" of o.
func objectName(o client.Object) string {
	kind := o.GetObjectKind().GroupVersionKind().Kind
	if kind == "" {
		kind = fmt.Sprintf("%T", o)
		kind = kind[strings.LastIndex(kind, ".")+1:]
	}
	if ns := o.GetNamespace(); ns != "" {
		return kind + " " + ns + "/" + o.GetName()
	}
	return kind + " " + o.GetName()
}
