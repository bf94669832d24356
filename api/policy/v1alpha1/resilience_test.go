package v1alpha1_test

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// Every field of OSM's sample that the mesh's model holds is mapped onto it,
// and every other one is reported, in the order of the spec.
func TestUpstreamTrafficSettingResilience(t *testing.T) {
	u := &policyv1alpha1.UpstreamTrafficSetting{}
	if err := yaml.UnmarshalStrict(readSample(t, "upstreamtrafficsetting.yaml"), u); err != nil {
		t.Fatal(err)
	}
	got, unmapped := u.Resilience()
	want := meshv1alpha1.Resilience{
		Connections: &meshv1alpha1.ConnectionLimits{
			MaxConnections:           ptr[int32](1),
			ConnectTimeout:           "1m30s",
			MaxRequests:              ptr[int32](100),
			MaxRequestsPerConnection: ptr[int32](1),
			MaxPendingRequests:       ptr[int32](1),
		},
		RateLimit: &meshv1alpha1.RateLimit{
			// 100 a minute and 10 above: a bucket of 110.
			Connections: &meshv1alpha1.RateLimitBucket{Tokens: 100, Interval: "1m", Burst: ptr[int32](110)},
			Requests:    &meshv1alpha1.RateLimitBucket{Tokens: 3, Interval: "1s", Burst: ptr[int32](13)},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Resilience (-want +got):\n%s", diff)
	}
	wantUnmapped := []string{
		"spec.connectionSettings.http.maxRetries",
		"spec.rateLimit.local.http.responseStatusCode", // 503: the model answers 429
		"spec.rateLimit.local.http.responseHeadersToAdd",
		"spec.rateLimit.global",
		"spec.httpRoutes[0].rateLimit",
		"spec.httpRoutes[1].rateLimit",
	}
	if diff := cmp.Diff(wantUnmapped, unmapped); diff != "" {
		t.Errorf("unmapped (-want +got):\n%s", diff)
	}
	// The intervals are durations of the model, which its API server takes.
	for _, b := range []*meshv1alpha1.RateLimitBucket{got.RateLimit.Connections, got.RateLimit.Requests} {
		if b.Interval.Get() == 0 {
			t.Errorf("interval %q is not a duration", b.Interval)
		}
	}
}

func TestUpstreamTrafficSettingResilienceEdges(t *testing.T) {
	for _, tc := range []struct {
		name         string
		spec         policyv1alpha1.UpstreamTrafficSettingSpec
		want         meshv1alpha1.Resilience
		wantUnmapped []string
	}{
		{"a host only: nothing", policyv1alpha1.UpstreamTrafficSettingSpec{Host: "a.b"}, meshv1alpha1.Resilience{}, nil},
		{"empty sections: nothing", policyv1alpha1.UpstreamTrafficSettingSpec{Host: "a.b",
			ConnectionSettings: &policyv1alpha1.ConnectionSettings{TCP: &policyv1alpha1.TCPConnectionSettings{}},
			RateLimit:          &policyv1alpha1.RateLimitSpec{Local: &policyv1alpha1.LocalRateLimit{}},
			HTTPRoutes:         []policyv1alpha1.HTTPRouteSetting{{Path: "/"}},
		}, meshv1alpha1.Resilience{}, nil},
		{"limits of 0 have no place in the model", policyv1alpha1.UpstreamTrafficSettingSpec{Host: "a.b",
			ConnectionSettings: &policyv1alpha1.ConnectionSettings{
				TCP:  &policyv1alpha1.TCPConnectionSettings{MaxConnections: ptr[int64](0), ConnectTimeout: "250ms"},
				HTTP: &policyv1alpha1.HTTPConnectionSettings{MaxRequests: ptr[int64](0), MaxPendingRequests: ptr[int64](7)},
			},
		}, meshv1alpha1.Resilience{Connections: &meshv1alpha1.ConnectionLimits{ConnectTimeout: "250ms", MaxPendingRequests: ptr[int32](7)}},
			[]string{"spec.connectionSettings.tcp.maxConnections", "spec.connectionSettings.http.maxRequests"}},
		{"OSM's unbounded 2^32 - 1 is the model's 2^31 - 1", policyv1alpha1.UpstreamTrafficSettingSpec{Host: "a.b",
			ConnectionSettings: &policyv1alpha1.ConnectionSettings{HTTP: &policyv1alpha1.HTTPConnectionSettings{MaxRequests: ptr[int64](math.MaxUint32)}},
			RateLimit: &policyv1alpha1.RateLimitSpec{Local: &policyv1alpha1.LocalRateLimit{
				HTTP: &policyv1alpha1.HTTPLocalRateLimit{Requests: math.MaxUint32, Unit: policyv1alpha1.RateLimitPerHour, Burst: 1},
			}},
		}, meshv1alpha1.Resilience{
			Connections: &meshv1alpha1.ConnectionLimits{MaxRequests: ptr[int32](math.MaxInt32)},
			RateLimit: &meshv1alpha1.RateLimit{Requests: &meshv1alpha1.RateLimitBucket{
				Tokens: math.MaxInt32, Interval: "1h", Burst: ptr[int32](math.MaxInt32)}},
		}, nil},
		{"no burst leaves the model's burst to the tokens; 429 is the model's answer", policyv1alpha1.UpstreamTrafficSettingSpec{Host: "a.b",
			RateLimit: &policyv1alpha1.RateLimitSpec{Local: &policyv1alpha1.LocalRateLimit{
				TCP:  &policyv1alpha1.TCPLocalRateLimit{Connections: 5, Unit: policyv1alpha1.RateLimitPerSecond},
				HTTP: &policyv1alpha1.HTTPLocalRateLimit{Requests: 9, Unit: policyv1alpha1.RateLimitPerMinute, ResponseStatusCode: 429},
			}},
		}, meshv1alpha1.Resilience{RateLimit: &meshv1alpha1.RateLimit{
			Connections: &meshv1alpha1.RateLimitBucket{Tokens: 5, Interval: "1s"},
			Requests:    &meshv1alpha1.RateLimitBucket{Tokens: 9, Interval: "1m"},
		}}, nil},
		{"a global limit alone maps nothing", policyv1alpha1.UpstreamTrafficSettingSpec{Host: "a.b",
			RateLimit: &policyv1alpha1.RateLimitSpec{Global: &policyv1alpha1.GlobalRateLimit{}},
		}, meshv1alpha1.Resilience{}, []string{"spec.rateLimit.global"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := &policyv1alpha1.UpstreamTrafficSetting{Spec: tc.spec}
			got, unmapped := u.Resilience()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Resilience (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantUnmapped, unmapped); diff != "" {
				t.Errorf("unmapped (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRateLimitUnitIntervals(t *testing.T) {
	for unit, want := range map[policyv1alpha1.RateLimitUnit]time.Duration{
		"second": time.Second, "minute": time.Minute, "hour": time.Hour, "day": 0, "": 0,
	} {
		if got := unit.Interval(); got != want {
			t.Errorf("%q.Interval() = %v, want %v", unit, got, want)
		}
	}
}

func TestRetryPolicy(t *testing.T) {
	r := &policyv1alpha1.Retry{}
	if err := yaml.UnmarshalStrict(readSample(t, "retry.yaml"), r); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		policy policyv1alpha1.RetryPolicySpec
		want   policyv1alpha1.RetryPolicy
	}{
		{"OSM's guide", r.Spec.RetryPolicy, policyv1alpha1.RetryPolicy{
			RetryOn: "5xx,retriable-4xx", NumRetries: 3, PerTryTimeout: 3 * time.Second,
			BackoffBase: time.Second, BackoffMax: 10 * time.Second,
		}},
		{"retryOn only: Envoy's defaults", policyv1alpha1.RetryPolicySpec{RetryOn: "connect-failure"}, policyv1alpha1.RetryPolicy{
			RetryOn: "connect-failure", NumRetries: 1, BackoffBase: 25 * time.Millisecond, BackoffMax: 250 * time.Millisecond,
		}},
		{"no retries", policyv1alpha1.RetryPolicySpec{RetryOn: "5xx", NumRetries: ptr[int64](0), RetryBackoffBaseInterval: "2ms", PerTryTimeout: "1.5s"},
			policyv1alpha1.RetryPolicy{RetryOn: "5xx", NumRetries: 0, PerTryTimeout: 1500 * time.Millisecond,
				BackoffBase: 2 * time.Millisecond, BackoffMax: 20 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := (&policyv1alpha1.Retry{Spec: policyv1alpha1.RetrySpec{RetryPolicy: tc.policy}}).Policy()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Policy (-want +got):\n%s", diff)
			}
		})
	}
}
