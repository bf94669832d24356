package v1alpha1_test

import (
	"testing"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
)

// The protocols compare as OSM compares them, in any case.
func TestProtocolsAreCaseInsensitive(t *testing.T) {
	for in, want := range map[policyv1alpha1.BackendProtocol]policyv1alpha1.BackendProtocol{
		"HTTP": policyv1alpha1.BackendProtocolHTTP, "Https": policyv1alpha1.BackendProtocolHTTPS, "https": policyv1alpha1.BackendProtocolHTTPS,
	} {
		if got := in.Canonical(); got != want {
			t.Errorf("BackendProtocol(%q).Canonical() = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[policyv1alpha1.EgressProtocol]policyv1alpha1.EgressProtocol{
		"TCP": policyv1alpha1.EgressProtocolTCP, "Tcp-Server-First": policyv1alpha1.EgressProtocolTCPServerFirst,
		"HTTP": policyv1alpha1.EgressProtocolHTTP, "HTTPS": policyv1alpha1.EgressProtocolHTTPS,
	} {
		if got := in.Canonical(); got != want {
			t.Errorf("EgressProtocol(%q).Canonical() = %q, want %q", in, got, want)
		}
	}
}

// A match names what it names in either spelling of its group, and only that.
func TestMatchReferenceKinds(t *testing.T) {
	ref := func(group, kind string) policyv1alpha1.MatchReference {
		return policyv1alpha1.MatchReference{APIGroup: group, Kind: kind, Name: "x"}
	}
	for _, tc := range []struct {
		ref                    policyv1alpha1.MatchReference
		routes, trafficSetting bool
	}{
		{ref("specs.smi-spec.io/v1alpha4", "HTTPRouteGroup"), true, false},
		{ref("specs.smi-spec.io", "HTTPRouteGroup"), true, false},
		{ref("specs.smi-spec.io/v1alpha3", "HTTPRouteGroup"), false, false},
		{ref("specs.smi-spec.io", "TCPRoute"), false, false},
		{ref("policy.openservicemesh.io/v1alpha1", "UpstreamTrafficSetting"), false, true},
		{ref("policy.openservicemesh.io", "UpstreamTrafficSetting"), false, true},
		{ref("specs.smi-spec.io", "UpstreamTrafficSetting"), false, false},
		{ref("policy.openservicemesh.io", "HTTPRouteGroup"), false, false},
	} {
		if got := tc.ref.IsHTTPRouteGroup(); got != tc.routes {
			t.Errorf("%+v IsHTTPRouteGroup = %v, want %v", tc.ref, got, tc.routes)
		}
		if got := tc.ref.IsUpstreamTrafficSetting(); got != tc.trafficSetting {
			t.Errorf("%+v IsUpstreamTrafficSetting = %v, want %v", tc.ref, got, tc.trafficSetting)
		}
	}
}
