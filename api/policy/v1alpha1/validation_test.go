package v1alpha1_test

import (
	"context"
	"fmt"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
)

type ib = policyv1alpha1.IngressBackend
type eg = policyv1alpha1.Egress
type uts = policyv1alpha1.UpstreamTrafficSetting
type rt = policyv1alpha1.Retry

// invalidCase is a policy the API server must refuse (testenv.Invalid).
type invalidCase testenv.Invalid

// TestAPIServerRejectsInvalidPolicies sends each invalid object to the real
// API server and checks that it is refused with an error naming the
// offending field.
func TestAPIServerRejectsInvalidPolicies(t *testing.T) {
	manyBackends := make([]policyv1alpha1.IngressBackendTarget, 65)
	for i := range manyBackends {
		manyBackends[i] = policyv1alpha1.IngressBackendTarget{Name: fmt.Sprintf("svc-%d", i),
			Port: policyv1alpha1.BackendPort{Number: 80, Protocol: policyv1alpha1.BackendProtocolHTTP}}
	}
	cases := []invalidCase{
		// IngressBackend
		{"no backends", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Backends = []policyv1alpha1.IngressBackendTarget{} })
		}, "spec.backends", "should have at least 1 items"},
		{"backends left out", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Backends = nil })
		}, "spec.backends", "Required value"},
		{"more than 64 backends", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Backends = manyBackends })
		}, "spec.backends", "must have at most 64 items"},
		{"no sources", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Sources = []policyv1alpha1.IngressSource{} })
		}, "spec.sources", "should have at least 1 items"},
		{"backend port 0", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Backends[1].Port.Number = 0 })
		}, "spec.backends[1].port.number", "greater than or equal to 1"},
		{"backend port above 65535", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Backends[0].Port.Number = 65536 })
		}, "spec.backends[0].port.number", "less than or equal to 65535"},
		{"backend protocol grpc, which OSM refuses too", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Backends[0].Port.Protocol = "grpc" })
		}, "spec.backends[0].port.protocol", "protocol must be http or https"},
		{"backend protocol tcp", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Backends[0].Port.Protocol = "tcp" })
		}, "spec.backends[0].port.protocol", "protocol must be http or https"},
		{"backend protocol left out", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Backends[0].Port.Protocol = "" })
		}, "spec.backends[0].port.protocol", "at least 1 chars long"},
		{"backend that is no Service name", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Backends[0].Name = "Book_Store" })
		}, "spec.backends[0].name", "should match"},
		{"a Service and port twice", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Backends[1].Port.Number = b.Spec.Backends[0].Port.Number })
		}, "spec.backends", "each Service and port number must appear once"},
		{"SNI host with a space", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Backends[1].TLS.SNIHosts = []string{"bookstore.example.com", "book store"} })
		}, "spec.backends[1].tls.sniHosts[1]", "each SNI host must be a DNS name"},
		{"SNI host with a wildcard inside", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Backends[1].TLS.SNIHosts = []string{"book.*.example.com"} })
		}, "spec.backends[1].tls.sniHosts[0]", "each SNI host must be a DNS name"},
		{"Service source without a namespace", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Sources[0].Namespace = "" })
		}, "spec.sources[0].namespace", "a Service source needs the namespace of the Service"},
		{"Service source that is no Service name", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Sources[0].Name = "ingress-nginx/controller" })
		}, "spec.sources[0].name", "a Service source's name must be a Service name"},
		{"Service source in a namespace that is no namespace name", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Sources[0].Namespace = "Ingress NGINX" })
		}, "spec.sources[0].namespace", "should match"},
		{"IPRange source with a prefix beyond /32", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Sources[1].Name = "10.0.0.0/33" })
		}, "spec.sources[1].name", "an IPRange source's name must be a CIDR"},
		{"IPRange source that is an address without a prefix", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Sources[1].Name = "10.0.0.1" })
		}, "spec.sources[1].name", "an IPRange source's name must be a CIDR"},
		{"IPRange source that is a host name", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Sources[1].Name = "lb.example.com/24" })
		}, "spec.sources[1].name", "an IPRange source's name must be a CIDR"},
		{"AuthenticatedPrincipal with a space", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Sources[2].Name = "ingress-nginx ingress-nginx" })
		}, "spec.sources[2].name", "an AuthenticatedPrincipal source's name must be a certificate's subject alternative name"},
		{"AuthenticatedPrincipal with a line break", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Sources[2].Name = "ingress-nginx.cluster.local\nspiffe://evil" })
		}, "spec.sources[2].name", "an AuthenticatedPrincipal source's name must be a certificate's subject alternative name"},
		{"AuthenticatedPrincipal longer than 512", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Sources[2].Name = "spiffe://cluster.local/" + strings.Repeat("a", 500) })
		}, "spec.sources[2].name", "Too long"},
		{"source of an unknown kind", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Sources[2].Kind = "Pod" })
		}, "spec.sources[2].kind", "Unsupported value"},
		{"source without a name", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Sources[2].Name = "" })
		}, "spec.sources[2].name", "at least 1 chars long"},
		{"IngressBackend matching a TCPRoute", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) {
				b.Spec.Matches = []policyv1alpha1.MatchReference{{APIGroup: policyv1alpha1.SMISpecsGroupVersion, Kind: "TCPRoute", Name: "mysql"}}
			})
		}, "spec.matches[0]", "an IngressBackend matches HTTPRouteGroups"},
		{"IngressBackend matching an HTTPRouteGroup of another group", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) {
				b.Spec.Matches = []policyv1alpha1.MatchReference{{APIGroup: "gateway.networking.k8s.io", Kind: "HTTPRouteGroup", Name: "routes"}}
			})
		}, "spec.matches[0]", "an IngressBackend matches HTTPRouteGroups"},
		{"match without an apiGroup", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) {
				b.Spec.Matches = []policyv1alpha1.MatchReference{{Kind: "HTTPRouteGroup", Name: "routes"}}
			})
		}, "spec.matches[0].apiGroup", "at least 1 chars long"},

		// Egress
		{"address range with a prefix beyond /32", func(ns string) client.Object {
			return egress(ns, func(e *eg) { e.Spec.IPAddresses = []string{"203.0.113.0/24", "203.0.113.0/40"} })
		}, "spec.ipAddresses[1]", "each IP address range must be a CIDR"},
		{"address range that is an address", func(ns string) client.Object {
			return egress(ns, func(e *eg) { e.Spec.IPAddresses = []string{"203.0.113.7"} })
		}, "spec.ipAddresses[0]", "each IP address range must be a CIDR"},
		{"address range of an IPv4-mapped IPv6 address", func(ns string) client.Object {
			return egress(ns, func(e *eg) { e.Spec.IPAddresses = []string{"::ffff:203.0.113.0/120"} })
		}, "spec.ipAddresses[0]", "each IP address range must be a CIDR"},
		{"destination port 0", func(ns string) client.Object {
			return egress(ns, func(e *eg) { e.Spec.Ports[0].Number = 0 })
		}, "spec.ports[0].number", "greater than or equal to 1"},
		{"destination port above 65535", func(ns string) client.Object {
			return egress(ns, func(e *eg) { e.Spec.Ports[1].Number = 70000 })
		}, "spec.ports[1].number", "less than or equal to 65535"},
		{"destination protocol udp", func(ns string) client.Object {
			return egress(ns, func(e *eg) { e.Spec.Ports[0].Protocol = "udp" })
		}, "spec.ports[0].protocol", "protocol must be http, https, tcp or tcp-server-first"},
		{"destination protocol grpc, which OSM ignores", func(ns string) client.Object {
			return egress(ns, func(e *eg) { e.Spec.Ports[0].Protocol = "grpc" })
		}, "spec.ports[0].protocol", "protocol must be http, https, tcp or tcp-server-first"},
		{"a destination port twice", func(ns string) client.Object {
			return egress(ns, func(e *eg) { e.Spec.Ports[1].Number = e.Spec.Ports[0].Number })
		}, "spec.ports[1]", "Duplicate value"},
		{"no ports", func(ns string) client.Object {
			return egress(ns, func(e *eg) { e.Spec.Ports = []policyv1alpha1.EgressPort{} })
		}, "spec.ports", "should have at least 1 items"},
		{"no sources", func(ns string) client.Object {
			return egress(ns, func(e *eg) { e.Spec.Sources = nil })
		}, "spec.sources", "Required value"},
		{"source of an unknown kind", func(ns string) client.Object {
			return egress(ns, func(e *eg) { e.Spec.Sources[0].Kind = "Service" })
		}, "spec.sources[0].kind", "Unsupported value"},
		{"source without a namespace", func(ns string) client.Object {
			return egress(ns, func(e *eg) { e.Spec.Sources[0].Namespace = "" })
		}, "spec.sources[0].namespace", "at least 1 chars long"},
		{"source that is no service account name", func(ns string) client.Object {
			return egress(ns, func(e *eg) { e.Spec.Sources[0].Name = "Book Buyer" })
		}, "spec.sources[0].name", "should match"},
		{"host that is a URL", func(ns string) client.Object {
			return egress(ns, func(e *eg) { e.Spec.Hosts = []string{"httpbin.org", "https://httpbin.org"} })
		}, "spec.hosts[1]", "each host must be a DNS name"},
		{"host with a port", func(ns string) client.Object {
			return egress(ns, func(e *eg) { e.Spec.Hosts = []string{"httpbin.org:443"} })
		}, "spec.hosts[0]", "each host must be a DNS name"},
		{"host that is every host", func(ns string) client.Object {
			return egress(ns, func(e *eg) { e.Spec.Hosts = []string{"*"} })
		}, "spec.hosts[0]", "each host must be a DNS name"},
		{"host with a wildcard that is not a whole label", func(ns string) client.Object {
			return egress(ns, func(e *eg) { e.Spec.Hosts = []string{"*example.com"} })
		}, "spec.hosts[0]", "each host must be a DNS name"},
		{"host with an empty label", func(ns string) client.Object {
			return egress(ns, func(e *eg) { e.Spec.Hosts = []string{"httpbin..org"} })
		}, "spec.hosts[0]", "each host must be a DNS name"},
		{"host with a label longer than 63", func(ns string) client.Object {
			return egress(ns, func(e *eg) { e.Spec.Hosts = []string{strings.Repeat("a", 64) + ".example.com"} })
		}, "spec.hosts[0]", "each host must be a DNS name"},
		{"host longer than 253", func(ns string) client.Object {
			return egress(ns, func(e *eg) { e.Spec.Hosts = []string{strings.Repeat("abcdefgh.", 28) + "com"} })
		}, "spec.hosts[0]", "Too long"},
		{"Egress matching a TCPRoute", func(ns string) client.Object {
			return egress(ns, func(e *eg) {
				e.Spec.Matches = []policyv1alpha1.MatchReference{{APIGroup: policyv1alpha1.SMISpecsGroupVersion, Kind: "TCPRoute", Name: "db"}}
			})
		}, "spec.matches[0]", "an Egress matches HTTPRouteGroups"},
		{"Egress matching an UpstreamTrafficSetting of the SMI group", func(ns string) client.Object {
			return egress(ns, func(e *eg) {
				e.Spec.Matches = []policyv1alpha1.MatchReference{{APIGroup: policyv1alpha1.SMISpecsGroupVersion, Kind: "UpstreamTrafficSetting", Name: "limits"}}
			})
		}, "spec.matches[0]", "an Egress matches HTTPRouteGroups"},
		{"two UpstreamTrafficSettings", func(ns string) client.Object {
			return egress(ns, func(e *eg) {
				e.Spec.Matches = []policyv1alpha1.MatchReference{smiRoutes("get"), upstreamSetting("a"), upstreamSetting("b")}
			})
		}, "spec.matches", "an Egress matches at most one UpstreamTrafficSetting"},
		{"match of a name that is no object name", func(ns string) client.Object {
			return egress(ns, func(e *eg) { e.Spec.Matches = []policyv1alpha1.MatchReference{smiRoutes("GET /status")} })
		}, "spec.matches[0].name", "should match"},

		// UpstreamTrafficSetting
		{"no host", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) { u.Spec.Host = "" })
		}, "spec.host", "at least 1 chars long"},
		{"host of one label, which OSM's webhook refused", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) { u.Spec.Host = "httpbin" })
		}, "spec.host", "host must be a fully qualified DNS name"},
		{"setting host that is a URL", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) { u.Spec.Host = "http://httpbin.org" })
		}, "spec.host", "host must be a fully qualified DNS name"},
		{"setting host with a port", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) { u.Spec.Host = "httpbin.httpbin.svc.cluster.local:14001" })
		}, "spec.host", "host must be a fully qualified DNS name"},
		{"negative maxConnections", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) { u.Spec.ConnectionSettings.TCP.MaxConnections = ptr[int64](-1) })
		}, "spec.connectionSettings.tcp.maxConnections", "greater than or equal to 0"},
		{"maxRetries above 2^32 - 1", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) { u.Spec.ConnectionSettings.HTTP.MaxRetries = ptr[int64](1 << 32) })
		}, "spec.connectionSettings.http.maxRetries", "less than or equal to 4294967295"},
		{"connectTimeout that is no duration", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) { u.Spec.ConnectionSettings.TCP.ConnectTimeout = "5 seconds" })
		}, "spec.connectionSettings.tcp.connectTimeout", "should match"},
		{"negative connectTimeout", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) { u.Spec.ConnectionSettings.TCP.ConnectTimeout = "-1s" })
		}, "spec.connectionSettings.tcp.connectTimeout", "should match"},
		{"connectTimeout of zero, which Envoy refuses", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) { u.Spec.ConnectionSettings.TCP.ConnectTimeout = "0s" })
		}, "spec.connectionSettings.tcp.connectTimeout", "connectTimeout must be more than zero"},
		{"rate limit per day", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) { u.Spec.RateLimit.Local.HTTP.Unit = "day" })
		}, "spec.rateLimit.local.http.unit", "Unsupported value"},
		{"rate limit unit in capitals", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) { u.Spec.RateLimit.Local.TCP.Unit = "Minute" })
		}, "spec.rateLimit.local.tcp.unit", "Unsupported value"},
		{"rate limit without a unit, which OSM's controller refused", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) { u.Spec.RateLimit.Local.TCP.Unit = "" })
		}, "spec.rateLimit.local.tcp.unit", "Unsupported value"},
		{"no connections per unit", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) { u.Spec.RateLimit.Local.TCP.Connections = 0 })
		}, "spec.rateLimit.local.tcp.connections", "greater than or equal to 1"},
		{"no requests per unit", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) { u.Spec.RateLimit.Local.HTTP.Requests = 0 })
		}, "spec.rateLimit.local.http.requests", "greater than or equal to 1"},
		{"negative burst", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) { u.Spec.RateLimit.Local.HTTP.Burst = -1 })
		}, "spec.rateLimit.local.http.burst", "greater than or equal to 0"},
		{"responseStatusCode 200", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) { u.Spec.RateLimit.Local.HTTP.ResponseStatusCode = 200 })
		}, "spec.rateLimit.local.http.responseStatusCode", "greater than or equal to 400"},
		{"responseStatusCode 600", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) { u.Spec.RateLimit.Local.HTTP.ResponseStatusCode = 600 })
		}, "spec.rateLimit.local.http.responseStatusCode", "less than or equal to 599"},
		{"responseStatusCode 418, which Envoy does not name and OSM's webhook refused", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) { u.Spec.RateLimit.Local.HTTP.ResponseStatusCode = 418 })
		}, "spec.rateLimit.local.http.responseStatusCode", "responseStatusCode must be an HTTP error status Envoy knows"},
		{"route responseStatusCode 509", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) { u.Spec.HTTPRoutes[0].RateLimit.Local.ResponseStatusCode = 509 })
		}, "spec.httpRoutes[0].rateLimit.local.responseStatusCode", "responseStatusCode must be an HTTP error status Envoy knows"},
		{"response header that is no header name", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) {
				u.Spec.RateLimit.Local.HTTP.ResponseHeadersToAdd = []policyv1alpha1.HTTPHeaderValue{{Name: "x rate limited", Value: "true"}}
			})
		}, "spec.rateLimit.local.http.responseHeadersToAdd[0].name", "should match"},
		{"response header value with a line break", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) {
				u.Spec.RateLimit.Local.HTTP.ResponseHeadersToAdd = []policyv1alpha1.HTTPHeaderValue{{Name: "x-limited", Value: "yes\r\nset-cookie: a=b"}}
			})
		}, "spec.rateLimit.local.http.responseHeadersToAdd[0].value", "should match"},
		{"response header without a value", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) {
				u.Spec.RateLimit.Local.HTTP.ResponseHeadersToAdd = []policyv1alpha1.HTTPHeaderValue{{Name: "x-limited"}}
			})
		}, "spec.rateLimit.local.http.responseHeadersToAdd[0].value", "at least 1 chars long"},
		{"route without a path", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) { u.Spec.HTTPRoutes[0].Path = "" })
		}, "spec.httpRoutes[0].path", "at least 1 chars long"},
		{"a route path twice", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) { u.Spec.HTTPRoutes = append(u.Spec.HTTPRoutes, u.Spec.HTTPRoutes[0]) })
		}, "spec.httpRoutes[1]", "Duplicate value"},
		{"global rate limit without a domain", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) {
				u.Spec.RateLimit.Global = globalRateLimit()
				u.Spec.RateLimit.Global.HTTP.Domain = ""
			})
		}, "spec.rateLimit.global.http.domain", "at least 1 chars long"},
		{"rate limit service on port 0", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) {
				u.Spec.RateLimit.Global = globalRateLimit()
				u.Spec.RateLimit.Global.HTTP.RateLimitService.Port = 0
			})
		}, "spec.rateLimit.global.http.rateLimitService.port", "greater than or equal to 1"},
		{"rate limit service that is a URL", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) {
				u.Spec.RateLimit.Global = globalRateLimit()
				u.Spec.RateLimit.Global.HTTP.RateLimitService.Host = "grpc://ratelimit:8081"
			})
		}, "spec.rateLimit.global.http.rateLimitService.host", "the rate limit service's host must be a DNS name"},
		{"global TCP rate limit without descriptors", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) {
				u.Spec.RateLimit.Global = &policyv1alpha1.GlobalRateLimit{TCP: &policyv1alpha1.TCPGlobalRateLimit{
					RateLimitService: globalRateLimit().HTTP.RateLimitService, Domain: "test",
					Descriptors: []policyv1alpha1.TCPRateLimitDescriptor{},
				}}
			})
		}, "spec.rateLimit.global.tcp.descriptors", "should have at least 1 items"},
		{"global rate limit timeout that is no duration", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) {
				u.Spec.RateLimit.Global = globalRateLimit()
				u.Spec.RateLimit.Global.HTTP.Timeout = "20"
			})
		}, "spec.rateLimit.global.http.timeout", "should match"},
		{"descriptor entry of two kinds", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) {
				u.Spec.RateLimit.Global = globalRateLimit()
				u.Spec.RateLimit.Global.HTTP.Descriptors[0].Entries[0].GenericKey = &policyv1alpha1.GenericKeyDescriptorEntry{Value: "v"}
			})
		}, "spec.rateLimit.global.http.descriptors[0].entries[0]", "a descriptor entry has exactly one of"},
		{"descriptor entry of no kind", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) {
				u.Spec.RateLimit.Global = globalRateLimit()
				u.Spec.RateLimit.Global.HTTP.Descriptors[0].Entries[0] = policyv1alpha1.HTTPRateLimitDescriptorEntry{}
			})
		}, "spec.rateLimit.global.http.descriptors[0].entries[0]", "a descriptor entry has exactly one of"},
		{"header match with an exact value and a prefix", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) {
				u.Spec.RateLimit.Global = globalRateLimit()
				u.Spec.RateLimit.Global.HTTP.Descriptors[0].Entries[0] = policyv1alpha1.HTTPRateLimitDescriptorEntry{
					HeaderValueMatch: &policyv1alpha1.HeaderValueMatchDescriptorEntry{Value: "v",
						Headers: []policyv1alpha1.HTTPHeaderMatcher{{Name: "x-user", Exact: "a", Prefix: "b"}}},
				}
			})
		}, "spec.rateLimit.global.http.descriptors[0].entries[0].headerValueMatch.headers[0]", "a header match has exactly one of"},
		{"route's global descriptor without entries", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) {
				u.Spec.HTTPRoutes[0].RateLimit.Global = &policyv1alpha1.HTTPRouteGlobalRateLimit{
					Descriptors: []policyv1alpha1.HTTPRateLimitDescriptor{{Entries: []policyv1alpha1.HTTPRateLimitDescriptorEntry{}}},
				}
			})
		}, "spec.httpRoutes[0].rateLimit.global.descriptors[0].entries", "should have at least 1 items"},

		// Retry
		{"retry source of an unknown kind", func(ns string) client.Object {
			return retry(ns, func(r *rt) { r.Spec.Source.Kind = "Service" })
		}, "spec.source.kind", "Unsupported value"},
		{"retry source without a namespace", func(ns string) client.Object {
			return retry(ns, func(r *rt) { r.Spec.Source.Namespace = "" })
		}, "spec.source.namespace", "at least 1 chars long"},
		{"destination that is a service account, which OSM's controller ignored", func(ns string) client.Object {
			return retry(ns, func(r *rt) { r.Spec.Destinations[1].Kind = "ServiceAccount" })
		}, "spec.destinations[1].kind", "Unsupported value"},
		{"destination that is no Service name", func(ns string) client.Object {
			return retry(ns, func(r *rt) { r.Spec.Destinations[0].Name = "Book_Store" })
		}, "spec.destinations[0].name", "should match"},
		{"destination without a namespace", func(ns string) client.Object {
			return retry(ns, func(r *rt) { r.Spec.Destinations[0].Namespace = "" })
		}, "spec.destinations[0].namespace", "at least 1 chars long"},
		{"no destinations", func(ns string) client.Object {
			return retry(ns, func(r *rt) { r.Spec.Destinations = []policyv1alpha1.RetryDestination{} })
		}, "spec.destinations", "should have at least 1 items"},
		{"a destination twice", func(ns string) client.Object {
			return retry(ns, func(r *rt) { r.Spec.Destinations[1] = r.Spec.Destinations[0] })
		}, "spec.destinations[1]", "Duplicate value"},
		{"no retryOn", func(ns string) client.Object {
			return retry(ns, func(r *rt) { r.Spec.RetryPolicy.RetryOn = "" })
		}, "spec.retryPolicy.retryOn", "at least 1 chars long"},
		{"retryOn a condition Envoy does not know", func(ns string) client.Object {
			return retry(ns, func(r *rt) { r.Spec.RetryPolicy.RetryOn = "5xx,timeout" })
		}, "spec.retryPolicy.retryOn", "retryOn must be Envoy retry conditions"},
		{"retryOn with a space after the comma, which Envoy would not read", func(ns string) client.Object {
			return retry(ns, func(r *rt) { r.Spec.RetryPolicy.RetryOn = "5xx, reset" })
		}, "spec.retryPolicy.retryOn", "retryOn must be Envoy retry conditions"},
		{"retryOn in capitals", func(ns string) client.Object {
			return retry(ns, func(r *rt) { r.Spec.RetryPolicy.RetryOn = "5XX" })
		}, "spec.retryPolicy.retryOn", "retryOn must be Envoy retry conditions"},
		{"negative numRetries", func(ns string) client.Object {
			return retry(ns, func(r *rt) { r.Spec.RetryPolicy.NumRetries = ptr[int64](-1) })
		}, "spec.retryPolicy.numRetries", "greater than or equal to 0"},
		{"perTryTimeout that is no duration", func(ns string) client.Object {
			return retry(ns, func(r *rt) { r.Spec.RetryPolicy.PerTryTimeout = "3" })
		}, "spec.retryPolicy.perTryTimeout", "should match"},
		{"backoff of zero, which Envoy refuses", func(ns string) client.Object {
			return retry(ns, func(r *rt) { r.Spec.RetryPolicy.RetryBackoffBaseInterval = "0.000s" })
		}, "spec.retryPolicy.retryBackoffBaseInterval", "retryBackoffBaseInterval must be more than zero"},
	}
	testenv.ExpectInvalid(t, c, newNamespace(t), cases)
}

// TestAPIServerAcceptsWhatOSMAccepts: the spellings and forms OSM took,
// which the CRDs must not refuse, and the IPv6 ranges OSM's pattern missed.
func TestAPIServerAcceptsWhatOSMAccepts(t *testing.T) {
	cases := []struct {
		name string
		obj  func(ns string) client.Object
	}{
		{"backend protocols in capitals and mixed case", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) {
				b.Spec.Backends[0].Port.Protocol = "HTTP"
				b.Spec.Backends[1].Port.Protocol = "Https"
			})
		}},
		{"IPRange with host bits set, as Go's ParseCIDR takes it", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Sources[1].Name = "10.1.2.3/16" })
		}},
		{"IPv6 IPRange", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Sources[1].Name = "fd00:10:244::/48" })
		}},
		{"namespace on an IPRange source, which OSM ignored", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Sources[1].Namespace = "ingress-nginx" })
		}},
		{"SPIFFE ID as an AuthenticatedPrincipal", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) {
				b.Spec.Sources[2].Name = "spiffe://cluster.local/ns/ingress-nginx/sa/ingress-nginx"
			})
		}},
		{"https backend without tls", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Backends[1].TLS = nil })
		}},
		{"wildcard SNI host", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) { b.Spec.Backends[1].TLS.SNIHosts = []string{"*.bookstore.example.com"} })
		}},
		{"HTTPRouteGroup match by its group alone", func(ns string) client.Object {
			return ingressBackend(ns, func(b *ib) {
				b.Spec.Matches = []policyv1alpha1.MatchReference{{APIGroup: "specs.smi-spec.io", Kind: "HTTPRouteGroup", Name: "routes"}}
			})
		}},
		{"destination protocols in capitals", func(ns string) client.Object {
			return egress(ns, func(e *eg) {
				e.Spec.Ports = []policyv1alpha1.EgressPort{{Number: 80, Protocol: "HTTP"}, {Number: 3306, Protocol: "TCP-Server-First"}}
			})
		}},
		{"IPv6 and single-address ranges", func(ns string) client.Object {
			return egress(ns, func(e *eg) { e.Spec.IPAddresses = []string{"2001:db8::/32", "198.51.100.7/32"} })
		}},
		{"no hosts and no ranges: every address on a tcp port", func(ns string) client.Object {
			return egress(ns, func(e *eg) {
				e.Spec.Hosts, e.Spec.IPAddresses = nil, nil
				e.Spec.Ports = []policyv1alpha1.EgressPort{{Number: 5432, Protocol: policyv1alpha1.EgressProtocolTCP}}
			})
		}},
		{"hosts in capitals, wildcards and single labels", func(ns string) client.Object {
			return egress(ns, func(e *eg) { e.Spec.Hosts = []string{"HTTPBin.org", "*.googleapis.com", "mirror", "198.51.100.7"} })
		}},
		{"one UpstreamTrafficSetting by its group alone, and HTTPRouteGroups", func(ns string) client.Object {
			return egress(ns, func(e *eg) {
				e.Spec.Matches = []policyv1alpha1.MatchReference{
					smiRoutes("get"), smiRoutes("post"),
					{APIGroup: "policy.openservicemesh.io", Kind: "UpstreamTrafficSetting", Name: "limits"},
				}
			})
		}},
		{"the examples of OSM's guides, every field of the rate limits set", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) { u.Spec.RateLimit.Global = globalRateLimit() })
		}},
		{"an external host, as an Egress matches it", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) { u.Spec.Host = "httpbin.org" })
		}},
		{"limits of 0, which OSM accepted", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) {
				u.Spec.ConnectionSettings.TCP.MaxConnections = ptr[int64](0)
				u.Spec.ConnectionSettings.HTTP = &policyv1alpha1.HTTPConnectionSettings{
					MaxRequests: ptr[int64](0), MaxRequestsPerConnection: ptr[int64](0), MaxPendingRequests: ptr[int64](0), MaxRetries: ptr[int64](0),
				}
			})
		}},
		{"limits of 2^32 - 1, OSM's defaults", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) {
				u.Spec.ConnectionSettings.TCP.MaxConnections = ptr[int64](4294967295)
				u.Spec.RateLimit.Local.HTTP.Requests = 4294967295
			})
		}},
		{"every status code Envoy names from 400 to 599", func(ns string) client.Object {
			return upstreamTrafficSetting(ns, func(u *uts) {
				u.Spec.RateLimit.Local.HTTP.ResponseStatusCode = 431
				u.Spec.HTTPRoutes[0].RateLimit.Local.ResponseStatusCode = 511
			})
		}},
		{"a setting with a host only", func(ns string) client.Object {
			return &policyv1alpha1.UpstreamTrafficSetting{ObjectMeta: metav1.ObjectMeta{Namespace: ns},
				Spec: policyv1alpha1.UpstreamTrafficSettingSpec{Host: "bookstore.bookstore.svc.cluster.local"}}
		}},
		{"retryOn every condition Envoy knows", func(ns string) client.Object {
			return retry(ns, func(r *rt) {
				r.Spec.RetryPolicy.RetryOn = "5xx,gateway-error,reset,reset-before-request,connect-failure,envoy-ratelimited," +
					"retriable-4xx,refused-stream,retriable-status-codes,retriable-headers,http3-post-connect-failure," +
					"cancelled,deadline-exceeded,internal,resource-exhausted,unavailable"
			})
		}},
		{"a retry policy with retryOn only, Envoy's defaults for the rest", func(ns string) client.Object {
			return retry(ns, func(r *rt) { r.Spec.RetryPolicy = policyv1alpha1.RetryPolicySpec{RetryOn: "connect-failure"} })
		}},
		{"no retries, and fractional durations", func(ns string) client.Object {
			return retry(ns, func(r *rt) {
				r.Spec.RetryPolicy.NumRetries = ptr[int64](0)
				r.Spec.RetryPolicy.PerTryTimeout = "1.5s"
				r.Spec.RetryPolicy.RetryBackoffBaseInterval = "0.5ms"
			})
		}},
	}
	ns := newNamespace(t)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := tc.obj(ns)
			obj.SetName(fmt.Sprintf("accepted-%d", i))
			if err := c.Create(context.Background(), obj, client.DryRunAll); err != nil {
				t.Fatalf("the API server refused it: %v", err)
			}
		})
	}
}
