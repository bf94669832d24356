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
