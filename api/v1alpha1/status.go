package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// StatusConditions returns the conditions of the status, for shared setters.
func (m *MeshInstance) StatusConditions() *[]metav1.Condition { return &m.Status.Conditions }

// StatusConditions returns the conditions of the status, for shared setters.
func (m *MeshMember) StatusConditions() *[]metav1.Condition { return &m.Status.Conditions }

// StatusConditions returns the conditions of the status, for shared setters.
func (m *MeshVM) StatusConditions() *[]metav1.Condition { return &m.Status.Conditions }

// SetObservedGeneration records the generation the status describes.
func (m *MeshInstance) SetObservedGeneration(g int64) { m.Status.ObservedGeneration = g }

// SetObservedGeneration records the generation the status describes.
func (m *MeshMember) SetObservedGeneration(g int64) { m.Status.ObservedGeneration = g }

// SetObservedGeneration records the generation the status describes.
func (m *MeshVM) SetObservedGeneration(g int64) { m.Status.ObservedGeneration = g }
