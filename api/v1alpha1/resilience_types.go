package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// RouteControllerName is the controller the mesh names in the status it
// writes on Gateway API routes (status.parents) and on the policies that
// attach as Gateway API policies do (status.ancestors).
const RouteControllerName gwv1.GatewayController = "mesh.openservicemesh.io/osm-operator"

// Duration is a Go duration, such as 250ms, 10s or 1m30s.
// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
// +kubebuilder:validation:MaxLength=32
type Duration string

// Get is the duration, zero when unset (or not a duration: the API server
// refuses those).
func (d Duration) Get() time.Duration {
	v, err := time.ParseDuration(string(d))
	if err != nil {
		return 0
	}
	return v
}

// Resilience is how callers treat the endpoints of a destination: what a
// route cannot say. Every field is optional; a ResiliencePolicy's fields
// override the mesh's defaults (MeshInstance spec.resilience) one by one.
type Resilience struct {
	// connections limits the caller's connections and requests to the
	// destination (circuit breaking): what is over a limit fails at once
	// instead of queueing.
	// +optional
	Connections *ConnectionLimits `json:"connections,omitempty"`

	// outlierDetection ejects endpoints that fail, for a while, from the
	// caller's load balancing.
	// +optional
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`

	// retryBudget bounds the retries in flight to the destination to a
	// share of its active requests, whatever the routes' retry policies.
	// +optional
	RetryBudget *RetryBudget `json:"retryBudget,omitempty"`

	// loadBalancer is how callers pick an endpoint.
	// +optional
	LoadBalancer *LoadBalancer `json:"loadBalancer,omitempty"`

	// rateLimit limits, at the destination's own proxies, the connections
	// and requests each of them accepts (local rate limits: each proxy
	// counts for itself).
	// +optional
	RateLimit *RateLimit `json:"rateLimit,omitempty"`

	// fault injects delays and aborts into callers' requests to the
	// destination, to test how the callers cope; off unless set.
	// +optional
	Fault *Fault `json:"fault,omitempty"`
}

// ConnectionLimits are a destination's circuit breakers and connection
// settings, per caller proxy.
type ConnectionLimits struct {
	// maxConnections bounds the connections to the destination (HTTP/1.1
	// and TCP); Envoy's default is 1024.
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxConnections *int32 `json:"maxConnections,omitempty"`
	// maxPendingRequests bounds the requests waiting for a connection;
	// Envoy's default is 1024.
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxPendingRequests *int32 `json:"maxPendingRequests,omitempty"`
	// maxRequests bounds the requests in flight (HTTP/2 and gRPC); Envoy's
	// and gRPC's default is 1024.
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxRequests *int32 `json:"maxRequests,omitempty"`
	// maxRequestsPerConnection closes a connection after so many requests.
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxRequestsPerConnection *int32 `json:"maxRequestsPerConnection,omitempty"`
	// connectTimeout bounds the time a connection takes to establish.
	// +optional
	ConnectTimeout Duration `json:"connectTimeout,omitempty"`
	// idleTimeout closes a connection with no request for so long.
	// +optional
	IdleTimeout Duration `json:"idleTimeout,omitempty"`
	// tcpKeepalive sends TCP keepalive probes on idle connections.
	// +optional
	TCPKeepalive *TCPKeepalive `json:"tcpKeepalive,omitempty"`
}

// TCPKeepalive are TCP keepalive settings; the kernel's apply to what is unset.
type TCPKeepalive struct {
	// time is how long a connection is idle before the first probe.
	// +optional
	Time Duration `json:"time,omitempty"`
	// interval is the time between probes.
	// +optional
	Interval Duration `json:"interval,omitempty"`
	// probes are the unanswered probes after which the connection is dead.
	// +kubebuilder:validation:Minimum=1
	// +optional
	Probes *int32 `json:"probes,omitempty"`
}

// OutlierDetection ejects failing endpoints. An endpoint is ejected after
// consecutiveErrors failures in a row (5xx answers, or connection
// failures), or when, over an interval with enough requests, more than
// failurePercentage of its requests failed; proxyless gRPC applications
// judge by the percentage only.
type OutlierDetection struct {
	// consecutiveErrors ejects an endpoint after so many failures in a row;
	// Envoy's default is 5.
	// +kubebuilder:validation:Minimum=1
	// +optional
	ConsecutiveErrors *int32 `json:"consecutiveErrors,omitempty"`
	// failurePercentage ejects an endpoint whose share of failed requests
	// over an interval is at least so many percent.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	FailurePercentage *int32 `json:"failurePercentage,omitempty"`
	// minimumRequests is the least requests an endpoint must have had in
	// an interval for failurePercentage to judge it (default 50).
	// +kubebuilder:validation:Minimum=1
	// +optional
	MinimumRequests *int32 `json:"minimumRequests,omitempty"`
	// interval is how often endpoints are judged (default 10s).
	// +optional
	Interval Duration `json:"interval,omitempty"`
	// baseEjectionTime is how long an endpoint is ejected the first time,
	// growing with each ejection (default 30s).
	// +optional
	BaseEjectionTime Duration `json:"baseEjectionTime,omitempty"`
	// maxEjectionPercent bounds the share of endpoints ejected at once
	// (default 10; at least one endpoint can always be ejected).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	MaxEjectionPercent *int32 `json:"maxEjectionPercent,omitempty"`
}

// RetryBudget bounds retries to a share of the active requests.
type RetryBudget struct {
	// percent of the active requests that may be retries at once.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Percent int32 `json:"percent"`
	// minRetryConcurrency are the retries allowed at once whatever the
	// share (default 3).
	// +kubebuilder:validation:Minimum=1
	// +optional
	MinRetryConcurrency *int32 `json:"minRetryConcurrency,omitempty"`
}

// LoadBalancerAlgorithm is how a caller picks an endpoint.
// +kubebuilder:validation:Enum=RoundRobin;LeastRequest;RingHash;Random
type LoadBalancerAlgorithm string

const (
	LoadBalancerRoundRobin   LoadBalancerAlgorithm = "RoundRobin"
	LoadBalancerLeastRequest LoadBalancerAlgorithm = "LeastRequest"
	LoadBalancerRingHash     LoadBalancerAlgorithm = "RingHash"
	LoadBalancerRandom       LoadBalancerAlgorithm = "Random"
)

// LoadBalancer is a destination's load balancing.
// +kubebuilder:validation:XValidation:rule="self.algorithm == 'RingHash' ? has(self.hashHeader) : !has(self.hashHeader)",message="hashHeader is set exactly when the algorithm is RingHash"
type LoadBalancer struct {
	// algorithm: RoundRobin (the default), LeastRequest, RingHash (the
	// same hashHeader value reaches the same endpoint while it stays) or
	// Random (not for proxyless gRPC applications, which then use
	// RoundRobin).
	Algorithm LoadBalancerAlgorithm `json:"algorithm"`
	// hashHeader is the request header whose value RingHash hashes.
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`
	// +optional
	HashHeader string `json:"hashHeader,omitempty"`
}

// RateLimit is a destination proxy's local rate limits: a token bucket of
// so many connections or requests per interval, each proxy for itself.
type RateLimit struct {
	// connections are the connections a proxy accepts per interval, on
	// any port of the destination; the others are closed.
	// +optional
	Connections *RateLimitBucket `json:"connections,omitempty"`
	// requests are the HTTP requests a proxy accepts per interval; the
	// others are answered 429.
	// +optional
	Requests *RateLimitBucket `json:"requests,omitempty"`
}

// RateLimitBucket is a token bucket: tokens per interval, up to burst.
type RateLimitBucket struct {
	// tokens added each interval.
	// +kubebuilder:validation:Minimum=1
	Tokens int32 `json:"tokens"`
	// interval at which tokens are added (at least 50ms; default 1s).
	// +optional
	Interval Duration `json:"interval,omitempty"`
	// burst is the most tokens the bucket holds (default tokens).
	// +kubebuilder:validation:Minimum=1
	// +optional
	Burst *int32 `json:"burst,omitempty"`
}

// Fault injects faults into a share of the requests to a destination.
// +kubebuilder:validation:XValidation:rule="has(self.delay) || has(self.abort)",message="a fault has a delay, an abort or both"
type Fault struct {
	// delay delays a share of the requests.
	// +optional
	Delay *FaultDelay `json:"delay,omitempty"`
	// abort answers a share of the requests with an error instead.
	// +optional
	Abort *FaultAbort `json:"abort,omitempty"`
	// headers select the requests faults apply to: all of them must
	// match (exactly); none selects every request.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Headers []gwv1.HTTPHeaderMatch `json:"headers,omitempty"`
}

// FaultDelay delays requests.
type FaultDelay struct {
	// fixedDelay is the delay.
	FixedDelay Duration `json:"fixedDelay"`
	// percent of the requests delayed.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Percent int32 `json:"percent"`
}

// FaultAbort answers requests with an error.
// +kubebuilder:validation:XValidation:rule="has(self.httpStatus) != has(self.grpcStatus)",message="an abort has an httpStatus or a grpcStatus"
type FaultAbort struct {
	// httpStatus is the HTTP status answered (200-599).
	// +kubebuilder:validation:Minimum=200
	// +kubebuilder:validation:Maximum=599
	// +optional
	HTTPStatus *int32 `json:"httpStatus,omitempty"`
	// grpcStatus is the gRPC status code answered (1-16).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=16
	// +optional
	GRPCStatus *int32 `json:"grpcStatus,omitempty"`
	// percent of the requests aborted.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Percent int32 `json:"percent"`
}

// ResiliencePolicySpec attaches resilience settings to Services of its
// namespace, or, its fault only, to the rules of routes of its namespace
// whose filters name it (an ExtensionRef filter of group
// mesh.openservicemesh.io, kind ResiliencePolicy).
// +kubebuilder:validation:XValidation:rule="has(self.targetRefs) && size(self.targetRefs) > 0 || has(self.fault)",message="a ResiliencePolicy targets Services, or injects a fault for the route rules that name it"
type ResiliencePolicySpec struct {
	// targetRefs are the Services (group "", kind Service) the policy
	// applies to, each with an optional sectionName naming one of its ports.
	// A policy with none applies only where route rules name it.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(r, r.group == '' && r.kind == 'Service')",message="a ResiliencePolicy targets Services: group \"\", kind Service"
	// +optional
	TargetRefs []gwv1.LocalPolicyTargetReferenceWithSectionName `json:"targetRefs,omitempty"`

	Resilience `json:",inline"`
}

// ResiliencePolicyStatus is Gateway API's policy status: an ancestor per
// target Service, Accepted or not (Conflicted, TargetNotFound, Invalid).
type ResiliencePolicyStatus struct {
	gwv1.PolicyStatus `json:",inline"`
}

// ResiliencePolicy sets how callers treat the endpoints of Services:
// circuit breaking, outlier detection, a retry budget, load balancing,
// local rate limits and fault injection, as Gateway API policies attach.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=resiliencepolicies,shortName=rp,categories=osm
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.ancestors[0].conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ResiliencePolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ResiliencePolicySpec   `json:"spec"`
	Status ResiliencePolicyStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ResiliencePolicyList is a list of ResiliencePolicies.
type ResiliencePolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ResiliencePolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ResiliencePolicy{}, &ResiliencePolicyList{})
}
