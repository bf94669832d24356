package translate_test

import (
	"slices"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	rawbufferv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/open-service-mesh/osm-operator/xds/envoyrules"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// halfRolled is a permissive mesh where web's Deployment is half rolled:
// web-1 has its sidecar, web-2 (created before the namespace joined) has
// none, and runs as the namespace's default service account. api is backed by web-1 alone; db is headless, db-0 meshed and db-1
// not. client, meshed, calls them all; so does a proxyless gRPC client.
const halfRolled = `
apiVersion: mesh.openservicemesh.io/v1alpha1
kind: MeshInstance
metadata: {name: osm}
spec: {trafficPolicy: {mode: Permissive}}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {openservicemesh.io/monitor: osm}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {clusterIP: 10.96.0.1, ports: [{name: http, port: 80, appProtocol: http}]}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec: {clusterIP: 10.96.0.2, ports: [{name: http, port: 80, appProtocol: http}]}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec: {clusterIP: None, ports: [{name: sql, port: 5432}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client-1, namespace: shop}
spec: {serviceAccountName: client, initContainers: [{name: osm-envoy, image: envoy, restartPolicy: Always}], containers: [{name: app, image: app}]}
status: {podIP: 10.1.0.9, podIPs: [{ip: 10.1.0.9}]}
---
apiVersion: v1
kind: Pod
metadata: {name: grpc-1, namespace: shop, annotations: {openservicemesh.io/proxy: grpc}}
spec: {serviceAccountName: grpc, containers: [{name: app, image: app, env: [{name: GRPC_XDS_BOOTSTRAP_CONFIG, value: "{}"}]}]}
status: {podIP: 10.1.0.8, podIPs: [{ip: 10.1.0.8}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop}
spec: {serviceAccountName: web, initContainers: [{name: osm-envoy, image: envoy, restartPolicy: Always}], containers: [{name: app, image: app}]}
status: {podIP: 10.1.0.1, podIPs: [{ip: 10.1.0.1}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, namespace: shop}
spec: {containers: [{name: app, image: app}]}
status: {podIP: 10.1.0.2, podIPs: [{ip: 10.1.0.2}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, namespace: shop}
spec: {serviceAccountName: db, initContainers: [{name: osm-envoy, image: envoy, restartPolicy: Always}], containers: [{name: app, image: app}]}
status: {podIP: 10.1.0.10, podIPs: [{ip: 10.1.0.10}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db-1, namespace: shop}
spec: {serviceAccountName: db, containers: [{name: app, image: app}]}
status: {podIP: 10.1.0.11, podIPs: [{ip: 10.1.0.11}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- {addresses: [10.1.0.1], targetRef: {kind: Pod, name: web-1}}
- {addresses: [10.1.0.2], targetRef: {kind: Pod, name: web-2}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: api-1, namespace: shop, labels: {kubernetes.io/service-name: api}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- {addresses: [10.1.0.1], targetRef: {kind: Pod, name: web-1}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: db-1, namespace: shop, labels: {kubernetes.io/service-name: db}}
addressType: IPv4
ports: [{name: sql, port: 5432}]
endpoints:
- {addresses: [10.1.0.10], targetRef: {kind: Pod, name: db-0}}
- {addresses: [10.1.0.11], targetRef: {kind: Pod, name: db-1}}
`

func halfRolledMesh(t *testing.T) *mesh.Mesh {
	t.Helper()
	in, err := meshtest.Decode([]byte(halfRolled))
	if err != nil {
		t.Fatal(err)
	}
	m, problems := mesh.Build(in)
	if len(problems) != 0 {
		t.Fatalf("problems %v", problems)
	}
	return m
}

func clusterNamed(t *testing.T, r *translate.Resources, name string) *clusterv3.Cluster {
	t.Helper()
	i := slices.IndexFunc(r.Clusters, func(c *clusterv3.Cluster) bool { return c.GetName() == name })
	if i < 0 {
		t.Fatalf("no cluster %s", name)
	}
	return r.Clusters[i]
}

func endpointsNamed(t *testing.T, r *translate.Resources, name string) map[string]*endpointv3.LbEndpoint {
	t.Helper()
	out := map[string]*endpointv3.LbEndpoint{}
	for _, cla := range r.Endpoints {
		if cla.GetClusterName() != name {
			continue
		}
		for _, l := range cla.GetEndpoints() {
			for _, e := range l.GetLbEndpoints() {
				out[e.GetEndpoint().GetAddress().GetSocketAddress().GetAddress()] = e
			}
		}
	}
	return out
}

// TestAPodWithoutAProxyIsReachedInPlaintext: a caller's sidecar reaches a
// Service's endpoints with mutual TLS, verifying the server's SPIFFE ID, by
// the cluster's default transport socket; an endpoint the model says has no
// proxy is labelled so in EDS and, by the cluster's one transport socket
// match, reached in plaintext; its identity is not one the caller accepts
// in mutual TLS (it presents no certificate). An endpoint without the label, whatever
// happens to labels, gets mutual TLS. A cluster whose endpoints all have
// proxies has no match at all. A headless service's endpoint with no proxy
// is reached at the address dialled, in plaintext. Before, every endpoint
// was reached with mutual TLS, and the pod with no proxy refused it.
func TestAPodWithoutAProxyIsReachedInPlaintext(t *testing.T) {
	m := halfRolledMesh(t)
	var groups []string
	for _, g := range m.Groups {
		groups = append(groups, g.String())
	}
	if want := []string{"envoy/shop/client", "envoy/shop/db", "envoy/shop/web", "grpc/shop/grpc"}; !slices.Equal(groups, want) {
		t.Errorf("groups %v, want %v (web-2, shop/default, has no proxy)", groups, want)
	}
	g := mesh.Group{Kind: mesh.ProxyEnvoy, Identity: mesh.Identity{Namespace: "shop", ServiceAccount: "client"}}
	r, err := translate.Translate(m.View(g), fakeCerts(g))
	if err != nil {
		t.Fatal(err)
	}
	if err := envoyrules.Check(r.Envoy(), translate.RuleOptions()); err != nil {
		t.Error(err)
	}

	web := clusterNamed(t, r, "out|shop/web|80")
	tls := &tlsv3.UpstreamTlsContext{}
	if err := web.GetTransportSocket().GetTypedConfig().UnmarshalTo(tls); err != nil {
		t.Fatalf("web's default transport socket is not TLS: %v", err)
	}
	if sans := tls.GetCommonTlsContext().GetCombinedValidationContext().GetDefaultValidationContext().GetMatchTypedSubjectAltNames(); len(sans) != 1 ||
		sans[0].GetMatcher().GetExact() != "spiffe://cluster.local/ns/shop/sa/web" {
		t.Errorf("web's mutual TLS accepts %v", sans)
	}
	matches := web.GetTransportSocketMatches()
	if len(matches) != 1 {
		t.Fatalf("web has %d transport socket matches, want 1", len(matches))
	}
	if err := matches[0].GetTransportSocket().GetTypedConfig().UnmarshalTo(&rawbufferv3.RawBuffer{}); err != nil {
		t.Errorf("the match's socket is not plaintext: %v", err)
	}
	label := matches[0].GetMatch().AsMap()
	if len(label) == 0 {
		t.Fatal("the match matches every endpoint")
	}
	eps := endpointsNamed(t, r, "out|shop/web|80")
	if len(eps) != 2 {
		t.Fatalf("web's endpoints %v", eps)
	}
	if md := eps["10.1.0.1"].GetMetadata(); md != nil {
		t.Errorf("the meshed endpoint is labelled %v", md)
	}
	got := eps["10.1.0.2"].GetMetadata().GetFilterMetadata()["envoy.transport_socket_match"].AsMap()
	for k, v := range label {
		if got[k] != v {
			t.Errorf("the endpoint with no proxy is labelled %v, which the match %v does not match", got, label)
		}
	}

	api := clusterNamed(t, r, "out|shop/api|80")
	if len(api.GetTransportSocketMatches()) != 0 {
		t.Errorf("api's endpoints all have proxies, yet it has matches %v", api.GetTransportSocketMatches())
	}

	// db-1 (10.1.0.11) is dialled directly: a chain of its own takes it
	// to a plaintext cluster; db-0's chain keeps mutual TLS.
	clusterOf := map[string]string{}
	for _, l := range r.Listeners {
		for _, fc := range l.GetFilterChains() {
			for _, pr := range fc.GetFilterChainMatch().GetPrefixRanges() {
				tp := &tcpproxyv3.TcpProxy{}
				if len(fc.GetFilters()) == 1 && fc.GetFilters()[0].GetTypedConfig().UnmarshalTo(tp) == nil {
					clusterOf[pr.GetAddressPrefix()] = tp.GetCluster()
				}
			}
		}
	}
	for addr, wantTLS := range map[string]bool{"10.1.0.10": true, "10.1.0.11": false} {
		c := clusterNamed(t, r, clusterOf[addr])
		if c.GetType() != clusterv3.Cluster_ORIGINAL_DST {
			t.Errorf("%s goes to %s, of type %s", addr, c.GetName(), c.GetType())
		}
		if hasTLS := c.GetTransportSocket() != nil; hasTLS != wantTLS {
			t.Errorf("%s goes to %s, with TLS %v, want %v", addr, c.GetName(), hasTLS, wantTLS)
		}
	}
}

// TestAProxylessClientReachesOnlyMeshedEndpoints: grpc-go refuses a cluster
// with transport_socket_matches (xdsresource's CDS validation) and would
// speak mutual TLS to every endpoint, so a proxyless gRPC client is sent
// only the endpoints that have a proxy.
func TestAProxylessClientReachesOnlyMeshedEndpoints(t *testing.T) {
	m := halfRolledMesh(t)
	g := mesh.Group{Kind: mesh.ProxyGRPC, Identity: mesh.Identity{Namespace: "shop", ServiceAccount: "grpc"}}
	r, err := translate.Translate(m.View(g), fakeCerts(g))
	if err != nil {
		t.Fatal(err)
	}
	if c := clusterNamed(t, r, "out|shop/web|80"); len(c.GetTransportSocketMatches()) != 0 {
		t.Errorf("the gRPC cluster has transport socket matches, which grpc-go refuses")
	}
	eps := endpointsNamed(t, r, "out|shop/web|80")
	if _, ok := eps["10.1.0.2"]; ok || len(eps) != 1 {
		t.Errorf("the proxyless client is sent endpoints %v, want 10.1.0.1 alone", eps)
	}
}
