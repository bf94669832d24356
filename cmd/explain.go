package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/open-service-mesh/osm-operator/xds/census"
	"github.com/open-service-mesh/osm-operator/xds/explain"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/routesim"
)

const explainUsage = `usage: osm-operator explain --from <ns>/<serviceaccount|pod> --to <service>.<ns>:<port>
          [--method M] [--path P] [--header name=value ...] | [--grpc package.Service/Method]
       osm-operator explain pod <ns>/<pod>

Says what happens to one request in the mesh of the cluster of the current
kubeconfig: the route and backends (with their shares) the caller's proxy
picks, whether each backend's proxy allows it and by which policy (by
evaluating the RBAC configuration the control plane sends that proxy),
whether mutual TLS is required, and the resilience settings in force. It
builds the model and translates it with the control plane's own code, and
says how many of the caller's proxies hold that config, from the census
the control plane's replicas publish (Leases of --namespace).

explain pod says of a pod: its proxy group, the config version the model
gives it, and what the group's connected proxies run (the census counts
per group, not per proxy), with the last rejection.

Exit code: 0 when the request is allowed, 3 when it is denied, 1 on error.`

// explainDenied is the exit code of a denied request.
const explainDenied = 3

// headerFlags collect repeated --header name=value flags.
type headerFlags routesim.Headers

func (h *headerFlags) String() string { return fmt.Sprint(*h) }

func (h *headerFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("header %q is not name=value", v)
	}
	*h = append(*h, routesim.Header{Name: strings.ToLower(name), Value: value})
	return nil
}

// runExplain runs the explain subcommand and returns the exit code.
func runExplain(args []string, out, errOut io.Writer, config func() (*rest.Config, error)) int {
	if len(args) > 0 && args[0] == "pod" {
		return runExplainPod(args[1:], out, errOut, config)
	}
	fset := flag.NewFlagSet("explain", flag.ContinueOnError)
	fset.SetOutput(errOut)
	fset.Usage = func() { fmt.Fprintln(errOut, explainUsage); fset.PrintDefaults() }
	from := fset.String("from", "", "The caller: <namespace>/<pod> or <namespace>/<serviceaccount>.")
	to := fset.String("to", "", "The destination: <service>.<namespace>:<port number or name>.")
	method := fset.String("method", "GET", "The request's method.")
	path := fset.String("path", "/", "The request's path, with its query string.")
	grpcMethod := fset.String("grpc", "", "A gRPC call instead of an HTTP request: <package.Service>/<Method>.")
	var headers headerFlags
	fset.Var(&headers, "header", "A request header, name=value; repeatable.")
	clusterDomain := fset.String("cluster-domain", mesh.DefaultClusterDomain, "The cluster's DNS domain, as the operator's --cluster-domain.")
	namespace := fset.String("namespace", "osm-system", "The operator's namespace, where its replicas publish their census.")
	timeout := fset.Duration("timeout", time.Minute, "How long to wait for the API server.")
	if err := fset.Parse(args); err != nil || fset.NArg() > 0 || *from == "" || *to == "" {
		fset.Usage()
		return 1
	}
	fail := func(err error) int {
		fmt.Fprintln(errOut, "osm-operator explain:", err)
		return 1
	}
	fromNS, fromName, ok := strings.Cut(*from, "/")
	if !ok || fromNS == "" || fromName == "" {
		return fail(fmt.Errorf("--from %q is not <namespace>/<name>", *from))
	}
	hostPort := strings.SplitN(*to, ":", 2)
	svcName, svcNS, ok := strings.Cut(hostPort[0], ".")
	if !ok || len(hostPort) != 2 || svcName == "" || svcNS == "" {
		return fail(fmt.Errorf("--to %q is not <service>.<namespace>:<port>", *to))
	}
	svcNS, _, _ = strings.Cut(svcNS, ".") // <ns>.svc.<domain> is <ns>
	c, err := clusterClient(config)
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	in, meshes, err := mesh.List(ctx, c)
	if err != nil {
		return fail(fmt.Errorf("reading the cluster: %w", err))
	}
	in.ClusterDomain = *clusterDomain
	// The caller: a pod's group, else the service account's.
	var pod *corev1.Pod
	p := &corev1.Pod{}
	switch err := c.Get(ctx, client.ObjectKey{Namespace: fromNS, Name: fromName}, p); {
	case err == nil:
		pod = p
	case !apierrors.IsNotFound(err):
		return fail(err)
	}
	dst := mesh.ServiceKey{Namespace: svcNS, Name: svcName}
	for _, mi := range meshes {
		in.Mesh = mi
		m, _ := mesh.Build(in)
		svc := m.Service(dst)
		if svc == nil {
			continue
		}
		q := explain.Query{To: dst, Method: *method, Path: *path, Headers: routesim.Headers(headers)}
		if q.Port, err = servicePort(svc, hostPort[1]); err != nil {
			return fail(err)
		}
		if *grpcMethod != "" {
			if err := q.GRPC(*grpcMethod); err != nil {
				return fail(err)
			}
		}
		var note string
		q.From, note = caller(m, fromNS, fromName, pod)
		a, err := explain.Explain(m, q)
		if err != nil {
			return fail(err)
		}
		if note != "" {
			a.Notes = append([]string{note}, a.Notes...)
		}
		held := heldBy(ctx, c, *namespace, q.From.String(), a.Version)
		a.Held = &held
		if err := a.Write(out); err != nil {
			return fail(err)
		}
		if !a.Allowed {
			return explainDenied
		}
		return 0
	}
	return fail(fmt.Errorf("Service %s is in no mesh", dst))
}

// heldBy is what the census of the replicas in namespace says of group at
// version.
func heldBy(ctx context.Context, c client.Reader, namespace, group, version string) explain.Held {
	cs, err := census.ReadWithGroups(ctx, c, namespace, time.Now())
	if err != nil {
		return explain.Held{Group: group, Version: version, Err: err}
	}
	return explain.HeldBy(group, version, cs)
}

// runExplainPod runs explain pod and returns the exit code.
func runExplainPod(args []string, out, errOut io.Writer, config func() (*rest.Config, error)) int {
	fset := flag.NewFlagSet("explain pod", flag.ContinueOnError)
	fset.SetOutput(errOut)
	fset.Usage = func() { fmt.Fprintln(errOut, explainUsage); fset.PrintDefaults() }
	clusterDomain := fset.String("cluster-domain", mesh.DefaultClusterDomain, "The cluster's DNS domain, as the operator's --cluster-domain.")
	namespace := fset.String("namespace", "osm-system", "The operator's namespace, where its replicas publish their census.")
	timeout := fset.Duration("timeout", time.Minute, "How long to wait for the API server.")
	if err := fset.Parse(args); err != nil || fset.NArg() != 1 {
		fset.Usage()
		return 1
	}
	fail := func(err error) int {
		fmt.Fprintln(errOut, "osm-operator explain pod:", err)
		return 1
	}
	ns, name, ok := strings.Cut(fset.Arg(0), "/")
	if !ok || ns == "" || name == "" {
		return fail(fmt.Errorf("%q is not <namespace>/<pod>", fset.Arg(0)))
	}
	c, err := clusterClient(config)
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	pod := &corev1.Pod{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, pod); err != nil {
		return fail(err)
	}
	in, meshes, err := mesh.List(ctx, c)
	if err != nil {
		return fail(fmt.Errorf("reading the cluster: %w", err))
	}
	in.ClusterDomain = *clusterDomain
	for _, mi := range meshes {
		in.Mesh = mi
		m, _ := mesh.Build(in)
		g, note := caller(m, ns, name, pod)
		if !slices.Contains(m.Groups, g) {
			continue
		}
		version, err := explain.GroupVersion(m, g)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(out, "pod %s/%s: proxy group %s of mesh %s\n", ns, name, g, mi.Name)
		if note != "" {
			fmt.Fprintf(out, "  note: %s\n", note)
		}
		fmt.Fprintf(out, "  %s\n", heldBy(ctx, c, *namespace, g.String(), version))
		return 0
	}
	return fail(fmt.Errorf("pod %s/%s runs in no proxy group of a mesh (not a member, not injected, or opted out)", ns, name))
}

// caller is the proxy group of the caller: a pod's, else the first group
// of the service account (an Envoy sidecar's when it has none).
func caller(m *mesh.Mesh, ns, name string, pod *corev1.Pod) (mesh.Group, string) {
	if pod != nil {
		g := mesh.PodGroup(pod)
		if !slices.Contains(m.Groups, g) {
			return g, fmt.Sprintf("pod %s/%s is not a meshed workload of mesh %s: explained as if its proxy were", ns, name, m.Name)
		}
		return g, ""
	}
	id := mesh.Identity{Namespace: ns, ServiceAccount: mesh.ServiceAccountOf(name)}
	for _, g := range m.Groups {
		if g.Identity == id {
			return g, ""
		}
	}
	return mesh.Group{Kind: mesh.ProxyEnvoy, Identity: id}, fmt.Sprintf("no workload of %s is in mesh %s: explained as an Envoy sidecar of it would see it", id, m.Name)
}

// servicePort is the port of svc named or numbered p.
func servicePort(svc *mesh.Service, p string) (int32, error) {
	for _, port := range svc.Ports {
		if port.Name == p || strconv.Itoa(int(port.Port)) == p {
			return port.Port, nil
		}
	}
	return 0, fmt.Errorf("Service %s has no port %q", svc.Key, p)
}
