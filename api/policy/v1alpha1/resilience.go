package v1alpha1

import (
	"fmt"
	"math"
	"time"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// Resilience is the UpstreamTrafficSetting in the mesh's own model, the
// resilience of its host, and the fields of the setting that the model has
// no place for, as field paths (spec.connectionSettings.http.maxRetries),
// in the order of the spec. An unset field is never reported.
//
// What maps:
//   - connectionSettings.tcp.maxConnections and connectTimeout, and
//     connectionSettings.http.maxRequests, maxRequestsPerConnection and
//     maxPendingRequests, onto connections (ConnectionLimits), the same
//     Envoy circuit breakers of every caller. A limit above 2^31 - 1, which
//     the model cannot hold, becomes 2^31 - 1: both are no bound in effect.
//   - rateLimit.local.tcp onto rateLimit.connections and
//     rateLimit.local.http onto rateLimit.requests: tokens are connections
//     or requests, the interval is the unit (1s, 1m, 1h), and the bucket
//     holds tokens + burst (OSM's burst counts above the tokens, the
//     model's burst is the bucket's size), so a burst of 0 leaves the
//     model's burst unset (the tokens). An http responseStatusCode of 429
//     is what the model answers.
//
// What does not map, and is reported:
//   - a connection limit of 0, which OSM accepted (every connection or
//     request fails) and the model, whose limits are at least 1, refuses;
//   - connectionSettings.http.maxRetries: the model bounds retries by a
//     share of the active requests (retryBudget), not by a number;
//   - rateLimit.local.http.responseStatusCode other than 429, and
//     rateLimit.local.http.responseHeadersToAdd: the model answers 429
//     with no headers of the user's;
//   - rateLimit.global: the model has no external rate limit service;
//   - httpRoutes[i].rateLimit: the model's limits are a Service port's,
//     not a route's.
func (u *UpstreamTrafficSetting) Resilience() (meshv1alpha1.Resilience, []string) {
	var r meshv1alpha1.Resilience
	var unmapped []string
	spec := u.Spec

	if cs := spec.ConnectionSettings; cs != nil {
		limits := &meshv1alpha1.ConnectionLimits{}
		limit := func(path string, v *int64, into **int32) {
			switch {
			case v == nil:
			case *v < 1:
				unmapped = append(unmapped, path)
			default:
				*into = ptr(clamp32(*v))
			}
		}
		if tcp := cs.TCP; tcp != nil {
			limit("spec.connectionSettings.tcp.maxConnections", tcp.MaxConnections, &limits.MaxConnections)
			limits.ConnectTimeout = meshv1alpha1.Duration(tcp.ConnectTimeout)
		}
		if h := cs.HTTP; h != nil {
			limit("spec.connectionSettings.http.maxRequests", h.MaxRequests, &limits.MaxRequests)
			limit("spec.connectionSettings.http.maxRequestsPerConnection", h.MaxRequestsPerConnection, &limits.MaxRequestsPerConnection)
			limit("spec.connectionSettings.http.maxPendingRequests", h.MaxPendingRequests, &limits.MaxPendingRequests)
			if h.MaxRetries != nil {
				unmapped = append(unmapped, "spec.connectionSettings.http.maxRetries")
			}
		}
		if *limits != (meshv1alpha1.ConnectionLimits{}) {
			r.Connections = limits
		}
	}

	if rl := spec.RateLimit; rl != nil {
		limits := &meshv1alpha1.RateLimit{}
		if local := rl.Local; local != nil {
			if tcp := local.TCP; tcp != nil {
				limits.Connections = bucket(tcp.Connections, tcp.Burst, tcp.Unit)
			}
			if h := local.HTTP; h != nil {
				limits.Requests = bucket(h.Requests, h.Burst, h.Unit)
				if h.ResponseStatusCode != 0 && h.ResponseStatusCode != 429 {
					unmapped = append(unmapped, "spec.rateLimit.local.http.responseStatusCode")
				}
				if len(h.ResponseHeadersToAdd) > 0 {
					unmapped = append(unmapped, "spec.rateLimit.local.http.responseHeadersToAdd")
				}
			}
		}
		if rl.Global != nil {
			unmapped = append(unmapped, "spec.rateLimit.global")
		}
		if limits.Connections != nil || limits.Requests != nil {
			r.RateLimit = limits
		}
	}

	for i, route := range spec.HTTPRoutes {
		if route.RateLimit != nil {
			unmapped = append(unmapped, fmt.Sprintf("spec.httpRoutes[%d].rateLimit", i))
		}
	}
	return r, unmapped
}

// bucket is an OSM local rate limit as the model's token bucket.
func bucket(tokens, burst int64, unit RateLimitUnit) *meshv1alpha1.RateLimitBucket {
	b := &meshv1alpha1.RateLimitBucket{
		Tokens:   clamp32(tokens),
		Interval: intervals[unit],
	}
	if burst > 0 {
		b.Burst = ptr(clamp32(tokens + burst))
	}
	return b
}

// intervals are the units as the model's durations.
var intervals = map[RateLimitUnit]meshv1alpha1.Duration{
	RateLimitPerSecond: "1s", RateLimitPerMinute: "1m", RateLimitPerHour: "1h",
}

// clamp32 is v within the int32 the model holds.
func clamp32(v int64) int32 { return int32(min(max(v, math.MinInt32), math.MaxInt32)) }

func ptr[T any](v T) *T { return &v }

// RetryPolicy is a Retry's retryPolicy with OSM's defaults filled in: what
// the source's proxies do on a failed request to a destination.
type RetryPolicy struct {
	// RetryOn are Envoy's retry conditions, comma-separated, as written.
	RetryOn string
	// NumRetries is the most retries of a request (1 unless set).
	NumRetries int
	// PerTryTimeout bounds each attempt; zero leaves it to the route's
	// timeout.
	PerTryTimeout time.Duration
	// BackoffBase is the base of the jittered exponential backoff (25ms
	// unless set).
	BackoffBase time.Duration
	// BackoffMax caps the backoff: 10 times BackoffBase, as Envoy's default.
	BackoffMax time.Duration
}

// Envoy's retry defaults, which OSM's reference documents for an unset field.
const (
	DefaultNumRetries  = 1
	DefaultBackoffBase = 25 * time.Millisecond
)

// Policy is the Retry's retry policy, every field resolved.
func (r *Retry) Policy() RetryPolicy {
	p := r.Spec.RetryPolicy
	out := RetryPolicy{
		RetryOn:       p.RetryOn,
		NumRetries:    DefaultNumRetries,
		PerTryTimeout: p.PerTryTimeout.Get(),
		BackoffBase:   DefaultBackoffBase,
	}
	if p.NumRetries != nil {
		out.NumRetries = int(*p.NumRetries)
	}
	if b := p.RetryBackoffBaseInterval.Get(); b > 0 {
		out.BackoffBase = b
	}
	out.BackoffMax = 10 * out.BackoffBase
	if out.BackoffBase > math.MaxInt64/10 {
		out.BackoffMax = out.BackoffBase // 10 times would overflow
	}
	return out
}
