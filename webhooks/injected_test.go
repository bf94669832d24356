package webhooks_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/webhooks"
	"github.com/open-service-mesh/osm-operator/webhooks/inject"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// hasGRPCBootstrap says whether every container of a proxyless pod has the
// xDS bootstrap injection gives it.
func hasGRPCBootstrap(p *corev1.Pod) bool {
	for _, c := range p.Spec.Containers {
		if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == inject.GRPCBootstrapEnv }) {
			return false
		}
	}
	return len(p.Spec.Containers) > 0
}

// TestAnInjectedAnnotationIsNoSidecar: the sidecar-injected annotation is the
// injector's note, which a pod's author can write too. Through the real API
// server, a member pod that carries it but has no proxy is injected all the
// same: the Envoy pod gets its containers, the proxyless gRPC pod its
// bootstrap.
func TestAnInjectedAnnotationIsNoSidecar(t *testing.T) {
	ctx := context.Background()
	ns := meshNamespace(t, "annotated", nil)

	envoy := pod(ns, "claims-a-sidecar", map[string]string{meshv1alpha1.InjectedAnnotation: "annotated"})
	testenv.Eventually(t, 20*time.Second, func() error { return k8s.Create(ctx, envoy) })
	if !injected(envoy) {
		t.Errorf("a pod annotated %s without a proxy was not injected: init containers %v", meshv1alpha1.InjectedAnnotation, envoy.Spec.InitContainers)
	}

	grpc := pod(ns, "claims-a-bootstrap", map[string]string{meshv1alpha1.InjectedAnnotation: "annotated", mesh.ProxyKindAnnotation: string(mesh.ProxyGRPC)})
	if err := k8s.Create(ctx, grpc); err != nil {
		t.Fatal(err)
	}
	if !hasGRPCBootstrap(grpc) {
		t.Errorf("a proxyless pod annotated %s without a bootstrap got none: env %v", meshv1alpha1.InjectedAnnotation, grpc.Spec.Containers[0].Env)
	}
}

// TestReinvocationLeavesAnInjectedPodAlone: the API server calls the
// injector again (reinvocationPolicy IfNeeded) when a later webhook changed
// the pod; a pod the injector injected, Envoy or proxyless, comes back
// unchanged, seen from its spec.
func TestReinvocationLeavesAnInjectedPodAlone(t *testing.T) {
	ctx := context.Background()
	ns := meshNamespace(t, "reinvoked", nil)
	envoy := pod(ns, "web-1", nil)
	testenv.Eventually(t, 20*time.Second, func() error { return k8s.Create(ctx, envoy) })
	grpc := pod(ns, "grpc-1", map[string]string{mesh.ProxyKindAnnotation: string(mesh.ProxyGRPC)})
	if err := k8s.Create(ctx, grpc); err != nil {
		t.Fatal(err)
	}
	if !injected(envoy) || !hasGRPCBootstrap(grpc) {
		t.Fatalf("the pods were not injected: %v, %v", envoy.Spec.InitContainers, grpc.Spec.Containers[0].Env)
	}
	h := &webhooks.PodInjector{Reader: cache, Namespace: "osm-system", InitImage: "init:test"}
	for _, p := range []*corev1.Pod{envoy, grpc} {
		raw, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		r := h.Handle(ctx, admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			Namespace: ns, Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
		}})
		if !r.Allowed || len(r.Patches) != 0 {
			t.Errorf("pod %s, reinvoked: allowed %v, patches %v, %v", p.Name, r.Allowed, r.Patches, r.Result)
		}
	}
}
