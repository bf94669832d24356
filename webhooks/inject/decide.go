package inject

import (
	"fmt"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// Decision says whether a pod gets a sidecar, and why not.
type Decision struct {
	Inject bool
	// Mesh is the mesh of the pod's namespace.
	Mesh string
	// Reason says why the pod is left alone.
	Reason string
}

func skip(format string, args ...any) Decision {
	return Decision{Reason: fmt.Sprintf(format, args...)}
}

// Decide says whether pod, in namespace ns with the MeshMembers members,
// gets a sidecar. A namespace is in a mesh by its monitor label; the pod's
// sidecar-injection annotation wins over the namespace's; a MeshMember with
// a selector or with injection disabled narrows which pods are injected. A
// namespace labelled by hand, with no MeshMember, injects all its pods. An
// annotation value other than enabled or disabled is an error.
func Decide(pod *corev1.Pod, ns *corev1.Namespace, members []meshv1alpha1.MeshMember) (Decision, error) {
	mesh := ns.Labels[meshv1alpha1.MonitorLabel]
	if mesh == "" {
		return skip("namespace %s is in no mesh", ns.Name), nil
	}
	if Injected(pod) {
		return Decision{Mesh: mesh, Reason: "the pod has a sidecar already"}, nil
	}
	switch v := pod.Annotations[meshv1alpha1.SidecarInjectionAnnotation]; v {
	case meshv1alpha1.SidecarInjectionDisabled:
		return Decision{Mesh: mesh, Reason: "the pod opted out"}, nil
	case meshv1alpha1.SidecarInjectionEnabled:
	case "":
		if ns.Annotations[meshv1alpha1.SidecarInjectionAnnotation] == meshv1alpha1.SidecarInjectionDisabled {
			return Decision{Mesh: mesh, Reason: fmt.Sprintf("namespace %s opted out", ns.Name)}, nil
		}
	default:
		return Decision{}, fmt.Errorf("annotation %s: %q is neither %q nor %q", meshv1alpha1.SidecarInjectionAnnotation, v,
			meshv1alpha1.SidecarInjectionEnabled, meshv1alpha1.SidecarInjectionDisabled)
	}
	if pod.Spec.HostNetwork {
		return Decision{Mesh: mesh, Reason: "the pod uses the host's network"}, nil
	}
	mine, selected := 0, false
	for _, m := range members {
		if m.Spec.Mesh != mesh || !m.DeletionTimestamp.IsZero() {
			continue
		}
		mine++
		if m.Spec.Injection == meshv1alpha1.InjectionDisabled {
			continue
		}
		sel := labels.Everything()
		if m.Spec.Selector != nil {
			s, err := metav1.LabelSelectorAsSelector(m.Spec.Selector)
			if err != nil {
				continue // reported on the MeshMember
			}
			sel = s
		}
		if sel.Matches(labels.Set(pod.Labels)) {
			selected = true
		}
	}
	if mine > 0 && !selected {
		return Decision{Mesh: mesh, Reason: fmt.Sprintf("no MeshMember of namespace %s selects the pod for injection", ns.Name)}, nil
	}
	return Decision{Inject: true, Mesh: mesh}, nil
}

// Patch injects the pod and returns the JSON patch that does it to the pod
// as it was sent. The operations touch only what injection changes, so
// fields of the pod this build does not know are kept: the two containers
// and the volume are inserted, the annotations set, and the probes that were
// rewritten replaced.
func Patch(pod *corev1.Pod, cfg Config) ([]jsonpatch.Operation, error) {
	injected := pod.DeepCopy()
	if err := Pod(injected, cfg); err != nil {
		return nil, err
	}
	var ops []jsonpatch.Operation
	add := func(path string, v any) { ops = append(ops, jsonpatch.NewOperation("add", path, v)) }
	add("/metadata/annotations", injected.Annotations)
	added := injected.Spec.InitContainers[:len(injected.Spec.InitContainers)-len(pod.Spec.InitContainers)]
	if len(added) == 0 {
		// a proxyless gRPC pod: no containers of the mesh's own
	} else if len(pod.Spec.InitContainers) == 0 {
		add("/spec/initContainers", added)
	} else {
		for i := len(added) - 1; i >= 0; i-- {
			add("/spec/initContainers/0", added[i])
		}
	}
	if len(pod.Spec.Volumes) == 0 {
		add("/spec/volumes", injected.Spec.Volumes)
	} else {
		for _, v := range injected.Spec.Volumes[len(pod.Spec.Volumes):] {
			add("/spec/volumes/-", v)
		}
	}
	for i := range pod.Spec.Containers {
		before, after := &pod.Spec.Containers[i], &injected.Spec.Containers[i]
		if !equality.Semantic.DeepEqual(before.Env, after.Env) {
			add(fmt.Sprintf("/spec/containers/%d/env", i), after.Env)
		}
		if !equality.Semantic.DeepEqual(before.VolumeMounts, after.VolumeMounts) {
			add(fmt.Sprintf("/spec/containers/%d/volumeMounts", i), after.VolumeMounts)
		}
		for _, p := range []struct {
			field         string
			before, after *corev1.Probe
		}{
			{"livenessProbe", before.LivenessProbe, after.LivenessProbe},
			{"readinessProbe", before.ReadinessProbe, after.ReadinessProbe},
			{"startupProbe", before.StartupProbe, after.StartupProbe},
		} {
			if !equality.Semantic.DeepEqual(p.before, p.after) {
				add(fmt.Sprintf("/spec/containers/%d/%s", i, p.field), p.after)
			}
		}
	}
	return ops, nil
}
