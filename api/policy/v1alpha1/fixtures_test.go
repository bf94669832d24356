package v1alpha1_test

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
)

// Valid objects of each kind, changed by options into the case under test.

func ingressBackend(ns string, opts ...func(*policyv1alpha1.IngressBackend)) *policyv1alpha1.IngressBackend {
	b := &policyv1alpha1.IngressBackend{
		ObjectMeta: metav1.ObjectMeta{Name: "bookstore", Namespace: ns},
		Spec: policyv1alpha1.IngressBackendSpec{
			Backends: []policyv1alpha1.IngressBackendTarget{
				{Name: "bookstore", Port: policyv1alpha1.BackendPort{Number: 14001, Protocol: policyv1alpha1.BackendProtocolHTTP}},
				{Name: "bookstore", Port: policyv1alpha1.BackendPort{Number: 14443, Protocol: policyv1alpha1.BackendProtocolHTTPS},
					TLS: &policyv1alpha1.BackendTLS{SNIHosts: []string{"bookstore.example.com"}}},
			},
			Sources: []policyv1alpha1.IngressSource{
				{Kind: policyv1alpha1.IngressSourceService, Name: "ingress-nginx-controller", Namespace: "ingress-nginx"},
				{Kind: policyv1alpha1.IngressSourceIPRange, Name: "10.0.0.0/8"},
				{Kind: policyv1alpha1.IngressSourceAuthenticatedPrincipal, Name: "ingress-nginx.ingress-nginx.cluster.local"},
			},
		},
	}
	for _, o := range opts {
		o(b)
	}
	return b
}

func egress(ns string, opts ...func(*policyv1alpha1.Egress)) *policyv1alpha1.Egress {
	e := &policyv1alpha1.Egress{
		ObjectMeta: metav1.ObjectMeta{Name: "httpbin", Namespace: ns},
		Spec: policyv1alpha1.EgressSpec{
			Sources: []policyv1alpha1.EgressSource{
				{Kind: policyv1alpha1.EgressSourceServiceAccount, Name: "bookbuyer", Namespace: "bookbuyer"},
			},
			Hosts:       []string{"httpbin.org"},
			IPAddresses: []string{"203.0.113.0/24"},
			Ports: []policyv1alpha1.EgressPort{
				{Number: 80, Protocol: policyv1alpha1.EgressProtocolHTTP},
				{Number: 443, Protocol: policyv1alpha1.EgressProtocolHTTPS},
			},
		},
	}
	for _, o := range opts {
		o(e)
	}
	return e
}

func smiRoutes(name string) policyv1alpha1.MatchReference {
	return policyv1alpha1.MatchReference{APIGroup: policyv1alpha1.SMISpecsGroupVersion, Kind: policyv1alpha1.KindHTTPRouteGroup, Name: name}
}

func upstreamSetting(name string) policyv1alpha1.MatchReference {
	return policyv1alpha1.MatchReference{APIGroup: policyv1alpha1.PolicyGroupVersion, Kind: policyv1alpha1.KindUpstreamTrafficSetting, Name: name}
}

func upstreamTrafficSetting(ns string, opts ...func(*policyv1alpha1.UpstreamTrafficSetting)) *policyv1alpha1.UpstreamTrafficSetting {
	u := &policyv1alpha1.UpstreamTrafficSetting{
		ObjectMeta: metav1.ObjectMeta{Name: "httpbin", Namespace: ns},
		Spec: policyv1alpha1.UpstreamTrafficSettingSpec{
			Host: "httpbin.httpbin.svc.cluster.local",
			ConnectionSettings: &policyv1alpha1.ConnectionSettings{
				TCP:  &policyv1alpha1.TCPConnectionSettings{MaxConnections: ptr[int64](100), ConnectTimeout: "5s"},
				HTTP: &policyv1alpha1.HTTPConnectionSettings{MaxPendingRequests: ptr[int64](10), MaxRetries: ptr[int64](3)},
			},
			RateLimit: &policyv1alpha1.RateLimitSpec{
				Local: &policyv1alpha1.LocalRateLimit{
					TCP:  &policyv1alpha1.TCPLocalRateLimit{Connections: 100, Unit: policyv1alpha1.RateLimitPerMinute},
					HTTP: &policyv1alpha1.HTTPLocalRateLimit{Requests: 10, Unit: policyv1alpha1.RateLimitPerSecond, Burst: 5},
				},
			},
			HTTPRoutes: []policyv1alpha1.HTTPRouteSetting{{
				Path: "/get",
				RateLimit: &policyv1alpha1.HTTPRouteRateLimit{
					Local: &policyv1alpha1.HTTPLocalRateLimit{Requests: 3, Unit: policyv1alpha1.RateLimitPerMinute},
				},
			}},
		},
	}
	for _, o := range opts {
		o(u)
	}
	return u
}

// globalRateLimit is a valid global rate limit of HTTP requests by caller
// address, for the cases to change.
func globalRateLimit() *policyv1alpha1.GlobalRateLimit {
	return &policyv1alpha1.GlobalRateLimit{
		HTTP: &policyv1alpha1.HTTPGlobalRateLimit{
			RateLimitService: policyv1alpha1.RateLimitService{Host: "ratelimit.rls.svc.cluster.local", Port: 8081},
			Domain:           "httpbin",
			Descriptors: []policyv1alpha1.HTTPRateLimitDescriptor{{Entries: []policyv1alpha1.HTTPRateLimitDescriptorEntry{
				{RemoteAddress: &policyv1alpha1.RemoteAddressDescriptorEntry{}},
			}}},
		},
	}
}

func retry(ns string, opts ...func(*policyv1alpha1.Retry)) *policyv1alpha1.Retry {
	r := &policyv1alpha1.Retry{
		ObjectMeta: metav1.ObjectMeta{Name: "retry", Namespace: ns},
		Spec: policyv1alpha1.RetrySpec{
			Source: policyv1alpha1.RetrySource{Kind: policyv1alpha1.RetrySourceServiceAccount, Name: "bookbuyer", Namespace: "bookbuyer"},
			Destinations: []policyv1alpha1.RetryDestination{
				{Kind: policyv1alpha1.RetryDestinationService, Name: "bookstore", Namespace: "bookstore-v1"},
				{Kind: policyv1alpha1.RetryDestinationService, Name: "bookstore", Namespace: "bookstore-v2"},
			},
			RetryPolicy: policyv1alpha1.RetryPolicySpec{
				RetryOn: "5xx", PerTryTimeout: "3s", NumRetries: ptr[int64](3), RetryBackoffBaseInterval: "1s",
			},
		},
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

func ptr[T any](v T) *T { return &v }
