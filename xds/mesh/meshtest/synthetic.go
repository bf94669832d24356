package meshtest

import (
	"fmt"

	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// Size is the shape of a synthetic mesh.
type Size struct {
	// Namespaces hold the services round-robin.
	Namespaces int
	Services   int
	// PodsPerService back each service; they alternate between
	// IdentitiesPerService service accounts.
	PodsPerService       int
	IdentitiesPerService int
	// Permissive makes the mesh permissive; otherwise each service's
	// identities may call the next service (i → i+1 mod Services), through
	// one TrafficTarget per destination identity and a match-all
	// HTTPRouteGroup per service.
	Permissive bool
}

// Synthetic builds the inputs of a mesh of the given size: every service has
// one HTTP port 8080 and one EndpointSlice.
func Synthetic(sz Size) mesh.Inputs {
	in := mesh.Inputs{Mesh: &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}}
	if sz.Permissive {
		in.Mesh.Spec.TrafficPolicy.Mode = meshv1alpha1.TrafficPolicyPermissive
	}
	ns := func(i int) string { return fmt.Sprintf("ns-%d", i%sz.Namespaces) }
	for i := range sz.Namespaces {
		in.Namespaces = append(in.Namespaces, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: ns(i), Labels: map[string]string{meshv1alpha1.MonitorLabel: "bench"},
		}})
	}
	sa := func(svc, k int) string { return fmt.Sprintf("svc-%d-sa-%d", svc, k) }
	for i := range sz.Services {
		name := fmt.Sprintf("svc-%d", i)
		in.Services = append(in.Services, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns(i)},
			Spec: corev1.ServiceSpec{
				ClusterIP:  fmt.Sprintf("10.96.%d.%d", i/250, i%250+1),
				ClusterIPs: []string{fmt.Sprintf("10.96.%d.%d", i/250, i%250+1)},
				Ports:      []corev1.ServicePort{{Name: "http", Port: 8080, AppProtocol: ptr.To("http")}},
			},
		})
		es := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: name + "-1", Namespace: ns(i), Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
		}
		for p := range sz.PodsPerService {
			pod := fmt.Sprintf("%s-%d", name, p)
			n := i*sz.PodsPerService + p
			in.Pods = append(in.Pods, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: ns(i)},
				Spec:       corev1.PodSpec{ServiceAccountName: sa(i, p%sz.IdentitiesPerService)},
			})
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{fmt.Sprintf("10.%d.%d.%d", 100+n/62500, n/250%250, n%250+1)},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: pod, Namespace: ns(i)},
			})
		}
		in.EndpointSlices = append(in.EndpointSlices, es)
		if sz.Permissive {
			continue
		}
		in.HTTPRouteGroups = append(in.HTTPRouteGroups, &specsv1alpha4.HTTPRouteGroup{
			ObjectMeta: metav1.ObjectMeta{Name: name + "-routes", Namespace: ns(i)},
			Spec:       specsv1alpha4.HTTPRouteGroupSpec{Matches: []specsv1alpha4.HTTPMatch{{Name: "all", PathRegex: ".*", Methods: []string{"*"}}}},
		})
		prev := (i + sz.Services - 1) % sz.Services
		for k := range sz.IdentitiesPerService {
			tt := &accessv1alpha3.TrafficTarget{
				ObjectMeta: metav1.ObjectMeta{Name: sa(i, k), Namespace: ns(i)},
				Spec: accessv1alpha3.TrafficTargetSpec{
					Destination: accessv1alpha3.IdentityBindingSubject{Kind: "ServiceAccount", Name: sa(i, k), Namespace: ns(i)},
					Rules:       []accessv1alpha3.TrafficTargetRule{{Kind: "HTTPRouteGroup", Name: name + "-routes"}},
				},
			}
			for kk := range sz.IdentitiesPerService {
				tt.Spec.Sources = append(tt.Spec.Sources, accessv1alpha3.IdentityBindingSubject{Kind: "ServiceAccount", Name: sa(prev, kk), Namespace: ns(prev)})
			}
			in.TrafficTargets = append(in.TrafficTargets, tt)
		}
	}
	return in
}
