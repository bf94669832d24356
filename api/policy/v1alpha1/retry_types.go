package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RetrySourceKind is what a Retry source names: a service account.
// +kubebuilder:validation:Enum=ServiceAccount
type RetrySourceKind string

// RetrySourceServiceAccount is the one kind of Retry source.
const RetrySourceServiceAccount RetrySourceKind = "ServiceAccount"

// RetryDestinationKind is what a Retry destination names: a Service.
// +kubebuilder:validation:Enum=Service
type RetryDestinationKind string

// RetryDestinationService is the one kind of Retry destination (OSM's
// controller ignored any other).
const RetryDestinationService RetryDestinationKind = "Service"

// RetrySpec says which callers retry failed HTTP requests to which
// Services, and how.
type RetrySpec struct {
	// source is the service account whose workloads retry.
	Source RetrySource `json:"source"`

	// destinations are the Services whose failed requests the source
	// retries. A Service appears once.
	// +listType=map
	// +listMapKey=namespace
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Destinations []RetryDestination `json:"destinations"`

	// retryPolicy is when and how often to retry.
	RetryPolicy RetryPolicySpec `json:"retryPolicy"`
}

// RetrySource is the service account a Retry applies to.
type RetrySource struct {
	// kind of the source: ServiceAccount.
	Kind RetrySourceKind `json:"kind"`

	// name of the service account.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// namespace of the service account.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace"`
}

// RetryDestination is a Service a Retry applies to.
type RetryDestination struct {
	// kind of the destination: Service.
	Kind RetryDestinationKind `json:"kind"`

	// name of the Service.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// namespace of the Service.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace"`
}

// RetryPolicySpec is when a failed request is retried, how often and how
// fast: Envoy's route retry policy.
type RetryPolicySpec struct {
	// retryOn are the conditions to retry on, comma-separated without
	// spaces, as Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on name
	// them: 5xx, gateway-error, reset, reset-before-request,
	// connect-failure, envoy-ratelimited, retriable-4xx, refused-stream,
	// retriable-status-codes, retriable-headers, http3-post-connect-failure,
	// and for gRPC cancelled, deadline-exceeded, internal,
	// resource-exhausted, unavailable. Envoy ignores a condition it does not
	// know, so a misspelt one is refused.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.split(',').all(c, c in ['5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'envoy-ratelimited', 'retriable-4xx', 'refused-stream', 'retriable-status-codes', 'retriable-headers', 'http3-post-connect-failure', 'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable'])",message="retryOn must be Envoy retry conditions separated by commas without spaces, such as 5xx,reset,connect-failure"
	RetryOn string `json:"retryOn"`

	// perTryTimeout bounds each attempt, the first and each retry, after
	// which it has failed; unset, an attempt is bounded by the route's
	// timeout only.
	// +optional
	PerTryTimeout Duration `json:"perTryTimeout,omitempty"`

	// numRetries is the most retries of a request; unset is 1.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +optional
	NumRetries *int64 `json:"numRetries,omitempty"`

	// retryBackoffBaseInterval is the base of the jittered exponential
	// backoff between retries: the Nth waits a random time up to
	// (2^N - 1) times the base, and at most 10 times the base. Unset is
	// 25ms; it must be more than zero.
	// +kubebuilder:validation:XValidation:rule="self.matches('[1-9]')",message="retryBackoffBaseInterval must be more than zero"
	// +optional
	RetryBackoffBaseInterval Duration `json:"retryBackoffBaseInterval,omitempty"`
}

// RetryStatus is the observed state of a Retry. OSM kept none; this is the
// status of the package's other kinds without OSM's summary.
type RetryStatus struct {
	// observedGeneration is the generation of the spec the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, Reconciling and Stalled, with kstatus semantics.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Retry lets the workloads of a service account retry their failed HTTP
// requests to some Services: on which failures, how many times, how long
// each attempt may take and how long to wait between them.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=retries,categories=osm;osm-policy
// +kubebuilder:printcolumn:name="Source",type=string,JSONPath=`.spec.source.name`
// +kubebuilder:printcolumn:name="Retry On",type=string,JSONPath=`.spec.retryPolicy.retryOn`
// +kubebuilder:printcolumn:name="Retries",type=integer,JSONPath=`.spec.retryPolicy.numRetries`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Retry struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says who retries which requests, and how.
	Spec RetrySpec `json:"spec"`

	// status is the policy as the operator observes it.
	// +optional
	Status RetryStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// RetryList is a list of Retries.
type RetryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Retry `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Retry{}, &RetryList{})
}
