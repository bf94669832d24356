package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Every kind carries the conditions of the mesh API (Ready, Reconciling,
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

// StatusConditions returns the conditions of the status, for shared setters.
func (u *UpstreamTrafficSetting) StatusConditions() *[]metav1.Condition { return &u.Status.Conditions }

// SetObservedGeneration records the generation the status describes.
func (u *UpstreamTrafficSetting) SetObservedGeneration(g int64) { u.Status.ObservedGeneration = g }

// StatusConditions returns the conditions of the status, for shared setters.
func (r *Retry) StatusConditions() *[]metav1.Condition { return &r.Status.Conditions }

// SetObservedGeneration records the generation the status describes.
func (r *Retry) SetObservedGeneration(g int64) { r.Status.ObservedGeneration = g }

// Reasons of the Ready condition of the policies of this package.
const (
	// ReasonNamespaceNotInMesh: the policy's namespace is a member of no
	// mesh, so no mesh reads the policy and it has no effect.
	ReasonNamespaceNotInMesh = "NamespaceNotInMesh"
	// ReasonLeftOut: the mesh left the policy out, whole or in part (a
	// backend, a source, a match that does not resolve); the message
	// names each problem. What it would have allowed is denied.
	ReasonLeftOut = "LeftOutOfMesh"
)
