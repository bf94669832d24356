package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Duration is a duration as OSM's metav1.Duration fields read it, in Go's
// notation (250ms, 5s, 1m30s), kept as written. Negative durations, which
// Envoy refuses, are refused too. Of this form, a duration is more than zero
// exactly when one of its digits is not 0: that is how the fields that must
// be positive check it, since CEL's duration() fails on what the pattern
// refuses and would add its error to the pattern's.
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

// RateLimitUnit is the period a local rate limit's tokens are added in:
// second, minute or hour.
// +kubebuilder:validation:Enum=second;minute;hour
type RateLimitUnit string

const (
	RateLimitPerSecond RateLimitUnit = "second"
	RateLimitPerMinute RateLimitUnit = "minute"
	RateLimitPerHour   RateLimitUnit = "hour"
)

// Interval is the unit as a duration: 1s, 1m or 1h (zero for no unit).
func (u RateLimitUnit) Interval() time.Duration {
	switch u {
	case RateLimitPerSecond:
		return time.Second
	case RateLimitPerMinute:
		return time.Minute
	case RateLimitPerHour:
		return time.Hour
	}
	return 0
}

// UpstreamTrafficSettingSpec is how callers treat traffic to one upstream
// host: a Service of the setting's namespace, or a destination outside the
// mesh that an Egress matches the setting for.
//
// OSM's webhook refused a second UpstreamTrafficSetting with the host of
// another; the API server cannot compare objects, so it accepts one, and the
// mesh that reads the settings is the one to report the conflict.
type UpstreamTrafficSettingSpec struct {
	// host the settings apply to: the fully qualified name of a Service of
	// this namespace (bookstore.bookstore.svc.cluster.local), matched
	// exactly, or for an Egress the external host name (httpbin.org). A
	// name of one label is refused, as OSM's webhook refused it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?([.][a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)+$')",message="host must be a fully qualified DNS name such as bookstore.bookstore.svc.cluster.local, with at least one dot"
	Host string `json:"host"`

	// connectionSettings are the callers' connection limits to the host
	// (circuit breaking): what is over a limit fails at once.
	// +optional
	ConnectionSettings *ConnectionSettings `json:"connectionSettings,omitempty"`

	// rateLimit limits the connections and requests the host accepts, for
	// every route of the host (HTTP limits apply to the whole virtual host).
	// +optional
	RateLimit *RateLimitSpec `json:"rateLimit,omitempty"`

	// httpRoutes are settings of single HTTP routes of the host, each named
	// by the path of an SMI HTTPRouteGroup match (compared as written). A
	// path appears once.
	// +listType=map
	// +listMapKey=path
	// +kubebuilder:validation:MaxItems=64
	// +optional
	HTTPRoutes []HTTPRouteSetting `json:"httpRoutes,omitempty"`
}

// ConnectionSettings are the connection limits of every caller's proxy to
// the upstream host.
type ConnectionSettings struct {
	// tcp settings, for TCP and HTTP connections alike.
	// +optional
	TCP *TCPConnectionSettings `json:"tcp,omitempty"`

	// http settings, for HTTP requests.
	// +optional
	HTTP *HTTPConnectionSettings `json:"http,omitempty"`
}

// TCPConnectionSettings limit the TCP connections to the upstream host.
type TCPConnectionSettings struct {
	// maxConnections bounds the connections a caller's proxy holds to the
	// host; unset is 4294967295 (2^32 - 1), no bound.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +optional
	MaxConnections *int64 `json:"maxConnections,omitempty"`

	// connectTimeout bounds the time a connection takes to establish;
	// unset is 5s. It must be more than zero.
	// +kubebuilder:validation:XValidation:rule="self.matches('[1-9]')",message="connectTimeout must be more than zero"
	// +optional
	ConnectTimeout Duration `json:"connectTimeout,omitempty"`
}

// HTTPConnectionSettings limit the HTTP requests to the upstream host.
type HTTPConnectionSettings struct {
	// maxRequests bounds the requests in flight to the host at once;
	// unset is 4294967295 (2^32 - 1).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +optional
	MaxRequests *int64 `json:"maxRequests,omitempty"`

	// maxRequestsPerConnection closes a connection after so many requests;
	// unset is no bound.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +optional
	MaxRequestsPerConnection *int64 `json:"maxRequestsPerConnection,omitempty"`

	// maxPendingRequests bounds the requests waiting for a connection. On
	// HTTP/2 without maxRequestsPerConnection every request shares one
	// connection, so this limit applies only while none is established.
	// Unset is 4294967295 (2^32 - 1).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +optional
	MaxPendingRequests *int64 `json:"maxPendingRequests,omitempty"`

	// maxRetries bounds the retries in flight to the host at once; unset
	// is 4294967295 (2^32 - 1).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +optional
	MaxRetries *int64 `json:"maxRetries,omitempty"`
}

// RateLimitSpec limits the traffic the upstream host accepts.
type RateLimitSpec struct {
	// local limits are token buckets each of the host's proxies keeps for
	// itself, with no rate limit service.
	// +optional
	Local *LocalRateLimit `json:"local,omitempty"`

	// global limits are decided by an external rate limit service (Envoy's
	// rate limit service API) that every proxy of the host asks.
	// +optional
	Global *GlobalRateLimit `json:"global,omitempty"`
}

// LocalRateLimit are the local token buckets of the host's proxies.
type LocalRateLimit struct {
	// tcp limits the connections: each takes a token, and one that finds
	// none is closed at once.
	// +optional
	TCP *TCPLocalRateLimit `json:"tcp,omitempty"`

	// http limits the requests: each takes a token, and one that finds
	// none is answered responseStatusCode (429 unless set).
	// +optional
	HTTP *HTTPLocalRateLimit `json:"http,omitempty"`
}

// TCPLocalRateLimit is a token bucket of connections.
type TCPLocalRateLimit struct {
	// connections accepted per unit: the tokens added each unit.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967295
	Connections int64 `json:"connections"`

	// unit is the period: second, minute or hour.
	Unit RateLimitUnit `json:"unit"`

	// burst are the connections accepted at once above connections: the
	// bucket holds connections + burst tokens.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +optional
	Burst int64 `json:"burst,omitempty"`
}

// HTTPLocalRateLimit is a token bucket of HTTP requests.
type HTTPLocalRateLimit struct {
	// requests accepted per unit: the tokens added each unit.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967295
	Requests int64 `json:"requests"`

	// unit is the period: second, minute or hour.
	Unit RateLimitUnit `json:"unit"`

	// burst are the requests accepted at once above requests: the bucket
	// holds requests + burst tokens.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +optional
	Burst int64 `json:"burst,omitempty"`

	// responseStatusCode answers the requests over the limit; unset is 429
	// (Too Many Requests).
	// +optional
	ResponseStatusCode RateLimitStatusCode `json:"responseStatusCode,omitempty"`

	// responseHeadersToAdd are added to the answers to requests over the
	// limit.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +optional
	ResponseHeadersToAdd []HTTPHeaderValue `json:"responseHeadersToAdd,omitempty"`
}

// RateLimitStatusCode is the HTTP status of an answer to a rate-limited
// request: an error status (400-599) that Envoy names, as OSM's webhook
// required.
// +kubebuilder:validation:Minimum=400
// +kubebuilder:validation:Maximum=599
// +kubebuilder:validation:XValidation:rule="self in [400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 423, 424, 426, 428, 429, 431, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511]",message="responseStatusCode must be an HTTP error status Envoy knows: 400-417, 421-424, 426, 428, 429, 431, 500-508, 510 or 511"
type RateLimitStatusCode int32

// HTTPHeaderValue is an HTTP header and its value.
type HTTPHeaderValue struct {
	// name of the header.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`
	Name string `json:"name"`

	// value of the header, on one line.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	// +kubebuilder:validation:Pattern=`^[^\x00\r\n]+$`
	Value string `json:"value"`
}

// GlobalRateLimit asks a rate limit service about each connection or
// request the host receives.
type GlobalRateLimit struct {
	// tcp asks about each connection.
	// +optional
	TCP *TCPGlobalRateLimit `json:"tcp,omitempty"`

	// http asks about each request.
	// +optional
	HTTP *HTTPGlobalRateLimit `json:"http,omitempty"`
}

// RateLimitService is where a rate limit service listens.
type RateLimitService struct {
	// host name of the service, such as ratelimit.rls.svc.cluster.local.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?([.][a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)*$')",message="the rate limit service's host must be a DNS name"
	Host string `json:"host"`

	// port of the service (gRPC).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
}

// TCPGlobalRateLimit asks a rate limit service about connections.
type TCPGlobalRateLimit struct {
	// rateLimitService to ask.
	RateLimitService RateLimitService `json:"rateLimitService"`

	// domain of the limits in the service, unique among its users.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Domain string `json:"domain"`

	// descriptors sent with each question.
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Descriptors []TCPRateLimitDescriptor `json:"descriptors"`

	// timeout of a question to the service; unset is 20ms.
	// +optional
	Timeout Duration `json:"timeout,omitempty"`

	// failOpen lets connections in when the service does not answer;
	// unset is true.
	// +optional
	FailOpen *bool `json:"failOpen,omitempty"`
}

// TCPRateLimitDescriptor is a descriptor of static entries.
type TCPRateLimitDescriptor struct {
	// entries of the descriptor.
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Entries []TCPRateLimitDescriptorEntry `json:"entries"`
}

// TCPRateLimitDescriptorEntry is a key and its value.
type TCPRateLimitDescriptorEntry struct {
	// key of the entry.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Key string `json:"key"`

	// value of the entry.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Value string `json:"value"`
}

// HTTPGlobalRateLimit asks a rate limit service about requests.
type HTTPGlobalRateLimit struct {
	// rateLimitService to ask.
	RateLimitService RateLimitService `json:"rateLimitService"`

	// domain of the limits in the service, unique among its users.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Domain string `json:"domain"`

	// descriptors generated from each request and sent with the question;
	// a descriptor one of whose entries cannot be generated is not sent.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Descriptors []HTTPRateLimitDescriptor `json:"descriptors,omitempty"`

	// timeout of a question to the service; unset is 20ms.
	// +optional
	Timeout Duration `json:"timeout,omitempty"`

	// failOpen lets requests in when the service does not answer; unset
	// is true.
	// +optional
	FailOpen *bool `json:"failOpen,omitempty"`

	// enableXRateLimitHeaders adds X-RateLimit-Limit, X-RateLimit-Remaining
	// and X-RateLimit-Reset to the answers of requests the service was
	// asked about; unset is false.
	// +optional
	EnableXRateLimitHeaders *bool `json:"enableXRateLimitHeaders,omitempty"`

	// responseStatusCode answers the requests over the limit; unset is 429.
	// +optional
	ResponseStatusCode RateLimitStatusCode `json:"responseStatusCode,omitempty"`
}

// HTTPRateLimitDescriptor is a descriptor generated from a request.
type HTTPRateLimitDescriptor struct {
	// entries of the descriptor.
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Entries []HTTPRateLimitDescriptorEntry `json:"entries"`
}

// HTTPRateLimitDescriptorEntry is one entry of a descriptor: exactly one of
// its fields is set.
// +kubebuilder:validation:XValidation:rule="[has(self.genericKey), has(self.remoteAddress), has(self.requestHeader), has(self.headerValueMatch)].exists_one(x, x)",message="a descriptor entry has exactly one of genericKey, remoteAddress, requestHeader and headerValueMatch"
type HTTPRateLimitDescriptorEntry struct {
	// genericKey is a static entry.
	// +optional
	GenericKey *GenericKeyDescriptorEntry `json:"genericKey,omitempty"`

	// remoteAddress is the entry remote_address: the caller's address, as
	// X-Forwarded-For tells it.
	// +optional
	RemoteAddress *RemoteAddressDescriptorEntry `json:"remoteAddress,omitempty"`

	// requestHeader is an entry whose value is a request header's; a
	// request without the header generates no descriptor.
	// +optional
	RequestHeader *RequestHeaderDescriptorEntry `json:"requestHeader,omitempty"`

	// headerValueMatch is a static entry generated when the request's
	// headers match.
	// +optional
	HeaderValueMatch *HeaderValueMatchDescriptorEntry `json:"headerValueMatch,omitempty"`
}

// GenericKeyDescriptorEntry is a static entry.
type GenericKeyDescriptorEntry struct {
	// value of the entry.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Value string `json:"value"`

	// key of the entry; unset is generic_key.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Key string `json:"key,omitempty"`
}

// RemoteAddressDescriptorEntry is the entry remote_address, valued with the
// caller's address. It has no fields.
type RemoteAddressDescriptorEntry struct{}

// RequestHeaderDescriptorEntry is an entry valued with a request header.
type RequestHeaderDescriptorEntry struct {
	// name of the request header.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`
	Name string `json:"name"`

	// key of the entry.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Key string `json:"key"`
}

// HeaderValueMatchDescriptorEntry is a static entry generated when a
// request's headers match.
type HeaderValueMatchDescriptorEntry struct {
	// value of the entry.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Value string `json:"value"`

	// headers must all match (or, with expectMatch false, not all).
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Headers []HTTPHeaderMatcher `json:"headers"`

	// key of the entry; unset is header_match.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Key string `json:"key,omitempty"`

	// expectMatch false generates the entry when the headers do not
	// match; unset is true.
	// +optional
	ExpectMatch *bool `json:"expectMatch,omitempty"`
}

// HTTPHeaderMatcher matches a request header: exactly one of exact, prefix,
// suffix, regex, contains and present is set.
// +kubebuilder:validation:XValidation:rule="[has(self.exact), has(self.prefix), has(self.suffix), has(self.regex), has(self.contains), has(self.present)].exists_one(x, x)",message="a header match has exactly one of exact, prefix, suffix, regex, contains and present"
type HTTPHeaderMatcher struct {
	// name of the header.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`
	Name string `json:"name"`

	// exact value.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Exact string `json:"exact,omitempty"`

	// prefix of the value.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Prefix string `json:"prefix,omitempty"`

	// suffix of the value.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Suffix string `json:"suffix,omitempty"`

	// regex the value matches, in RE2 syntax.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Regex string `json:"regex,omitempty"`

	// contains is a substring of the value.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Contains string `json:"contains,omitempty"`

	// present true matches a request with the header, false one without.
	// +optional
	Present *bool `json:"present,omitempty"`
}

// HTTPRouteSetting are the settings of one HTTP route of the host.
type HTTPRouteSetting struct {
	// path of the route: the path (an RE2 regular expression) of an SMI
	// HTTPRouteGroup match, compared as written.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Path string `json:"path"`

	// rateLimit limits the requests of this route, instead of the host's
	// HTTP limits.
	// +optional
	RateLimit *HTTPRouteRateLimit `json:"rateLimit,omitempty"`
}

// HTTPRouteRateLimit limits the requests of one route.
type HTTPRouteRateLimit struct {
	// local is a token bucket of the route's requests, in each proxy of
	// the host.
	// +optional
	Local *HTTPLocalRateLimit `json:"local,omitempty"`

	// global are the descriptors the route's requests are asked about
	// with, to the rate limit service of rateLimit.global.http.
	// +optional
	Global *HTTPRouteGlobalRateLimit `json:"global,omitempty"`
}

// HTTPRouteGlobalRateLimit are a route's descriptors for the host's rate
// limit service.
type HTTPRouteGlobalRateLimit struct {
	// descriptors generated from each request of the route.
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Descriptors []HTTPRateLimitDescriptor `json:"descriptors"`
}

// UpstreamTrafficSettingStatus is the observed state of an
// UpstreamTrafficSetting.
type UpstreamTrafficSettingStatus struct {
	// currentStatus is OSM's one-word summary, kept for tools written for
	// OSM.
	// +kubebuilder:validation:MaxLength=32
	// +optional
	CurrentStatus string `json:"currentStatus,omitempty"`

	// reason explains currentStatus.
	// +kubebuilder:validation:MaxLength=32768
	// +optional
	Reason string `json:"reason,omitempty"`

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

// UpstreamTrafficSetting sets how callers treat the traffic to one upstream
// host: connection limits (circuit breaking), and the local or global rate
// limits of the host and of its HTTP routes.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=osm;osm-policy
// +kubebuilder:printcolumn:name="Host",type=string,JSONPath=`.spec.host`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.currentStatus`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type UpstreamTrafficSetting struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says which host the settings apply to, and what they are.
	Spec UpstreamTrafficSettingSpec `json:"spec"`

	// status is the setting as the operator observes it.
	// +optional
	Status UpstreamTrafficSettingStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// UpstreamTrafficSettingList is a list of UpstreamTrafficSettings.
type UpstreamTrafficSettingList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []UpstreamTrafficSetting `json:"items"`
}

func init() {
	SchemeBuilder.Register(&UpstreamTrafficSetting{}, &UpstreamTrafficSettingList{})
}
