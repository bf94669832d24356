package mesh_test

import (
	"slices"
	"testing"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
)

// halfInjected is base with web's Deployment half rolled: web-1 has its
// sidecar, web-2 (created before the namespace joined) has none, and both
// back web. A proxyless gRPC pod has its bootstrap; another only says it is
// proxyless. A pod claims, by the annotation the injector writes, a sidecar
// it does not have. A MeshVM runs its Envoy.
const halfInjected = `
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, annotations: {openservicemesh.io/sidecar-injected: osm}}
spec:
  serviceAccountName: web
  initContainers: [{name: osm-envoy, image: envoy, restartPolicy: Always}]
  containers: [{name: app, image: app}]
status: {phase: Running, podIP: 10.1.0.1, podIPs: [{ip: 10.1.0.1}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, namespace: shop}
spec: {serviceAccountName: legacy, containers: [{name: app, image: app}]}
status: {phase: Running, podIP: 10.1.0.2, podIPs: [{ip: 10.1.0.2}]}
---
apiVersion: v1
kind: Pod
metadata: {name: liar-1, namespace: shop, annotations: {openservicemesh.io/sidecar-injected: osm}}
spec: {serviceAccountName: liar, containers: [{name: app, image: app}]}
status: {phase: Running, podIP: 10.1.0.3, podIPs: [{ip: 10.1.0.3}]}
---
apiVersion: v1
kind: Pod
metadata: {name: grpc-1, namespace: shop, annotations: {openservicemesh.io/proxy: grpc}}
spec:
  serviceAccountName: grpc
  containers: [{name: app, image: app, env: [{name: GRPC_XDS_BOOTSTRAP_CONFIG, value: "{}"}]}]
status: {phase: Running, podIP: 10.1.0.4, podIPs: [{ip: 10.1.0.4}]}
---
apiVersion: v1
kind: Pod
metadata: {name: grpc-2, namespace: shop, annotations: {openservicemesh.io/proxy: grpc}}
spec: {serviceAccountName: grpcless, containers: [{name: app, image: app}]}
status: {phase: Running, podIP: 10.1.0.5, podIPs: [{ip: 10.1.0.5}]}
---
apiVersion: mesh.openservicemesh.io/v1alpha1
kind: MeshVM
metadata: {name: vm-1, namespace: shop}
spec: {mesh: osm, serviceAccountName: vm, addresses: [192.0.2.1], ports: [{name: http, port: 8080, protocol: HTTP}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- {addresses: [10.1.0.1], targetRef: {kind: Pod, name: web-1}}
- {addresses: [10.1.0.2], targetRef: {kind: Pod, name: web-2}}
- {addresses: [10.1.0.3], targetRef: {kind: Pod, name: liar-1}}
- {addresses: [10.1.0.4], targetRef: {kind: Pod, name: grpc-1}}
- {addresses: [10.1.0.5], targetRef: {kind: Pod, name: grpc-2}}
- {addresses: [192.0.2.1], targetRef: {kind: MeshVM, name: vm-1}}
`

// TestOnlyPodsWithAProxyAreMeshed: a pod is meshed when its spec has a
// proxy (the sidecar, or a proxyless gRPC bootstrap), whatever it is
// annotated. The others are no proxy group, and their endpoints stay the
// Service's, marked NoProxy, for callers to reach without mutual TLS. A
// MeshVM runs a proxy. Before, every pod of a member namespace was a proxy
// group and every endpoint was reached with mutual TLS, which a pod with no
// proxy cannot answer.
func TestOnlyPodsWithAProxyAreMeshed(t *testing.T) {
	in, err := meshtest.Decode([]byte(base + "---" + halfInjected))
	if err != nil {
		t.Fatal(err)
	}
	m, problems := mesh.Build(in)
	if len(problems) != 0 {
		t.Errorf("problems %v", problems)
	}
	var groups []string
	for _, g := range m.Groups {
		groups = append(groups, g.String())
	}
	if want := []string{"envoy/shop/vm", "envoy/shop/web", "grpc/shop/grpc"}; !slices.Equal(groups, want) {
		t.Errorf("groups %v, want %v", groups, want)
	}
	web := m.Service(mesh.ServiceKey{Namespace: "shop", Name: "web"})
	var meshed, plain []string
	for _, e := range web.Endpoints {
		if e.NoProxy {
			plain = append(plain, e.Address)
		} else {
			meshed = append(meshed, e.Address)
		}
	}
	if want := []string{"10.1.0.1", "10.1.0.4", "192.0.2.1"}; !slices.Equal(meshed, want) {
		t.Errorf("meshed endpoints %v, want %v", meshed, want)
	}
	if want := []string{"10.1.0.2", "10.1.0.3", "10.1.0.5"}; !slices.Equal(plain, want) {
		t.Errorf("endpoints without a proxy %v, want %v", plain, want)
	}
}

// TestAPodWithoutAProxyTakesOnlyItsOwnAddress: nothing checks who answers
// plaintext, so an endpoint of a pod without a proxy is published only at
// an IP of the pod's status. Whoever may write the namespace's
// EndpointSlices cannot have callers send plaintext elsewhere: not to an
// address outside the cluster named as a pending pod's (a meshed pod's
// endpoint may take it: mutual TLS checks its identity wherever it is),
// nor to another address of a running pod.
func TestAPodWithoutAProxyTakesOnlyItsOwnAddress(t *testing.T) {
	addrs, _, problems := endpointsAndProblems(t, `
apiVersion: v1
kind: Pod
metadata: {name: plain-1, namespace: shop}
spec: {serviceAccountName: web, containers: [{name: app, image: app}]}
status: {phase: Running, podIP: 10.1.0.5, podIPs: [{ip: 10.1.0.5}]}
---
apiVersion: v1
kind: Pod
metadata: {name: plain-2, namespace: shop}
spec: {serviceAccountName: web, containers: [{name: app, image: app}]}
status: {phase: Pending}
---
apiVersion: v1
kind: Pod
metadata: {name: meshed-1, namespace: shop}
spec: {serviceAccountName: web, initContainers: [{name: osm-envoy, image: envoy, restartPolicy: Always}], containers: [{name: app, image: app}]}
status: {phase: Pending}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- {addresses: [10.1.0.5, 10.1.0.6], targetRef: {kind: Pod, name: plain-1}}
- {addresses: [203.0.113.5], targetRef: {kind: Pod, name: plain-2}}
- {addresses: [10.1.0.7], targetRef: {kind: Pod, name: meshed-1}}
`)
	if want := []string{"10.1.0.5", "10.1.0.7"}; !slices.Equal(addrs, want) {
		t.Errorf("web's endpoints are %v, want %v", addrs, want)
	}
	if want := "EndpointSlice shop/web-1: endpoint of pod shop/plain-1: 10.1.0.6 is not an IP of the pod (status.podIPs [10.1.0.5]); it is left out"; !slices.Contains(problems, want) || len(problems) != 1 {
		t.Errorf("problems %q, want %q alone", problems, want)
	}
}
