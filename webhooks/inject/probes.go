package inject

import (
	"fmt"
	"slices"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/open-service-mesh/osm-operator/xds/bootstrap"
)

// probeConfig is what the proxy needs to serve the pod's rewritten probes.
type probeConfig struct {
	routes   []probeRoute
	clusters []probeCluster
	grpc     []grpcProbe
}

type probeRoute struct{ path, cluster, target string }

type probeCluster struct {
	name string
	port int32
	tls  bool
}

type grpcProbe struct{ proxyPort, appPort int32 }

// key says what the proxy's probe listeners are made of: pods with the same
// probes have the same key.
func (p probeConfig) key() string { return fmt.Sprint(p.routes, p.clusters, p.grpc) }

// rewriteProbes points the app containers' HTTP and gRPC probes at the
// proxy, which forwards them in plain text to the app on localhost: the
// kubelet has no mesh certificate, and inbound traffic to app ports requires
// one. HTTP probes go to ProbePort with a path naming the container and the
// probe; gRPC probes to a port of their own. TCP and exec probes are left
// alone (a TCP probe reaches the proxy's inbound listener and so tests that
// the proxy accepts connections).
func rewriteProbes(pod *corev1.Pod) probeConfig {
	var out probeConfig
	clusters := map[string]bool{}
	grpcPorts := map[int32]int32{} // app port → proxy port
	for ci := range pod.Spec.Containers {
		c := &pod.Spec.Containers[ci]
		for _, kp := range []struct {
			kind  string
			probe *corev1.Probe
		}{{"liveness", c.LivenessProbe}, {"readiness", c.ReadinessProbe}, {"startup", c.StartupProbe}} {
			p := kp.probe
			switch {
			case p == nil:
			case p.HTTPGet != nil && p.HTTPGet.Host == "":
				port, ok := resolvePort(c, p.HTTPGet.Port)
				if !ok {
					continue // the kubelet will report it; nothing to forward to
				}
				tls := p.HTTPGet.Scheme == corev1.URISchemeHTTPS
				scheme := "http"
				if tls {
					scheme = "https"
				}
				name := fmt.Sprintf("probe|%d|%s", port, scheme)
				if !clusters[name] {
					clusters[name] = true
					out.clusters = append(out.clusters, probeCluster{name, port, tls})
				}
				path := fmt.Sprintf("/osm-probe/%s/%s", c.Name, kp.kind)
				target := p.HTTPGet.Path
				if target == "" {
					target = "/"
				}
				out.routes = append(out.routes, probeRoute{path, name, target})
				p.HTTPGet.Port, p.HTTPGet.Path, p.HTTPGet.Scheme = intstr.FromInt32(ProbePort), path, corev1.URISchemeHTTP
			case p.GRPC != nil:
				if _, ok := grpcPorts[p.GRPC.Port]; !ok && GRPCProbePort+int32(len(out.grpc)) <= lastProxyPort {
					to := GRPCProbePort + int32(len(out.grpc))
					grpcPorts[p.GRPC.Port] = to
					out.grpc = append(out.grpc, grpcProbe{to, p.GRPC.Port})
				}
				if to, ok := grpcPorts[p.GRPC.Port]; ok {
					p.GRPC.Port = to
				}
			}
		}
	}
	slices.SortFunc(out.clusters, func(a, b probeCluster) int { return strings.Compare(a.name, b.name) })
	return out
}

// resources are the proxy's static listeners and clusters: its health
// listener and those of the pod's probes.
func (p probeConfig) resources() ([]*listenerv3.Listener, []*clusterv3.Cluster) {
	listeners := []*listenerv3.Listener{healthListener()}
	clusters := []*clusterv3.Cluster{localCluster("osm-admin", bootstrap.AdminPort, false)}
	if len(p.routes) > 0 {
		routes := make([]*routev3.Route, 0, len(p.routes))
		for _, r := range p.routes {
			routes = append(routes, &routev3.Route{
				Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: r.path}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{
					ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: r.cluster},
					PrefixRewrite:    r.target,
					Timeout:          durationpb.New(0),
				}},
			})
		}
		listeners = append(listeners, httpListener("osm-probes", ProbePort, routes))
	}
	for _, c := range p.clusters {
		clusters = append(clusters, localCluster(c.name, c.port, c.tls))
	}
	for _, g := range p.grpc {
		name := fmt.Sprintf("probe|%d|grpc", g.appPort)
		clusters = append(clusters, localCluster(name, g.appPort, false))
		listeners = append(listeners, tcpListener(name, g.proxyPort, name))
	}
	return listeners, clusters
}

// resolvePort finds a probe's port number, by name among the container's
// ports when it is a name.
func resolvePort(c *corev1.Container, port intstr.IntOrString) (int32, bool) {
	if port.Type == intstr.Int {
		return port.IntVal, port.IntVal > 0
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

// healthListener serves the sidecar's own readiness on HealthPort: Envoy's
// /ready, true once the first config from the operator is in.
func healthListener() *listenerv3.Listener {
	return httpListener("osm-health", HealthPort, []*routev3.Route{{
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: "/healthz/ready"}},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "osm-admin"},
			PrefixRewrite:    "/ready",
		}},
	}})
}

func httpListener(name string, port uint32, routes []*routev3.Route) *listenerv3.Listener {
	router := mustAny(&routerv3.Router{})
	hcm := mustAny(&hcmv3.HttpConnectionManager{
		StatPrefix: name,
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
			Name:         name,
			VirtualHosts: []*routev3.VirtualHost{{Name: name, Domains: []string{"*"}, Routes: routes}},
		}},
		HttpFilters: []*hcmv3.HttpFilter{{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: router}}},
	})
	return &listenerv3.Listener{
		Name:    name,
		Address: bootstrap.SocketAddress("0.0.0.0", port),
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name: "envoy.filters.network.http_connection_manager", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: hcm},
		}}}},
	}
}

func tcpListener(name string, port int32, cluster string) *listenerv3.Listener {
	tcp := mustAny(&tcpproxyv3.TcpProxy{StatPrefix: name, ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: cluster}})
	return &listenerv3.Listener{
		Name:    name,
		Address: bootstrap.SocketAddress("0.0.0.0", uint32(port)),
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name: "envoy.filters.network.tcp_proxy", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: tcp},
		}}}},
	}
}

// localCluster reaches the app on localhost; with tls, without verifying it,
// as the kubelet does.
func localCluster(name string, port int32, tls bool) *clusterv3.Cluster {
	c := &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(1e9),
		LoadAssignment:       bootstrap.StaticEndpoint(name, "127.0.0.1", uint32(port)),
	}
	if tls {
		c.TransportSocket = &corev3.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{
			TypedConfig: mustAny(&tlsv3.UpstreamTlsContext{}),
		}}
	}
	return c
}

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(fmt.Sprintf("packing %T: %v", m, err)) // only for messages of known types
	}
	return a
}
