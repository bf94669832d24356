package cache_test

import (
	"context"
	"slices"
	"testing"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"

	"github.com/open-service-mesh/osm-operator/xds/cache"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

var certs = &translate.Certificates{CertChain: []byte("c"), PrivateKey: []byte("k"), TrustBundle: []byte("ca")}

func publishAll(t *testing.T, c *cache.Cache, m *mesh.Mesh) {
	t.Helper()
	sh := translate.NewShared()
	for _, g := range m.Groups {
		r, err := sh.Translate(m.View(g), certs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Update(context.Background(), g.String(), r); err != nil {
			t.Fatal(err)
		}
	}
}

// A group patched with the new endpoints of the services it calls
// (EndpointsOnly, Endpoints, PatchEndpoints: what the runner does) holds
// exactly what translating it again gives, for every change EndpointsOnly
// lets through; and a change it refuses changes more than the endpoints of
// some caller, so it does not refuse it for nothing.
func TestPatchedEndpointsAreWhatTranslationGives(t *testing.T) {
	const svc = 3 // the service the changes are made to
	changes := []struct {
		name          string
		change        func(in *mesh.Inputs)
		endpointsOnly bool
	}{
		{"an endpoint moves", func(in *mesh.Inputs) { in.EndpointSlices[svc].Endpoints[0].Addresses = []string{"10.250.0.1"} }, true},
		{"an endpoint is not ready", func(in *mesh.Inputs) { in.EndpointSlices[svc].Endpoints[1].Conditions.Ready = ptr.To(false) }, true},
		{"an endpoint terminates", func(in *mesh.Inputs) {
			in.EndpointSlices[svc].Endpoints[1].Conditions.Terminating = ptr.To(true)
		}, true},
		{"an endpoint gets a zone", func(in *mesh.Inputs) { in.EndpointSlices[svc].Endpoints[2].Zone = ptr.To("zone-b") }, true},
		{"an endpoint goes", func(in *mesh.Inputs) {
			in.EndpointSlices[svc].Endpoints = in.EndpointSlices[svc].Endpoints[1:]
		}, true},
		{"an endpoint's pod loses its proxy", func(in *mesh.Inputs) {
			ep := in.EndpointSlices[svc].Endpoints[0]
			for _, p := range in.Pods {
				if p.Name == ep.TargetRef.Name {
					// A pod without a proxy is reached at an address its
					// status proves.
					p.Spec.InitContainers = nil
					p.Status.PodIPs = []corev1.PodIP{{IP: ep.Addresses[0]}}
				}
			}
		}, false},
		{"an identity's last endpoints go", func(in *mesh.Inputs) {
			// Pods alternate between two service accounts: keep sa-0's.
			var keep []discoveryv1.Endpoint
			for i, e := range in.EndpointSlices[svc].Endpoints {
				if i%2 == 0 {
					keep = append(keep, e)
				}
			}
			in.EndpointSlices[svc].Endpoints = keep
		}, false},
	}
	for _, mode := range []struct {
		name string
		sz   meshtest.Size
	}{
		{"SMI", meshtest.Size{Namespaces: 3, Services: 12, PodsPerService: 4, IdentitiesPerService: 2, Splits: 3, VMs: 2}},
		{"Permissive", meshtest.Size{Namespaces: 3, Services: 12, PodsPerService: 4, IdentitiesPerService: 2, Splits: 3, VMs: 2, Permissive: true}},
	} {
		for _, ch := range changes {
			t.Run(mode.name+"/"+ch.name, func(t *testing.T) {
				in := meshtest.Synthetic(mode.sz)
				before, _ := mesh.Build(in)
				key := mesh.ServiceKey{Namespace: in.EndpointSlices[svc].Namespace, Name: in.EndpointSlices[svc].Labels[discoveryv1.LabelServiceName]}
				old := before.Service(key)
				c := cache.New(&cache.Nodes{}, nil)
				publishAll(t, c, before)

				in = meshtest.Synthetic(mode.sz)
				ch.change(&in)
				after, _ := mesh.Build(in)
				want := cache.New(&cache.Nodes{}, nil)
				publishAll(t, want, after)
				wantVersions := want.Versions()

				sh := translate.NewShared()
				patched, refusedButOnlyEndpoints, callersChangedMore := 0, 0, 0
				for _, g := range after.Groups {
					v := after.View(g)
					if !calls(v, key) {
						continue
					}
					got := c.Versions()[g.String()]
					onlyEDS := got != wantVersions[g.String()]
					for typ := range types.UnknownType {
						if typ != types.Endpoint && got[typ] != wantVersions[g.String()][typ] {
							onlyEDS = false
						}
					}
					if !onlyEDS && got != wantVersions[g.String()] && !backs(old, g) && !backs(after.Service(key), g) {
						callersChangedMore++
					}
					if !translate.EndpointsOnly(v, old, after.Service(key), before.IPv6) {
						if onlyEDS && !backs(after.Service(key), g) {
							refusedButOnlyEndpoints++
						}
						continue
					}
					clas, err := sh.Endpoints(v, after.Service(key))
					if err != nil {
						t.Fatal(err)
					}
					var enc []translate.Encoded
					for _, cla := range clas {
						e, err := sh.Encode(cla)
						if err != nil {
							t.Fatal(err)
						}
						enc = append(enc, e)
					}
					ok, err := c.PatchEndpoints(context.Background(), g.String(), enc)
					if err != nil || !ok {
						t.Fatalf("group %s: patch refused (%v)", g, err)
					}
					patched++
					if c.Versions()[g.String()] != wantVersions[g.String()] {
						t.Errorf("group %s patched to versions %v, translation gives %v", g, c.Versions()[g.String()], wantVersions[g.String()])
					}
				}
				switch {
				case ch.endpointsOnly && patched == 0:
					t.Fatal("no caller was patched")
				case !ch.endpointsOnly && patched > 0:
					t.Fatalf("%d callers patched for a change of more than endpoints", patched)
				case !ch.endpointsOnly && callersChangedMore == 0:
					t.Fatal("the change refused changes no caller's config beyond its endpoints")
				}
				if refusedButOnlyEndpoints > 0 && ch.endpointsOnly {
					t.Errorf("%d callers translated for a change of their endpoints only", refusedButOnlyEndpoints)
				}
			})
		}
	}
}

func calls(v *mesh.View, k mesh.ServiceKey) bool { return slices.Contains(v.Dependencies(), k) }

func backs(s *mesh.Service, g mesh.Group) bool { return slices.Contains(s.Identities, g.Identity) }

// PatchEndpoints refuses a group it has no snapshot of, and endpoints the
// group's snapshot lacks, changing nothing.
func TestPatchEndpointsRefusesWhatTheSnapshotLacks(t *testing.T) {
	in := meshtest.Synthetic(meshtest.Size{Namespaces: 1, Services: 3, PodsPerService: 2, IdentitiesPerService: 1, Permissive: true})
	m, _ := mesh.Build(in)
	c := cache.New(&cache.Nodes{}, nil)
	publishAll(t, c, m)
	sh := translate.NewShared()
	g := m.Groups[0]
	clas, err := sh.Endpoints(m.View(g), m.Services[1])
	if err != nil {
		t.Fatal(err)
	}
	e, err := sh.Encode(clas[0])
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.PatchEndpoints(context.Background(), "envoy/nowhere/nobody", []translate.Encoded{e}); ok || err != nil {
		t.Fatalf("patched a group with no snapshot: %v %v", ok, err)
	}
	before := c.Versions()[g.String()]
	if e, err = sh.Encode(&endpointv3.ClusterLoadAssignment{ClusterName: "out|nowhere/none|1"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.PatchEndpoints(context.Background(), g.String(), []translate.Encoded{e}); ok || err != nil {
		t.Fatalf("patched endpoints the snapshot lacks: %v %v", ok, err)
	}
	if c.Versions()[g.String()] != before {
		t.Fatal("a refused patch changed the versions")
	}
}
