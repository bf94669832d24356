package translate_test

import (
	"testing"

	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// headlessVictim: namespace zz-bank's headless db, its meshed pod db-0 at
// 10.1.0.10, and a meshed client in mm-client.
const headlessVictim = `
apiVersion: mesh.openservicemesh.io/v1alpha1
kind: MeshInstance
metadata: {name: osm}
spec: {trafficPolicy: {mode: Permissive}}
---
apiVersion: v1
kind: Namespace
metadata: {name: zz-bank, labels: {openservicemesh.io/monitor: osm}}
---
apiVersion: v1
kind: Namespace
metadata: {name: aa-evil, labels: {openservicemesh.io/monitor: osm}}
---
apiVersion: v1
kind: Namespace
metadata: {name: mm-client, labels: {openservicemesh.io/monitor: osm}}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: zz-bank}
spec: {clusterIP: None, ports: [{name: sql, port: 5432}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, namespace: zz-bank}
spec: {serviceAccountName: db, initContainers: [{name: osm-envoy, image: envoy, restartPolicy: Always}], containers: [{name: app, image: app}]}
status: {phase: Running, podIP: 10.1.0.10, podIPs: [{ip: 10.1.0.10}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: db-1, namespace: zz-bank, labels: {kubernetes.io/service-name: db}}
addressType: IPv4
ports: [{name: sql, port: 5432}]
endpoints:
- {addresses: [10.1.0.10], targetRef: {kind: Pod, name: db-0}}
---
apiVersion: v1
kind: Pod
metadata: {name: client-1, namespace: mm-client}
spec: {serviceAccountName: client, initContainers: [{name: osm-envoy, image: envoy, restartPolicy: Always}], containers: [{name: app, image: app}]}
status: {phase: Running, podIP: 10.1.0.9, podIPs: [{ip: 10.1.0.9}]}
`

// trapFor is namespace aa-evil's headless Service trap and an EndpointSlice
// written by hand naming 10.1.0.10 for aa-evil's pod job-x, whose status is
// given.
func trapFor(podSpec, podStatus string) string {
	return `
---
apiVersion: v1
kind: Namespace
metadata: {name: aa-evil, labels: {openservicemesh.io/monitor: osm}}
---
apiVersion: v1
kind: Service
metadata: {name: trap, namespace: aa-evil}
spec: {clusterIP: None, ports: [{name: sql, port: 5432}]}
---
apiVersion: v1
kind: Pod
metadata: {name: job-x, namespace: aa-evil}
spec: ` + podSpec + `
status: ` + podStatus + `
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: trap-1, namespace: aa-evil, labels: {kubernetes.io/service-name: trap}}
addressType: IPv4
ports: [{name: sql, port: 5432}]
endpoints:
- {addresses: [10.1.0.10], targetRef: {kind: Pod, name: job-x}}
`
}

// A headless service's chains match the addresses its endpoints name, ahead
// of other services' (by namespace and name). A namespace's user must not
// take another namespace's pod address from every caller that way: not
// with a finished pod whose status keeps the IP the node has given the
// victim since (callers would send it plaintext), nor with a meshed pod
// that never got an IP (callers would expect the attacker's identity there
// and fail). The victim's address goes to the victim's cluster, with mutual
// TLS, only.
func TestAHeadlessServiceCannotTakeAnotherPodsAddress(t *testing.T) {
	for name, trap := range map[string]string{
		"finished pod without a proxy": trapFor(`{restartPolicy: Never, containers: [{name: app, image: app}]}`, `{phase: Succeeded, podIP: 10.1.0.10, podIPs: [{ip: 10.1.0.10}]}`),
		"meshed pod with no IP":        trapFor(`{serviceAccountName: evil, initContainers: [{name: osm-envoy, image: envoy, restartPolicy: Always}], containers: [{name: app, image: app}]}`, `{phase: Pending}`),
	} {
		t.Run(name, func(t *testing.T) {
			in, err := meshtest.Decode([]byte(headlessVictim + trap))
			if err != nil {
				t.Fatal(err)
			}
			m, _ := mesh.Build(in)
			g := mesh.Group{Kind: mesh.ProxyEnvoy, Identity: mesh.Identity{Namespace: "mm-client", ServiceAccount: "client"}}
			r, err := translate.Translate(m.View(g), fakeCerts(g))
			if err != nil {
				t.Fatal(err)
			}
			chains := 0
			for _, l := range r.Listeners {
				for _, fc := range l.GetFilterChains() {
					for _, pr := range fc.GetFilterChainMatch().GetPrefixRanges() {
						if pr.GetAddressPrefix() != "10.1.0.10" {
							continue
						}
						chains++
						tp := &tcpproxyv3.TcpProxy{}
						if len(fc.GetFilters()) != 1 || fc.GetFilters()[0].GetTypedConfig().UnmarshalTo(tp) != nil {
							t.Fatalf("chain %s is not a TCP proxy", fc.GetName())
						}
						if c := clusterNamed(t, r, tp.GetCluster()); tp.GetCluster() != "out|zz-bank/db|5432" || c.GetTransportSocket() == nil {
							t.Errorf("chain %s sends 10.1.0.10:5432 to %s (mutual TLS %v), want out|zz-bank/db|5432 with mutual TLS", fc.GetName(), tp.GetCluster(), c.GetTransportSocket() != nil)
						}
					}
				}
			}
			if chains == 0 {
				t.Error("no chain for db-0's address")
			}
		})
	}
}
