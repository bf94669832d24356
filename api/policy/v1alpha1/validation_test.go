package v1alpha1_test

import (
	"context"
	"fmt"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
)

type ib = policyv1alpha1.IngressBackend
type eg = policyv1alpha1.Egress

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
