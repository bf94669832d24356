package mesh

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// The checks of SMI objects, in one place for the model and the admission
// webhooks: pure functions that say what is wrong. The webhooks refuse or
// warn; the model leaves out what cannot be used and reports it (an object
// applied before the webhooks ran, or while they were down, is never
// refused, so the model must see everything the webhooks would).

// FieldError is what is wrong with one field of an object.
type FieldError struct {
	// Field is the field's path, as kubectl explain names it: "spec.backends[1].service".
	Field string
	Err   error
}

func (e FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

func (e FieldError) Unwrap() error { return e.Err }

func fieldError(field, format string, args ...any) FieldError {
	return FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// SplitTarget is what a TrafficSplit needs of a Service it names: whether
// clients reach it through a virtual IP, and the ports the proxies carry.
type SplitTarget struct {
	Key ServiceKey
	// Headless is true for a Service without a virtual IP (headless or
	// ExternalName).
	Headless bool
	// Ports are the Service's TCP ports, sorted.
	Ports []int32
}

// SplitTargetOf is the split target of a Service as the API holds it.
func SplitTargetOf(s *corev1.Service) SplitTarget {
	t := SplitTarget{
		Key:      ServiceKey{s.Namespace, s.Name},
		Headless: s.Spec.ClusterIP == "" || s.Spec.ClusterIP == corev1.ClusterIPNone || s.Spec.Type == corev1.ServiceTypeExternalName,
	}
	for _, p := range s.Spec.Ports {
		if proxied(p) && p.Port >= 1 && p.Port <= 65535 {
			t.Ports = append(t.Ports, p.Port)
		}
	}
	slices.Sort(t.Ports)
	t.Ports = slices.Compact(t.Ports)
	return t
}

// splitTarget is the split target of a Service of the model.
func (s *Service) splitTarget() SplitTarget {
	t := SplitTarget{Key: s.Key, Headless: s.Headless()}
	for _, p := range s.Ports {
		t.Ports = append(t.Ports, p.Port)
	}
	slices.Sort(t.Ports)
	return t
}

// proxied says whether the proxies carry a Service port: TCP only; UDP
// and SCTP pass by.
func proxied(p corev1.ServicePort) bool {
	return p.Protocol == "" || p.Protocol == corev1.ProtocolTCP
}

// CheckSplitRoot says why a Service cannot be the root of a split: a
// headless Service's clients dial its endpoints themselves, so no proxy
// sees a destination it could split.
func CheckSplitRoot(root SplitTarget) error {
	if root.Headless {
		return fmt.Errorf("Service %s is headless: its clients pick its endpoints themselves, so nothing can split its traffic", root.Key)
	}
	return nil
}

// CheckSplitBackend says why a split of root cannot send traffic to
// backend. A split routes each port of the root to the same port of each
// backend (SMI matches ports, it does not map them), and a backend's
// cluster exists only for the ports it serves through its virtual IP: a
// backend without one of the root's ports, or without a virtual IP, would
// get a share of the traffic for a cluster no proxy has.
func CheckSplitBackend(root, backend SplitTarget) error {
	if backend.Key == root.Key {
		return nil
	}
	if backend.Headless {
		return fmt.Errorf("Service %s is headless: traffic for the root's virtual IP cannot be sent to it", backend.Key)
	}
	var missing []string
	for _, p := range root.Ports {
		if _, ok := slices.BinarySearch(backend.Ports, p); !ok {
			missing = append(missing, strconv.Itoa(int(p)))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	noun := "port"
	if len(missing) > 1 {
		noun = "ports"
	}
	return fmt.Errorf("Service %s does not serve %s %s of the root Service %s", backend.Key, noun, strings.Join(missing, ", "), root.Key)
}
