package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/webhooks/inject"
)

// InjectPath serves the pod injector.
const InjectPath = "/inject-pod"

// The namespaceSelector, failure policy and timeout are set in
// config/webhook, where an installation may change them.
// +kubebuilder:webhook:path=/inject-pod,mutating=true,failurePolicy=fail,sideEffects=None,groups="",resources=pods,verbs=create,versions=v1,name=inject.mesh.openservicemesh.io,admissionReviewVersions=v1,reinvocationPolicy=IfNeeded,timeoutSeconds=5

// PodInjector is the mutating webhook that gives member pods the mesh's
// sidecar. It reads the namespace, the namespace's MeshMembers and the
// MeshInstance from the informer cache, and writes nothing.
type PodInjector struct {
	Reader client.Reader
	// Namespace is the operator's: it names the xDS Service.
	Namespace string
	// InitImage runs the redirection init container when the mesh names none.
	InitImage string
	// SidecarImage is the Envoy of the sidecars when the mesh names none.
	SidecarImage string
}

// Handle implements admission.Handler.
func (h *PodInjector) Handle(ctx context.Context, req admission.Request) admission.Response {
	pod := &corev1.Pod{}
	if err := json.Unmarshal(req.Object.Raw, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the pod: %w", err))
	}
	// A pod created from a template has no name or namespace yet.
	pod.Namespace = req.Namespace
	who := pod.Name
	if who == "" {
		who = pod.GenerateName + "*"
	}
	ns := &corev1.Namespace{}
	if err := h.Reader.Get(ctx, client.ObjectKey{Name: req.Namespace}, ns); err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("reading namespace %s: %w", req.Namespace, err))
	}
	var members meshv1alpha1.MeshMemberList
	if err := h.Reader.List(ctx, &members, client.InNamespace(req.Namespace)); err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("listing the MeshMembers of %s: %w", req.Namespace, err))
	}
	d, err := inject.Decide(pod, ns, members.Items)
	if err != nil {
		return admission.Denied(fmt.Sprintf("pod %s/%s: %v", req.Namespace, who, err))
	}
	if !d.Inject {
		return admission.Allowed(d.Reason)
	}
	mi := &meshv1alpha1.MeshInstance{}
	if err := h.Reader.Get(ctx, client.ObjectKey{Name: d.Mesh}, mi); apierrors.IsNotFound(err) {
		return admission.Allowed("").WithWarnings(fmt.Sprintf(
			"namespace %s is labelled %s=%s, but MeshInstance %q does not exist: pod %s gets no sidecar", req.Namespace, meshv1alpha1.MonitorLabel, d.Mesh, d.Mesh, who))
	} else if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("reading MeshInstance %s: %w", d.Mesh, err))
	}
	ops, err := inject.Patch(pod, inject.ConfigFor(mi, h.Namespace, inject.Images{Sidecar: h.SidecarImage, Init: h.InitImage}))
	if err != nil {
		return admission.Denied(fmt.Sprintf("pod %s/%s: %v", req.Namespace, who, err))
	}
	logf.FromContext(ctx).V(1).Info("Injected the sidecar", "namespace", req.Namespace, "pod", who, "mesh", d.Mesh, "dryRun", req.DryRun != nil && *req.DryRun)
	return admission.Patched("sidecar injected", ops...)
}
