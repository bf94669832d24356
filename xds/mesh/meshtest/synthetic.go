package meshtest

import (
	"fmt"

	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	splitv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha4"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
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
	// Splits are TrafficSplits, spread over the services: the root service
	// sends 10% of its traffic to another service of its namespace.
	Splits int
	// VMs are MeshVMs, spread over the services: each runs as the first
	// identity of the service it backs, with an EndpointSlice of its own.
	VMs int
	// IngressBackends, spread over the services, each let an ingress
	// controller's pod network (an IPRange) reach its service's port 8080
	// over http.
	IngressBackends int
	// Egresses, spread over the services, each let the service's first
	// identity reach a host of its own over http (80) and https (443) and
	// an address range over https; with any, the mesh denies other egress.
	Egresses int
	// HTTPRoutes, spread over the services but the roots of splits, are
	// producer routes of their
	// service with three rules each: a path prefix to the service itself
	// with a request header set and a 5 s timeout, a header match split
	// 90/10 with the next service of its namespace, and the rest to the
	// service with retries.
	HTTPRoutes int
	// ResiliencePolicies, spread over the services, each set connection
	// limits, outlier detection and least-request balancing.
	ResiliencePolicies int
	// Scoped gives each namespace a MeshMember whose spec.outbound.services
	// are its own services and the next namespace's ("./*", "ns-<i+1>/*"):
	// in a Permissive mesh, what each proxy is sent.
	Scoped bool
}

// MeshName is the name of the synthetic mesh.
const MeshName = "bench"

// spread is the index of the k-th of n things spread over the services.
func (sz Size) spread(k, n int) int { return k * sz.Services / n }

// Synthetic builds the inputs of a mesh of the given size: every service has
// one HTTP port 8080 and one EndpointSlice.
func Synthetic(sz Size) mesh.Inputs {
	in := mesh.Inputs{Mesh: &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: MeshName}}}
	if sz.Permissive {
		in.Mesh.Spec.TrafficPolicy.Mode = meshv1alpha1.TrafficPolicyPermissive
	}
	ns := func(i int) string { return fmt.Sprintf("ns-%d", i%sz.Namespaces) }
	for i := range sz.Namespaces {
		in.Namespaces = append(in.Namespaces, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: ns(i), Labels: map[string]string{meshv1alpha1.MonitorLabel: MeshName},
		}})
	}
	if sz.Scoped {
		for i := range sz.Namespaces {
			in.Members = append(in.Members, &meshv1alpha1.MeshMember{
				ObjectMeta: metav1.ObjectMeta{Name: "member", Namespace: ns(i)},
				Spec: meshv1alpha1.MeshMemberSpec{Mesh: MeshName, Outbound: meshv1alpha1.MemberOutbound{
					Services: []string{"./*", ns(i+1) + "/*"},
				}},
			})
		}
	}
	sa := func(svc, k int) string { return fmt.Sprintf("svc-%d-sa-%d", svc, k) }
	for i := range sz.Services {
		name := fmt.Sprintf("svc-%d", i)
		in.Services = append(in.Services, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns(i)},
			Spec: corev1.ServiceSpec{
				ClusterIP:  fmt.Sprintf("10.97.%d.%d", i/250, i%250+1),
				ClusterIPs: []string{fmt.Sprintf("10.97.%d.%d", i/250, i%250+1)},
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
				Spec: corev1.PodSpec{
					ServiceAccountName: sa(i, p%sz.IdentitiesPerService),
					// Injected: the sidecar is what makes a pod meshed.
					InitContainers: []corev1.Container{{Name: mesh.SidecarContainer, Image: "envoy", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}},
					Containers:     []corev1.Container{{Name: "app", Image: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}},
				},
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
	for k := range sz.Splits {
		i := sz.spread(k, sz.Splits)
		other := (i + sz.Namespaces) % sz.Services // same namespace
		in.TrafficSplits = append(in.TrafficSplits, &splitv1alpha4.TrafficSplit{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("split-%d", k), Namespace: ns(i)},
			Spec: splitv1alpha4.TrafficSplitSpec{
				Service: fmt.Sprintf("svc-%d", i),
				Backends: []splitv1alpha4.TrafficSplitBackend{
					{Service: fmt.Sprintf("svc-%d", i), Weight: 90},
					{Service: fmt.Sprintf("svc-%d", other), Weight: 10},
				},
			},
		})
	}
	for k := range sz.VMs {
		i := sz.spread(k, sz.VMs)
		name, svc := fmt.Sprintf("vm-%d", k), fmt.Sprintf("svc-%d", i)
		addr := fmt.Sprintf("10.250.%d.%d", k/250%250, k%250+1)
		in.VMs = append(in.VMs, &meshv1alpha1.MeshVM{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns(i)},
			Spec: meshv1alpha1.MeshVMSpec{
				Mesh: MeshName, ServiceAccountName: sa(i, 0), Addresses: []string{addr},
				Ports:    []meshv1alpha1.VMPort{{Name: "http", Port: 8080, Protocol: meshv1alpha1.ProtocolHTTP}},
				Services: []string{svc},
			},
		})
		in.EndpointSlices = append(in.EndpointSlices, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: svc + "-" + name, Namespace: ns(i), Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
			Endpoints: []discoveryv1.Endpoint{{
				Addresses:  []string{addr},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
				TargetRef:  &corev1.ObjectReference{Kind: "MeshVM", Name: name, Namespace: ns(i)},
			}},
		})
	}
	for k := range sz.IngressBackends {
		i := sz.spread(k, sz.IngressBackends)
		in.IngressBackends = append(in.IngressBackends, &policyv1alpha1.IngressBackend{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ingress-%d", k), Namespace: ns(i)},
			Spec: policyv1alpha1.IngressBackendSpec{
				Backends: []policyv1alpha1.IngressBackendTarget{{Name: fmt.Sprintf("svc-%d", i), Port: policyv1alpha1.BackendPort{Number: 8080, Protocol: policyv1alpha1.BackendProtocolHTTP}}},
				Sources:  []policyv1alpha1.IngressSource{{Kind: policyv1alpha1.IngressSourceIPRange, Name: "10.200.0.0/16"}},
			},
		})
	}
	if sz.Egresses > 0 {
		in.Mesh.Spec.Egress.Mode = meshv1alpha1.EgressDeny
	}
	for k := range sz.Egresses {
		i := sz.spread(k, sz.Egresses)
		in.Egresses = append(in.Egresses, &policyv1alpha1.Egress{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("egress-%d", k), Namespace: ns(i)},
			Spec: policyv1alpha1.EgressSpec{
				Sources:     []policyv1alpha1.EgressSource{{Kind: policyv1alpha1.EgressSourceServiceAccount, Name: sa(i, 0), Namespace: ns(i)}},
				Hosts:       []string{fmt.Sprintf("api-%d.example.com", k)},
				IPAddresses: []string{fmt.Sprintf("203.0.%d.0/24", k%250)},
				Ports: []policyv1alpha1.EgressPort{
					{Number: 80, Protocol: policyv1alpha1.EgressProtocolHTTP},
					{Number: 443, Protocol: policyv1alpha1.EgressProtocolHTTPS},
				},
			},
		})
	}
	split := map[int]bool{}
	for k := range sz.Splits {
		split[sz.spread(k, sz.Splits)] = true
	}
	for k := range sz.HTTPRoutes {
		i := sz.spread(k, sz.HTTPRoutes)
		if split[i] {
			continue // a route would win over the split: no split root has one
		}
		in.HTTPRoutes = append(in.HTTPRoutes, syntheticRoute(k, ns(i), fmt.Sprintf("svc-%d", i), fmt.Sprintf("svc-%d", (i+sz.Namespaces)%sz.Services)))
	}
	for k := range sz.ResiliencePolicies {
		i := sz.spread(k, sz.ResiliencePolicies)
		in.ResiliencePolicies = append(in.ResiliencePolicies, &meshv1alpha1.ResiliencePolicy{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("resilience-%d", k), Namespace: ns(i)},
			Spec: meshv1alpha1.ResiliencePolicySpec{
				TargetRefs: []gwv1.LocalPolicyTargetReferenceWithSectionName{{LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{Kind: "Service", Name: gwv1.ObjectName(fmt.Sprintf("svc-%d", i))}}},
				Resilience: meshv1alpha1.Resilience{
					Connections:      &meshv1alpha1.ConnectionLimits{MaxConnections: ptr.To(int32(100)), MaxRequests: ptr.To(int32(500)), ConnectTimeout: "1s"},
					OutlierDetection: &meshv1alpha1.OutlierDetection{ConsecutiveErrors: ptr.To(int32(5)), Interval: "10s", BaseEjectionTime: "30s"},
					LoadBalancer:     &meshv1alpha1.LoadBalancer{Algorithm: meshv1alpha1.LoadBalancerLeastRequest},
				},
			},
		})
	}
	return in
}

// syntheticRoute is the k-th synthetic HTTPRoute: of svc, in ns, with
// other (a service of the same namespace) as a second backend.
func syntheticRoute(k int, ns, svc, other string) *gwv1.HTTPRoute {
	port := ptr.To(gwv1.PortNumber(8080))
	to := func(name string, weight int32) gwv1.HTTPBackendRef {
		return gwv1.HTTPBackendRef{BackendRef: gwv1.BackendRef{Weight: ptr.To(weight), BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(name), Port: port}}}
	}
	return &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("route-%d", k), Namespace: ns},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Group: ptr.To(gwv1.Group("")), Kind: ptr.To(gwv1.Kind("Service")), Name: gwv1.ObjectName(svc), Port: port}}},
			Rules: []gwv1.HTTPRouteRule{
				{
					Matches: []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Type: ptr.To(gwv1.PathMatchPathPrefix), Value: ptr.To("/api")}}},
					Filters: []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: &gwv1.HTTPHeaderFilter{
						Set: []gwv1.HTTPHeader{{Name: "x-route", Value: "api"}}}}},
					Timeouts:    &gwv1.HTTPRouteTimeouts{Request: ptr.To(gwv1.Duration("5s"))},
					BackendRefs: []gwv1.HTTPBackendRef{to(svc, 1)},
				},
				{
					Matches:     []gwv1.HTTPRouteMatch{{Headers: []gwv1.HTTPHeaderMatch{{Name: "x-canary", Value: "yes"}}}},
					BackendRefs: []gwv1.HTTPBackendRef{to(svc, 90), to(other, 10)},
				},
				{
					Retry:       &gwv1.HTTPRouteRetry{Codes: []gwv1.HTTPRouteRetryStatusCode{503}, Attempts: ptr.To(2)},
					BackendRefs: []gwv1.HTTPBackendRef{to(svc, 1)},
				},
			},
		},
	}
}

// Objects are the inputs as API objects to create, in an order the API server
// accepts: the mesh and namespaces first.
func Objects(in mesh.Inputs) []client.Object {
	return append([]client.Object{in.Mesh}, in.Objects()...)
}
