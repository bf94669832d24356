package mesh

import (
	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	splitv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha4"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// Inputs are the API objects a mesh is built from, as the informer cache holds
// them. Build reads them and never changes them.
type Inputs struct {
	Mesh            *meshv1alpha1.MeshInstance
	Namespaces      []*corev1.Namespace
	Members         []*meshv1alpha1.MeshMember
	Services        []*corev1.Service
	EndpointSlices  []*discoveryv1.EndpointSlice
	Pods            []*corev1.Pod
	VMs             []*meshv1alpha1.MeshVM
	TrafficTargets  []*accessv1alpha3.TrafficTarget
	HTTPRouteGroups []*specsv1alpha4.HTTPRouteGroup
	TCPRoutes       []*specsv1alpha4.TCPRoute
	TrafficSplits   []*splitv1alpha4.TrafficSplit
	IngressBackends []*policyv1alpha1.IngressBackend
	Egresses        []*policyv1alpha1.Egress
	HTTPRoutes      []*gwv1.HTTPRoute
	GRPCRoutes      []*gwv1.GRPCRoute
	ReferenceGrants []*gwv1beta1.ReferenceGrant
	// ResiliencePolicies attach resilience settings to Services.
	ResiliencePolicies []*meshv1alpha1.ResiliencePolicy
	// UpstreamTrafficSettings and Retries are OSM's resilience kinds,
	// mapped onto the same model (resilience.go, retry.go).
	UpstreamTrafficSettings []*policyv1alpha1.UpstreamTrafficSetting
	Retries                 []*policyv1alpha1.Retry
	// ClusterDomain is the cluster's DNS domain (the kubelet's
	// --cluster-domain); empty means DefaultClusterDomain.
	ClusterDomain string
}

// Objects are every object of the inputs but the mesh, in no set order.
func (in *Inputs) Objects() []client.Object {
	var out []client.Object
	out = appendObjects(out, in.Namespaces)
	out = appendObjects(out, in.Members)
	out = appendObjects(out, in.Services)
	out = appendObjects(out, in.EndpointSlices)
	out = appendObjects(out, in.Pods)
	out = appendObjects(out, in.VMs)
	out = appendObjects(out, in.TrafficTargets)
	out = appendObjects(out, in.HTTPRouteGroups)
	out = appendObjects(out, in.TCPRoutes)
	out = appendObjects(out, in.TrafficSplits)
	out = appendObjects(out, in.IngressBackends)
	out = appendObjects(out, in.Egresses)
	out = appendObjects(out, in.HTTPRoutes)
	out = appendObjects(out, in.GRPCRoutes)
	out = appendObjects(out, in.ReferenceGrants)
	out = appendObjects(out, in.ResiliencePolicies)
	out = appendObjects(out, in.UpstreamTrafficSettings)
	out = appendObjects(out, in.Retries)
	return out
}

func appendObjects[T client.Object](out []client.Object, objs []T) []client.Object {
	for _, o := range objs {
		out = append(out, o)
	}
	return out
}

// DefaultClusterDomain is the DNS domain of most clusters.
const DefaultClusterDomain = "cluster.local"

// Problem is an object that could not be used as written, and why. Problems
// never stop the build: the object's part of the mesh is left out (denying
// rather than allowing) and the problem is reported.
type Problem struct {
	// Object is "Kind namespace/name".
	Object string
	Err    error
	// Source is the object, as the inputs hold it: read it, never change it.
	Source metav1.Object
}

func (p Problem) Error() string { return p.Object + ": " + p.Err.Error() }

// Add files obj under the field of its type; objects of other types are
// ignored. It returns false for those.
func (in *Inputs) Add(obj any) bool {
	switch o := obj.(type) {
	case *meshv1alpha1.MeshInstance:
		in.Mesh = o
	case *corev1.Namespace:
		in.Namespaces = append(in.Namespaces, o)
	case *meshv1alpha1.MeshMember:
		in.Members = append(in.Members, o)
	case *corev1.Service:
		in.Services = append(in.Services, o)
	case *discoveryv1.EndpointSlice:
		in.EndpointSlices = append(in.EndpointSlices, o)
	case *corev1.Pod:
		in.Pods = append(in.Pods, o)
	case *meshv1alpha1.MeshVM:
		in.VMs = append(in.VMs, o)
	case *accessv1alpha3.TrafficTarget:
		in.TrafficTargets = append(in.TrafficTargets, o)
	case *specsv1alpha4.HTTPRouteGroup:
		in.HTTPRouteGroups = append(in.HTTPRouteGroups, o)
	case *specsv1alpha4.TCPRoute:
		in.TCPRoutes = append(in.TCPRoutes, o)
	case *splitv1alpha4.TrafficSplit:
		in.TrafficSplits = append(in.TrafficSplits, o)
	case *policyv1alpha1.IngressBackend:
		in.IngressBackends = append(in.IngressBackends, o)
	case *policyv1alpha1.Egress:
		in.Egresses = append(in.Egresses, o)
	case *meshv1alpha1.ResiliencePolicy:
		in.ResiliencePolicies = append(in.ResiliencePolicies, o)
	case *policyv1alpha1.UpstreamTrafficSetting:
		in.UpstreamTrafficSettings = append(in.UpstreamTrafficSettings, o)
	case *policyv1alpha1.Retry:
		in.Retries = append(in.Retries, o)
	case *gwv1.HTTPRoute:
		in.HTTPRoutes = append(in.HTTPRoutes, o)
	case *gwv1.GRPCRoute:
		in.GRPCRoutes = append(in.GRPCRoutes, o)
	case *gwv1beta1.ReferenceGrant:
		in.ReferenceGrants = append(in.ReferenceGrants, o)
	default:
		return false
	}
	return true
}
