package mesh

import corev1 "k8s.io/api/core/v1"

// What injection gives a pod, as HasProxy recognises it. The injector
// (webhooks/inject) writes them under these names.
const (
	// SidecarContainer is the Envoy sidecar, a native sidecar: an init
	// container that keeps running.
	SidecarContainer = "osm-envoy"
	// GRPCBootstrapEnv holds a proxyless gRPC application's xDS bootstrap;
	// grpc-go, grpc-java and gRPC C++ read it.
	GRPCBootstrapEnv = "GRPC_XDS_BOOTSTRAP_CONFIG"
)

// HasProxy says whether the pod's spec has what injection gives it: the
// Envoy sidecar, or, in a pod annotated as proxyless gRPC, the xDS
// bootstrap in a container's environment. It is the one test of a pod
// having a proxy, for the injector (inject.Injected), the controllers and
// the model: a pod without one is no proxy group, and its endpoints are
// reached without mutual TLS (Endpoint.NoProxy). The spec decides, never
// an annotation saying the pod was injected: a pod's author can write that
// too, and a pod that only says it has a proxy has none. A pod's containers
// cannot change, so neither can the answer.
func HasProxy(pod *corev1.Pod) bool {
	for _, c := range pod.Spec.InitContainers {
		if c.Name == SidecarContainer {
			return true
		}
	}
	if pod.Annotations[ProxyKindAnnotation] != string(ProxyGRPC) {
		return false
	}
	for _, c := range pod.Spec.Containers {
		for _, e := range c.Env {
			if e.Name == GRPCBootstrapEnv {
				return true
			}
		}
	}
	return false
}
