package mesh_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// splitMesh is a permissive mesh with a client pod and the Services
// web (HTTP 80 and TCP 5432), web-v1 (the same ports and a metrics port),
// web-v2 (HTTP 8080 only) and web-headless (80, no virtual IP). Every
// client sees every Service, so each split's weighted clusters are in its
// routes and TCP proxies.
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
spec: {serviceAccountName: client, containers: [{name: app, image: app}]}
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
// whose backend lacks one of the root's ports, or has no virtual IP, is
// ignored and reported (the root keeps its traffic, as with no split),
// rather than sending a share of the traffic to a cluster no proxy has.
func TestASplitNeverRoutesToAClusterThatDoesNotExist(t *testing.T) {
	cases := []struct {
		name, yaml string
		// problem is in the problems; empty: none, and the split is used.
		problem string
	}{
		{"backends serve every port of the root", split("web", "web", "web-v1"), ""},
		{"backend without the root's port", split("web", "web-v1", "web-v2"),
			"TrafficSplit shop/split: spec.backends[1].service: Service shop/web-v2 does not serve ports 80, 5432 of the root Service shop/web; the split is ignored"},
		{"headless backend", split("web", "web-v1", "web-headless"),
			"TrafficSplit shop/split: spec.backends[1].service: Service shop/web-headless is headless: traffic for the root's virtual IP cannot be sent to it; the split is ignored"},
		{"headless root", split("web-headless", "web-headless", "web-v1"),
			"TrafficSplit shop/split: spec.service: Service shop/web-headless is headless: its clients pick its endpoints themselves, so nothing can split its traffic; the split is ignored"},
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
			if used := len(m.Splits) == 1; used != (tc.problem == "") {
				t.Errorf("split used: %v; want %v", used, tc.problem == "")
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
			}
		})
	}
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
