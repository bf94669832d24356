package mesh_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// splitMesh is a permissive mesh with a client pod and the Services
// web (HTTP 80 and TCP 5432), web-v1 (the same ports and a metrics port),
// web-v2 (HTTP 8080 only), web-80 (HTTP 80 only), web-db (TCP 5432 only)
// and web-headless (80 and 5432, no virtual IP). Every client sees every Service, so each split's weighted
// clusters are in its routes and TCP proxies.
const splitMesh = `
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
kind: Pod
metadata: {name: client-1, namespace: shop}
spec: {initContainers: [{name: osm-envoy, image: envoy, restartPolicy: Always}], serviceAccountName: client, containers: [{name: app, image: app}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {clusterIP: 10.96.0.1, ports: [{name: http, port: 80}, {name: tcp-db, port: 5432}]}
---
apiVersion: v1
kind: Service
metadata: {name: web-v1, namespace: shop}
spec: {clusterIP: 10.96.0.2, ports: [{name: http, port: 80}, {name: tcp-db, port: 5432}, {name: metrics, port: 9090}]}
---
apiVersion: v1
kind: Service
metadata: {name: web-v2, namespace: shop}
spec: {clusterIP: 10.96.0.3, ports: [{name: http, port: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: web-80, namespace: shop}
spec: {clusterIP: 10.96.0.4, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: web-db, namespace: shop}
spec: {clusterIP: 10.96.0.5, ports: [{name: tcp-db, port: 5432}]}
---
apiVersion: v1
kind: Service
metadata: {name: web-headless, namespace: shop}
spec: {clusterIP: None, ports: [{name: http, port: 80}, {name: tcp-db, port: 5432}]}
`

func split(root string, backends ...string) string {
	s := "---\napiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata: {name: split, namespace: shop}\nspec:\n  service: " + root + "\n  backends:\n"
	for _, b := range backends {
		s += "  - {service: " + b + ", weight: 50}\n"
	}
	return s
}

// TestASplitNeverRoutesToAClusterThatDoesNotExist: a backend's cluster
// exists for each port the backend serves through its virtual IP. A split
// whose backends do not all serve any of the root's ports, or of which a
// backend has no virtual IP, is ignored and reported (the root keeps its
// traffic, as with no split), rather than sending a share of the traffic to
// a cluster no proxy has. One whose backends all serve some of the root's
// ports splits those, and the others keep the root's traffic, reported.
func TestASplitNeverRoutesToAClusterThatDoesNotExist(t *testing.T) {
	web, webV1 := mesh.ServiceKey{Namespace: "shop", Name: "web"}, mesh.ServiceKey{Namespace: "shop", Name: "web-v1"}
	cases := []struct {
		name, yaml string
		// problem is in the problems; empty: none.
		problem string
		// root and split are the root and the ports the split routes, each
		// to the clusters of its backends; the root's other ports go to
		// its own cluster. No split: the split is ignored.
		root  mesh.ServiceKey
		split []int32
	}{
		{"backends serve every port of the root", split("web", "web", "web-v1"), "", web, []int32{80, 5432}},
		{"backend without the root's ports", split("web", "web-v1", "web-v2"),
			"TrafficSplit shop/split: spec.backends[1].service: Service shop/web-v2 does not serve ports 80, 5432 of the root Service shop/web; the split is ignored", web, nil},
		{"backend without one of the root's ports", split("web-v1", "web-v1", "web"),
			"TrafficSplit shop/split: spec.backends[1].service: Service shop/web does not serve port 9090 of the root Service shop/web-v1; the root keeps its traffic on port 9090", webV1, []int32{80, 5432}},
		{"backends each without another of the root's ports", split("web", "web-80", "web-db"),
			"TrafficSplit shop/split: spec.backends[0].service: Service shop/web-80 does not serve port 5432 of the root Service shop/web; the split is ignored\n" +
				"TrafficSplit shop/split: spec.backends[1].service: Service shop/web-db does not serve port 80 of the root Service shop/web; the split is ignored", web, nil},
		{"headless backend", split("web", "web-v1", "web-headless"),
			"TrafficSplit shop/split: spec.backends[1].service: Service shop/web-headless is headless: traffic for the root's virtual IP cannot be sent to it; the split is ignored", web, nil},
		{"headless root", split("web-headless", "web-headless", "web-v1"),
			"TrafficSplit shop/split: spec.service: Service shop/web-headless is headless: its clients pick its endpoints themselves, so nothing can split its traffic; the split is ignored", mesh.ServiceKey{Namespace: "shop", Name: "web-headless"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, err := meshtest.Decode([]byte(splitMesh + tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			m, problems := mesh.Build(in)
			var got []string
			for _, p := range problems {
				got = append(got, p.Error())
			}
			if tc.problem == "" && len(got) > 0 || !strings.Contains(strings.Join(got, "\n"), tc.problem) {
				t.Errorf("problems %q; want %q", got, tc.problem)
			}
			var ports []int32
			if sp := m.Splits[tc.root]; sp != nil {
				ports = sp.Ports
			}
			if len(m.Splits) > 1 || !slices.Equal(ports, tc.split) {
				t.Errorf("splits %v, of ports %v; want the split of %s of ports %v", slices.Collect(maps.Keys(m.Splits)), ports, tc.root, tc.split)
			}
			if len(m.Groups) == 0 {
				t.Fatal("no proxy group: nothing is translated")
			}
			for _, g := range m.Groups {
				res, err := translate.Translate(m.View(g), nil)
				if err != nil {
					t.Fatalf("group %s: %v", g, err)
				}
				var have []string
				for _, c := range res.Clusters {
					have = append(have, c.GetName())
				}
				for _, name := range routedClusters(res) {
					if !slices.Contains(have, name) {
						t.Errorf("group %s: a route sends traffic to cluster %s, which it does not have", g, name)
					}
				}
				root := m.Service(tc.root)
				if root.Headless() {
					continue // its clients pick its endpoints; none here
				}
				targets := portTargets(t, res)
				for _, p := range root.Ports {
					own := translate.OutboundClusterName(root.Key, p.Port)
					want := []string{own}
					if sp := m.Splits[tc.root]; sp != nil && slices.Contains(tc.split, p.Port) {
						want = nil
						for _, b := range sp.Backends {
							want = append(want, translate.OutboundClusterName(b.Service, p.Port))
						}
						slices.Sort(want)
					}
					if got := targets[own]; !slices.Equal(got, want) {
						t.Errorf("group %s: traffic to %s goes to %v; want %v", g, own, got, want)
					}
				}
			}
		})
	}
}

// portTargets are the clusters the traffic to each outbound service port
// goes to, sorted, by the port's own cluster name: its route's, or its TCP
// proxy's.
func portTargets(t *testing.T, res *translate.Resources) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, rc := range res.Routes {
		for _, vh := range rc.GetVirtualHosts() {
			for _, r := range vh.GetRoutes() {
				out[rc.GetName()] = append(out[rc.GetName()], actionClusters(r.GetRoute().GetCluster(), r.GetRoute().GetWeightedClusters().GetClusters())...)
			}
		}
	}
	for _, l := range res.Listeners {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				tcp := &tcpproxyv3.TcpProxy{}
				if f.GetTypedConfig().MessageIs(tcp) {
					if err := f.GetTypedConfig().UnmarshalTo(tcp); err != nil {
						t.Fatal(err)
					}
					out[tcp.GetStatPrefix()] = actionClusters(tcp.GetCluster(), nil)
					for _, w := range tcp.GetWeightedClusters().GetClusters() {
						out[tcp.GetStatPrefix()] = append(out[tcp.GetStatPrefix()], w.GetName())
					}
				}
			}
		}
	}
	for k := range out {
		slices.Sort(out[k])
	}
	return out
}

func actionClusters(cluster string, weighted []*routev3.WeightedCluster_ClusterWeight) []string {
	var out []string
	if cluster != "" {
		out = append(out, cluster)
	}
	for _, w := range weighted {
		out = append(out, w.GetName())
	}
	return out
}

// routedClusters are the clusters the routes of res send traffic to.
func routedClusters(res *translate.Resources) []string {
	var out []string
	for _, rc := range res.Routes {
		for _, vh := range rc.GetVirtualHosts() {
			for _, r := range vh.GetRoutes() {
				a := r.GetRoute()
				if c := a.GetCluster(); c != "" {
					out = append(out, c)
				}
				for _, w := range a.GetWeightedClusters().GetClusters() {
					out = append(out, w.GetName())
				}
			}
		}
	}
	return out
}
