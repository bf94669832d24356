package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbacnetv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/controllers"
	"github.com/open-service-mesh/osm-operator/hack/demo/progress"
	"github.com/open-service-mesh/osm-operator/internal/summary"
	"github.com/open-service-mesh/osm-operator/webhooks/inject"
	"github.com/open-service-mesh/osm-operator/xds/bootstrap"
	"github.com/open-service-mesh/osm-operator/xds/envoyrules"
	meshmodel "github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/translate"
	"github.com/open-service-mesh/osm-operator/xds/xdstest"
)

const mesh = "osm"

// waitForMesh reports each milestone of the mesh coming up.
func waitForMesh(ctx context.Context, k client.Client, p *progress.Printer) error {
	milestones := []struct {
		what string
		done func() (bool, error)
	}{
		{"the mesh's certificate authority is ready (SelfSigned → root CA → CA issuer)", func() (bool, error) {
			mi := &meshv1alpha1.MeshInstance{}
			if err := k.Get(ctx, client.ObjectKey{Name: mesh}, mi); err != nil {
				return false, client.IgnoreNotFound(err)
			}
			return meta.IsStatusConditionTrue(mi.Status.Conditions, meshv1alpha1.ConditionCertificateAuthorityReady), nil
		}},
		{"the pods of member namespaces run, with their sidecars injected", func() (bool, error) {
			for _, ns := range []string{"bookbuyer", "bookstore", "bookwarehouse", "bookthief"} {
				var pods corev1.PodList
				if err := k.List(ctx, &pods, client.InNamespace(ns)); err != nil {
					return false, err
				}
				if len(pods.Items) == 0 {
					return false, nil
				}
				for _, p := range pods.Items {
					if p.Status.Phase != corev1.PodRunning || !inject.Injected(&p) || p.Annotations[meshv1alpha1.InjectedAnnotation] != mesh {
						return false, nil
					}
				}
			}
			return true, nil
		}},
		{"every member has its identities issued", func() (bool, error) {
			var mms meshv1alpha1.MeshMemberList
			if err := k.List(ctx, &mms); err != nil {
				return false, err
			}
			for _, m := range mms.Items {
				if !meta.IsStatusConditionTrue(m.Status.Conditions, meshv1alpha1.ConditionIdentitiesReady) || m.Status.Identities == 0 {
					return false, nil
				}
			}
			return len(mms.Items) == 3, nil
		}},
		{"the mesh judged the IngressBackend and the Egress, and took them whole", func() (bool, error) {
			ib := &policyv1alpha1.IngressBackend{}
			eg := &policyv1alpha1.Egress{}
			if err := k.Get(ctx, client.ObjectKey{Namespace: "bookstore", Name: "bookstore"}, ib); err != nil {
				return false, client.IgnoreNotFound(err)
			}
			if err := k.Get(ctx, client.ObjectKey{Namespace: "bookbuyer", Name: "httpbin-org"}, eg); err != nil {
				return false, client.IgnoreNotFound(err)
			}
			return meta.IsStatusConditionTrue(ib.Status.Conditions, meshv1alpha1.ConditionReady) &&
				meta.IsStatusConditionTrue(eg.Status.Conditions, meshv1alpha1.ConditionReady), nil
		}},
		{"the bookwarehouse Service has endpoints from its pod and from the VM", func() (bool, error) {
			var slices discoveryv1.EndpointSliceList
			if err := k.List(ctx, &slices, client.InNamespace("bookwarehouse"), client.MatchingLabels{discoveryv1.LabelServiceName: "bookwarehouse"}); err != nil {
				return false, err
			}
			managers := map[string]bool{}
			for _, s := range slices.Items {
				if len(s.Endpoints) > 0 {
					managers[s.Labels[discoveryv1.LabelManagedBy]] = true
				}
			}
			return managers[controllers.EndpointSliceManager] && len(managers) == 2, nil
		}},
	}
	for _, m := range milestones {
		err := retry(ctx, 5*time.Minute, func() error {
			ok, err := m.done()
			if err == nil && !ok {
				err = fmt.Errorf("still waiting until %s", m.what)
			}
			return err
		})
		if err != nil {
			return err
		}
		p.Step("%s", m.what)
	}
	return nil
}

// waitForProxies waits until the mesh counts the connected proxies: the
// sidecars of bookbuyer and bookstore, and the VM's.
func waitForProxies(ctx context.Context, k client.Client) error {
	return retry(ctx, time.Minute, func() error {
		mi := &meshv1alpha1.MeshInstance{}
		if err := k.Get(ctx, client.ObjectKey{Name: mesh}, mi); err != nil {
			return err
		}
		got := []int32{mi.Status.ConnectedProxies}
		for _, ns := range []string{"bookbuyer", "bookstore"} {
			mm := &meshv1alpha1.MeshMember{}
			if err := k.Get(ctx, client.ObjectKey{Namespace: ns, Name: mesh}, mm); err != nil {
				return err
			}
			got = append(got, mm.Status.ProxiesConnected)
		}
		if fmt.Sprint(got) != "[3 1 1]" {
			return fmt.Errorf("connected proxies (mesh, bookbuyer, bookstore): %v, want [3 1 1]", got)
		}
		return nil
	})
}

// waitForEnforced waits until every policy's Enforced condition says where
// it is in force (none says NoProxies or Pending any more): the census has
// the proxies' ACKs and the leader wrote them, as the summary will show.
func waitForEnforced(ctx context.Context, k client.Client) error {
	return retry(ctx, time.Minute, func() error {
		var b bytes.Buffer
		if err := summary.Write(ctx, k, &b); err != nil {
			return err
		}
		for _, line := range strings.Split(b.String(), "\n") {
			if strings.Contains(line, "(NoProxies)") || strings.Contains(line, "(Pending)") {
				return fmt.Errorf("not enforced yet: %s", line)
			}
		}
		return nil
	})
}

// proxy is a connected proxy and the config it received.
type proxy struct {
	nodeID    string
	conn      *grpc.ClientConn
	listeners []*listenerv3.Listener
	clusters  []*clusterv3.Cluster
	routes    []*routev3.RouteConfiguration
	endpoints []*endpointv3.ClusterLoadAssignment
	secrets   []*tlsv3.Secret
	// bootstrap is the proxy's own: its static resources are loaded with
	// what it is sent.
	bootstrap *bootstrapv3.Bootstrap
	stream    *xdstest.Stream
}

type proxies []*proxy

func (ps proxies) close() {
	for _, p := range ps {
		p.conn.Close()
	}
}

// connectProxies connects, as their proxies would, one bookbuyer pod, one
// bookstore pod and the MeshVM, with the certificates cert-manager issued
// for them, and keeps the streams open.
func connectProxies(ctx context.Context, k client.Client, xdsAddr string) (proxies, error) {
	var out proxies
	podProxy := func(ns, app string) error {
		var pods corev1.PodList
		if err := k.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"app": app}); err != nil {
			return err
		}
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				b, err := podBootstrap(&p)
				if err != nil {
					return err
				}
				return connect(ctx, k, xdsAddr, &out, meshmodel.PodNodeID(ns, p.Name), ns, meshv1alpha1.IdentitySecretName(p.Spec.ServiceAccountName), b)
			}
		}
		return fmt.Errorf("no running %s pod in %s", app, ns)
	}
	if err := podProxy("bookbuyer", "bookbuyer"); err != nil {
		return nil, err
	}
	if err := podProxy("bookstore", "bookstore"); err != nil {
		return nil, err
	}
	vm := &corev1.Secret{}
	if err := k.Get(ctx, client.ObjectKey{Namespace: "bookwarehouse", Name: "bookwarehouse-vm-bootstrap"}, vm); err != nil {
		return nil, fmt.Errorf("reading the VM's bootstrap: %w", err)
	}
	b, err := parseBootstrap(vm.Data[controllers.BootstrapKey])
	if err != nil {
		return nil, fmt.Errorf("the VM's bootstrap: %w", err)
	}
	if err := connect(ctx, k, xdsAddr, &out, meshmodel.VMNodeID("bookwarehouse", "bookwarehouse-vm"), "bookwarehouse", "bookwarehouse-vm-bootstrap", b); err != nil {
		return nil, err
	}
	return out, nil
}

// podBootstrap is the bootstrap the injector gave a pod's sidecar.
func podBootstrap(p *corev1.Pod) (*bootstrapv3.Bootstrap, error) {
	for _, c := range p.Spec.InitContainers {
		if c.Name != inject.ProxyContainer {
			continue
		}
		for i, a := range c.Args {
			if a == "--config-yaml" && i+1 < len(c.Args) {
				return parseBootstrap([]byte(c.Args[i+1]))
			}
		}
	}
	return nil, fmt.Errorf("pod %s/%s has no sidecar bootstrap", p.Namespace, p.Name)
}

func parseBootstrap(raw []byte) (*bootstrapv3.Bootstrap, error) {
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, err
	}
	b := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal(js, b); err != nil {
		return nil, err
	}
	return b, nil
}

func connect(ctx context.Context, k client.Client, xdsAddr string, out *proxies, nodeID, ns, secret string, b *bootstrapv3.Bootstrap) error {
	s := &corev1.Secret{}
	if err := k.Get(ctx, client.ObjectKey{Namespace: ns, Name: secret}, s); err != nil {
		return fmt.Errorf("reading the identity of %s: %w", nodeID, err)
	}
	cert, err := tls.X509KeyPair(s.Data[bootstrap.CertFile], s.Data[bootstrap.KeyFile])
	if err != nil {
		return fmt.Errorf("the identity of %s: %w", nodeID, err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(s.Data[bootstrap.CAFile])
	conn, err := xdstest.Dial(xdsAddr, bootstrap.XDSServerName(mesh, "osm-system"), &cert, roots)
	if err != nil {
		return err
	}
	p := &proxy{nodeID: nodeID, conn: conn, bootstrap: b}
	*out = append(*out, p)
	stream, err := xdstest.OpenStream(ctx, conn, nodeID)
	if err != nil {
		return err
	}
	p.stream = stream
	for _, t := range []string{resourcev3.ClusterType, resourcev3.ListenerType} {
		if err := stream.Subscribe(t, nil); err != nil {
			return err
		}
	}
	if err := p.receive(stream, 2); err != nil {
		return err
	}
	// Then what the listeners and clusters name, as Envoy asks for it.
	asks := 0
	for t, names := range map[string][]string{
		resourcev3.RouteType:    rdsNames(p.listeners),
		resourcev3.EndpointType: edsNames(p.clusters),
		resourcev3.SecretType:   {translate.IdentitySecret, translate.TrustBundleSecret},
	} {
		if len(names) == 0 {
			continue
		}
		if err := stream.Subscribe(t, names); err != nil {
			return err
		}
		asks++
	}
	return p.receive(stream, asks)
}

// receive takes n responses, keeping their resources, and ACKs each.
func (p *proxy) receive(stream *xdstest.Stream, n int) error {
	for got := 0; got < n; got++ {
		r, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("%s: %w", p.nodeID, err)
		}
		for _, a := range r.GetResources() {
			m, err := a.UnmarshalNew()
			if err != nil {
				return fmt.Errorf("%s: %w", p.nodeID, err)
			}
			switch m := m.(type) {
			case *clusterv3.Cluster:
				p.clusters = append(p.clusters, m)
			case *listenerv3.Listener:
				p.listeners = append(p.listeners, m)
			case *routev3.RouteConfiguration:
				p.routes = append(p.routes, m)
			case *endpointv3.ClusterLoadAssignment:
				p.endpoints = append(p.endpoints, m)
			case *tlsv3.Secret:
				p.secrets = append(p.secrets, m)
			}
		}
		if err := stream.ACK(r); err != nil {
			return err
		}
	}
	return nil
}

// follow receives and ACKs what the server sends from now on, as a proxy
// does, until the stream ends; the resources shown stay as they were.
func (p *proxy) follow() {
	for {
		r, err := p.stream.Recv()
		if err != nil {
			return
		}
		if err := p.stream.ACK(r); err != nil {
			return
		}
	}
}

func rdsNames(ls []*listenerv3.Listener) []string {
	var out []string
	for _, l := range ls {
		for _, fc := range append(slices.Clip(l.GetFilterChains()), l.GetDefaultFilterChain()) {
			for _, f := range fc.GetFilters() {
				h := &hcmv3.HttpConnectionManager{}
				if f.GetTypedConfig().UnmarshalTo(h) == nil && h.GetRds() != nil {
					out = append(out, h.GetRds().GetRouteConfigName())
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func edsNames(cs []*clusterv3.Cluster) []string {
	var out []string
	for _, c := range cs {
		if c.GetType() == clusterv3.Cluster_EDS {
			out = append(out, c.GetEdsClusterConfig().GetServiceName())
		}
	}
	return out
}

// checkRules holds each proxy's whole config, its bootstrap with what it
// was sent, to Envoy's load rules, and prints a line per proxy.
func (ps proxies) checkRules(out io.Writer) error {
	var errs []error
	for _, p := range ps {
		r := &envoyrules.Resources{Listeners: p.listeners, Routes: p.routes, Clusters: p.clusters, Endpoints: p.endpoints, Secrets: p.secrets}
		if err := envoyrules.CheckBootstrap(p.bootstrap, r, translate.RuleOptions()); err != nil {
			fmt.Fprintf(out, "Envoy's load rules: %s: FAILED: %v\n", p.nodeID, err)
			errs = append(errs, fmt.Errorf("%s: %w", p.nodeID, err))
			continue
		}
		fmt.Fprintf(out, "Envoy's load rules: %s: pass (bootstrap with %d static listeners and %d static clusters; %d listeners, %d routes, %d clusters, %d endpoint lists, %d secrets)\n",
			p.nodeID, len(p.bootstrap.GetStaticResources().GetListeners()), len(p.bootstrap.GetStaticResources().GetClusters()),
			len(p.listeners), len(p.routes), len(p.clusters), len(p.endpoints), len(p.secrets))
	}
	return errors.Join(errs...)
}

// show summarises each proxy's config: its clusters and listeners, and for
// inbound listeners the identities their RBAC rules (from the SMI
// TrafficTargets) allow.
func (ps proxies) show(out io.Writer) {
	for _, p := range ps {
		fmt.Fprintf(out, "Proxy %s:\n", p.nodeID)
		var names []string
		for _, c := range p.clusters {
			names = append(names, c.GetName())
		}
		slices.Sort(names)
		fmt.Fprintf(out, "  clusters (%d): %s\n", len(names), strings.Join(names, ", "))
		slices.SortFunc(p.listeners, func(a, b *listenerv3.Listener) int { return strings.Compare(a.GetName(), b.GetName()) })
		for _, l := range p.listeners {
			fmt.Fprintf(out, "  listener %s: %d filter chains\n", l.GetName(), len(l.GetFilterChains()))
			for _, rule := range rbacRules(l) {
				fmt.Fprintf(out, "    %s\n", rule)
			}
		}
	}
}

var spiffeID = regexp.MustCompile(`spiffe://[^"\\]+`)

// rbacRules lists each RBAC policy of a listener with the identities it allows.
func rbacRules(l *listenerv3.Listener) []string {
	var out []string
	for _, fc := range l.GetFilterChains() {
		for _, f := range fc.GetFilters() {
			var policies map[string][]byte
			switch f.GetName() {
			case "envoy.filters.network.rbac":
				r := &rbacnetv3.RBAC{}
				if f.GetTypedConfig().UnmarshalTo(r) == nil {
					policies = marshalPolicies(r.GetRules().GetPolicies())
				}
			case "envoy.filters.network.http_connection_manager":
				h := &hcmv3.HttpConnectionManager{}
				if f.GetTypedConfig().UnmarshalTo(h) != nil {
					continue
				}
				for _, hf := range h.GetHttpFilters() {
					r := &rbachttpv3.RBAC{}
					if hf.GetName() == "envoy.filters.http.rbac" && hf.GetTypedConfig().UnmarshalTo(r) == nil {
						policies = marshalPolicies(r.GetRules().GetPolicies())
					}
				}
			}
			for name, raw := range policies {
				ids := slices.Compact(slices.Sorted(slices.Values(spiffeID.FindAllString(string(raw), -1))))
				if len(ids) == 0 {
					// A policy for callers outside the mesh names addresses.
					ids = addressesIn(raw)
				}
				out = append(out, fmt.Sprintf("chain %s: RBAC %s allows %s", fc.GetName(), name, strings.Join(ids, ", ")))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// addressesIn are the caller address ranges a marshalled RBAC policy
// names, as CIDRs.
func addressesIn(raw []byte) []string {
	var out []string
	for _, m := range remoteIP.FindAllSubmatch(raw, -1) {
		out = append(out, string(m[1])+"/"+string(m[2]))
	}
	return slices.Compact(slices.Sorted(slices.Values(out)))
}

// protojson may put spaces after its colons and commas.
var remoteIP = regexp.MustCompile(`"directRemoteIp":\s*\{\s*"addressPrefix":\s*"([^"]+)",\s*"prefixLen":\s*(\d+)\s*\}`)

func marshalPolicies(m map[string]*rbacv3.Policy) map[string][]byte {
	out := map[string][]byte{}
	for name, p := range m {
		raw, err := protojson.Marshal(p)
		if err == nil {
			out[name] = raw
		}
	}
	return out
}
