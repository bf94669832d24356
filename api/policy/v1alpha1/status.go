package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Both kinds carry the conditions of the mesh API (Ready, Reconciling,
// Stalled; see api/v1alpha1's Condition* constants) and the generation they
// describe, so the operator's shared status setters and kstatus read them as
// they read a MeshInstance.

// StatusConditions returns the conditions of the status, for shared setters.
func (e *Egress) StatusConditions() *[]metav1.Condition { return &e.Status.Conditions }

// SetObservedGeneration records the generation the status describes.
func (e *Egress) SetObservedGeneration(g int64) { e.Status.ObservedGeneration = g }

// StatusConditions returns the conditions of the status, for shared setters.
func (b *IngressBackend) StatusConditions() *[]metav1.Condition { return &b.Status.Conditions }

// SetObservedGeneration records the generation the status describes.
func (b *IngressBackend) SetObservedGeneration(g int64) { b.Status.ObservedGeneration = g }

// Reasons of the Ready condition of an IngressBackend or an Egress.
const (
	// ReasonNamespaceNotInMesh: the policy's namespace is a member of no
	// mesh, so no mesh reads the policy and it has no effect.
	ReasonNamespaceNotInMesh = "NamespaceNotInMesh"
	// ReasonLeftOut: the mesh left the policy out, whole or in part (a
	// backend, a source, a match that does not resolve); the message
	// names each problem. What it would have allowed is denied.
	ReasonLeftOut = "LeftOutOfMesh"
)
