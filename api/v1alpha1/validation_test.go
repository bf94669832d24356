package v1alpha1_test

import (
	"context"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// invalidCase is an object the API server must refuse (testenv.Invalid).
type invalidCase testenv.Invalid

// TestAPIServerRejectsInvalidObjects sends each invalid object to the real API
// server and checks that it is refused with an error naming the offending field.
func TestAPIServerRejectsInvalidObjects(t *testing.T) {
	type mi = meshv1alpha1.MeshInstance
	type mm = meshv1alpha1.MeshMember
	type vm = meshv1alpha1.MeshVM
	cases := []invalidCase{
		{"mesh name is not a DNS label", func(string) client.Object {
			return meshInstance("mesh.with.dots")
		}, "metadata.name", "must be a DNS label"},
		{"trust domain is not a DNS name", func(string) client.Object {
			return meshInstance("bad-td", func(m *mi) { m.Spec.TrustDomain = "Cluster_Local" })
		}, "spec.trustDomain", "DNS name"},
		{"unknown traffic policy mode", func(string) client.Object {
			return meshInstance("bad-mode", func(m *mi) { m.Spec.TrafficPolicy.Mode = "Open" })
		}, "spec.trafficPolicy.mode", "Unsupported value"},
		{"unknown egress mode", func(string) client.Object {
			return meshInstance("bad-egress", func(m *mi) { m.Spec.Egress.Mode = "Sometimes" })
		}, "spec.egress.mode", "Unsupported value"},
		{"cert-manager.io has no issuer kind VaultIssuer", func(string) client.Object {
			return meshInstance("bad-issuer-kind", func(m *mi) {
				m.Spec.Certificates.IssuerRef = &meshv1alpha1.IssuerReference{Name: "vault", Kind: "VaultIssuer", Group: "cert-manager.io"}
			})
		}, "spec.certificates.issuerRef.kind", "cert-manager.io's issuer kinds are ClusterIssuer and Issuer"},
		{"issuer kind is not a Kind name", func(string) client.Object {
			return meshInstance("garbage-issuer-kind", func(m *mi) {
				m.Spec.Certificates.IssuerRef = &meshv1alpha1.IssuerReference{Name: "pca", Kind: "clusterissuers/../secrets", Group: "awspca.cert-manager.io"}
			})
		}, "spec.certificates.issuerRef.kind", "should match"},
		{"issuer group is not a DNS name", func(string) client.Object {
			return meshInstance("garbage-issuer-group", func(m *mi) {
				m.Spec.Certificates.IssuerRef = &meshv1alpha1.IssuerReference{Name: "pca", Kind: "AWSPCAClusterIssuer", Group: "AWSPCA..cert-manager.io/v1"}
			})
		}, "spec.certificates.issuerRef.group", "should match"},
		{"ingress gateway Secret is a workload identity's", func(string) client.Object {
			return meshInstance("ingress-identity-secret", func(m *mi) {
				m.Spec.Certificates.IngressGateway = &meshv1alpha1.IngressGatewayCertificate{
					SubjectAltNames: []string{"ingress-nginx.ingress-nginx.cluster.local"},
					Secret:          meshv1alpha1.SecretReference{Name: "osm-identity-bookstore", Namespace: "bookstore"},
				}
			})
		}, "spec.certificates.ingressGateway.secret.name", "workload identity Secrets"},
		{"ingress gateway name is a wildcard", func(string) client.Object {
			return meshInstance("ingress-wildcard", func(m *mi) {
				m.Spec.Certificates.IngressGateway = &meshv1alpha1.IngressGatewayCertificate{
					SubjectAltNames: []string{"*.ingress-nginx.cluster.local"},
					Secret:          meshv1alpha1.SecretReference{Name: "ingress-client", Namespace: "ingress-nginx"},
				}
			})
		}, "spec.certificates.ingressGateway.subjectAltNames[0]", "should match"},
		{"ingress gateway without names", func(string) client.Object {
			return meshInstance("ingress-no-names", func(m *mi) {
				m.Spec.Certificates.IngressGateway = &meshv1alpha1.IngressGatewayCertificate{
					Secret: meshv1alpha1.SecretReference{Name: "ingress-client", Namespace: "ingress-nginx"},
				}
			})
		}, "spec.certificates.ingressGateway.subjectAltNames", "Required value"},
		{"ingress gateway lifetime is no duration", func(string) client.Object {
			return meshInstance("ingress-lifetime", func(m *mi) {
				m.Spec.Certificates.IngressGateway = &meshv1alpha1.IngressGatewayCertificate{
					SubjectAltNames:  []string{"ingress-nginx.ingress-nginx.cluster.local"},
					ValidityDuration: "a day",
					Secret:           meshv1alpha1.SecretReference{Name: "ingress-client", Namespace: "ingress-nginx"},
				}
			})
		}, "spec.certificates.ingressGateway.validityDuration", "should match"},
		{"trust bundle that is not PEM certificates", func(string) client.Object {
			return meshInstance("bad-trust-bundle", func(m *mi) {
				m.Spec.Certificates.TrustBundle = &meshv1alpha1.TrustBundleSource{PEM: "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"}
			})
		}, "spec.certificates.trustBundle.pem", "PEM-encoded CA certificates"},
		{"trust bundle too large", func(string) client.Object {
			return meshInstance("huge-trust-bundle", func(m *mi) {
				m.Spec.Certificates.TrustBundle = &meshv1alpha1.TrustBundleSource{PEM: "-----BEGIN CERTIFICATE-----" + strings.Repeat("A", 70000)}
			})
		}, "spec.certificates.trustBundle.pem", "Too long"},
		{"issuer without a name", func(string) client.Object {
			return meshInstance("bad-issuer-name", func(m *mi) {
				m.Spec.Certificates.IssuerRef = &meshv1alpha1.IssuerReference{Kind: "ClusterIssuer"}
			})
		}, "spec.certificates.issuerRef.name", "at least 1 chars long"},
		{"duration is not a duration", func(string) client.Object {
			return meshInstance("bad-duration", func(m *mi) { m.Spec.Certificates.Duration = "forever" })
		}, "spec.certificates.duration", "should match"},
		{"renewBefore not shorter than duration", func(string) client.Object {
			return meshInstance("bad-renew", func(m *mi) {
				m.Spec.Certificates.Duration = "24h"
				m.Spec.Certificates.RenewBefore = "48h"
			})
		}, "spec.certificates.renewBefore", "renewBefore must be shorter than duration"},
		{"rotation settle is not a duration", func(string) client.Object {
			return meshInstance("bad-settle", func(m *mi) { m.Spec.Certificates.Rotation.Settle = "soon" })
		}, "spec.certificates.rotation.settle", "should match"},
		{"rotation rate below one", func(string) client.Object {
			return meshInstance("bad-rate-low", func(m *mi) { m.Spec.Certificates.Rotation.ReissuePerSecond = -1 })
		}, "spec.certificates.rotation.reissuePerSecond", "greater than or equal to 1"},
		{"rotation rate past the bound", func(string) client.Object {
			return meshInstance("bad-rate-high", func(m *mi) { m.Spec.Certificates.Rotation.ReissuePerSecond = 20000 })
		}, "spec.certificates.rotation.reissuePerSecond", "less than or equal to 10000"},
		{"negative root generation", func(string) client.Object {
			return meshInstance("bad-generation", func(m *mi) { m.Spec.Certificates.RootGeneration = -1 })
		}, "spec.certificates.rootGeneration", "greater than or equal to 0"},
		{"RSA key too small", func(string) client.Object {
			return meshInstance("bad-rsa", func(m *mi) {
				m.Spec.Certificates.PrivateKey = meshv1alpha1.PrivateKey{Algorithm: meshv1alpha1.RSAKeyAlgorithm, Size: 1024}
			})
		}, "spec.certificates.privateKey.size", "RSA key size"},
		{"ECDSA key of an RSA size", func(string) client.Object {
			return meshInstance("bad-ecdsa", func(m *mi) {
				m.Spec.Certificates.PrivateKey = meshv1alpha1.PrivateKey{Algorithm: meshv1alpha1.ECDSAKeyAlgorithm, Size: 2048}
			})
		}, "spec.certificates.privateKey.size", "ECDSA key size"},
		{"unknown proxy log level", func(string) client.Object {
			return meshInstance("bad-log", func(m *mi) { m.Spec.Sidecar.LogLevel = "loud" })
		}, "spec.sidecar.logLevel", "Unsupported value"},
		{"excluded port out of range", func(string) client.Object {
			return meshInstance("bad-port", func(m *mi) { m.Spec.Sidecar.ExcludeOutboundPorts = []int32{443, 70000} })
		}, "spec.sidecar.excludeOutboundPorts[1]", "less than or equal to 65535"},
		{"excluded IP range is not a CIDR", func(string) client.Object {
			return meshInstance("bad-cidr", func(m *mi) { m.Spec.Sidecar.ExcludeOutboundIPRanges = []string{"10.0.0.0/33"} })
		}, "spec.sidecar.excludeOutboundIPRanges[0]", "must be a CIDR"},
		{"xDS port out of range", func(string) client.Object {
			return meshInstance("bad-xds", func(m *mi) { m.Spec.XDS.Port = 70000 })
		}, "spec.xds.port", "less than or equal to 65535"},
		{"member of a mesh that is not a DNS label", func(ns string) client.Object {
			return meshMember(ns, func(m *mm) { m.Spec.Mesh = "Mesh_1" })
		}, "spec.mesh", "should match"},
		{"member without a mesh", func(ns string) client.Object {
			return meshMember(ns, func(m *mm) { m.Spec.Mesh = "" })
		}, "spec.mesh", "at least 1 chars long"},
		{"unknown injection mode", func(ns string) client.Object {
			return meshMember(ns, func(m *mm) { m.Spec.Injection = "Sometimes" })
		}, "spec.injection", "Unsupported value"},
		{"outbound service is not <namespace>/<service>", func(ns string) client.Object {
			return meshMember(ns, func(m *mm) { m.Spec.Outbound.Services = []string{"./*", "shop"} })
		}, "spec.outbound.services[1]", "should match"},
		{"outbound service names a path", func(ns string) client.Object {
			return meshMember(ns, func(m *mm) { m.Spec.Outbound.Services = []string{"shop/cart/../x"} })
		}, "spec.outbound.services[0]", "should match"},
		{"outbound service twice", func(ns string) client.Object {
			return meshMember(ns, func(m *mm) { m.Spec.Outbound.Services = []string{"./*", "./*"} })
		}, "spec.outbound.services[1]", "Duplicate value"},
		{"VM address is not an IP", func(ns string) client.Object {
			return meshVM(ns, func(m *vm) { m.Spec.Addresses = []string{"192.0.2.1", "warehouse.example"} })
		}, "spec.addresses[1]", "IPv4 or IPv6 address"},
		{"VM address is loopback", func(ns string) client.Object {
			return meshVM(ns, func(m *vm) { m.Spec.Addresses = []string{"192.0.2.1", "127.0.0.1"} })
		}, "spec.addresses[1]", "each address must name one host"},
		{"VM address is the cloud metadata address", func(ns string) client.Object {
			return meshVM(ns, func(m *vm) { m.Spec.Addresses = []string{"169.254.169.254"} })
		}, "spec.addresses[0]", "each address must name one host"},
		{"VM address is multicast", func(ns string) client.Object {
			return meshVM(ns, func(m *vm) { m.Spec.Addresses = []string{"ff02::1"} })
		}, "spec.addresses[0]", "each address must name one host"},
		{"VM without addresses", func(ns string) client.Object {
			return meshVM(ns, func(m *vm) { m.Spec.Addresses = []string{} })
		}, "spec.addresses", "should have at least 1 items"},
		{"VM port zero", func(ns string) client.Object {
			return meshVM(ns, func(m *vm) { m.Spec.Ports[0].Port = 0 })
		}, "spec.ports[0].port", "greater than or equal to 1"},
		{"VM port numbers repeat", func(ns string) client.Object {
			return meshVM(ns, func(m *vm) { m.Spec.Ports[1].Port = m.Spec.Ports[0].Port })
		}, "spec.ports", "port numbers must be unique"},
		{"VM port names repeat", func(ns string) client.Object {
			return meshVM(ns, func(m *vm) { m.Spec.Ports[1].Name = m.Spec.Ports[0].Name })
		}, "spec.ports[1]", "Duplicate value"},
		{"unknown VM port protocol", func(ns string) client.Object {
			return meshVM(ns, func(m *vm) { m.Spec.Ports[0].Protocol = "SCTP" })
		}, "spec.ports[0].protocol", "Unsupported value"},
		{"VM service account is not a DNS name", func(ns string) client.Object {
			return meshVM(ns, func(m *vm) { m.Spec.ServiceAccountName = "Book Warehouse" })
		}, "spec.serviceAccountName", "should match"},
		{"VM backs a Service of an invalid name", func(ns string) client.Object {
			return meshVM(ns, func(m *vm) { m.Spec.Services = []string{"warehouse", "Ware_House"} })
		}, "spec.services[1]", "should match"},
		{"resilience policy targets a Deployment", func(ns string) client.Object {
			return resiliencePolicy(ns, func(r *rp) { r.Spec.TargetRefs[0].Group, r.Spec.TargetRefs[0].Kind = "apps", "Deployment" })
		}, "spec.targetRefs", "a ResiliencePolicy targets Services"},
		{"resilience policy targets nothing", func(ns string) client.Object {
			return resiliencePolicy(ns, func(r *rp) { r.Spec.TargetRefs = nil })
		}, "spec", "a ResiliencePolicy targets Services, or injects a fault for the route rules that name it"},
		{"resilience duration is not a duration", func(ns string) client.Object {
			return resiliencePolicy(ns, func(r *rp) { r.Spec.Connections = &meshv1alpha1.ConnectionLimits{ConnectTimeout: "two seconds"} })
		}, "spec.connections.connectTimeout", "should match"},
		{"max connections is zero", func(ns string) client.Object {
			return resiliencePolicy(ns, func(r *rp) { r.Spec.Connections = &meshv1alpha1.ConnectionLimits{MaxConnections: ptr.To(int32(0))} })
		}, "spec.connections.maxConnections", "greater than or equal to 1"},
		{"outlier ejection percent over 100", func(ns string) client.Object {
			return resiliencePolicy(ns, func(r *rp) {
				r.Spec.OutlierDetection = &meshv1alpha1.OutlierDetection{MaxEjectionPercent: ptr.To(int32(150))}
			})
		}, "spec.outlierDetection.maxEjectionPercent", "less than or equal to 100"},
		{"ring hash without a header", func(ns string) client.Object {
			return resiliencePolicy(ns, func(r *rp) {
				r.Spec.LoadBalancer = &meshv1alpha1.LoadBalancer{Algorithm: meshv1alpha1.LoadBalancerRingHash}
			})
		}, "spec.loadBalancer", "hashHeader is set exactly when the algorithm is RingHash"},
		{"unknown load balancing algorithm", func(ns string) client.Object {
			return resiliencePolicy(ns, func(r *rp) { r.Spec.LoadBalancer = &meshv1alpha1.LoadBalancer{Algorithm: "Maglev"} })
		}, "spec.loadBalancer.algorithm", "Unsupported value"},
		{"fault abort with both statuses", func(ns string) client.Object {
			return resiliencePolicy(ns, func(r *rp) {
				r.Spec.Fault = &meshv1alpha1.Fault{Abort: &meshv1alpha1.FaultAbort{HTTPStatus: ptr.To(int32(503)), GRPCStatus: ptr.To(int32(14)), Percent: 5}}
			})
		}, "spec.fault.abort", "an abort has an httpStatus or a grpcStatus"},
		{"fault with neither delay nor abort", func(ns string) client.Object {
			return resiliencePolicy(ns, func(r *rp) { r.Spec.Fault = &meshv1alpha1.Fault{} })
		}, "spec.fault", "a fault has a delay, an abort or both"},
		{"fault HTTP status out of range", func(ns string) client.Object {
			return resiliencePolicy(ns, func(r *rp) {
				r.Spec.Fault = &meshv1alpha1.Fault{Abort: &meshv1alpha1.FaultAbort{HTTPStatus: ptr.To(int32(999)), Percent: 5}}
			})
		}, "spec.fault.abort.httpStatus", "less than or equal to 599"},
		{"fault percent over 100", func(ns string) client.Object {
			return resiliencePolicy(ns, func(r *rp) {
				r.Spec.Fault = &meshv1alpha1.Fault{Delay: &meshv1alpha1.FaultDelay{FixedDelay: "1s", Percent: 101}}
			})
		}, "spec.fault.delay.percent", "less than or equal to 100"},
		{"rate limit of no tokens", func(ns string) client.Object {
			return resiliencePolicy(ns, func(r *rp) {
				r.Spec.RateLimit = &meshv1alpha1.RateLimit{Requests: &meshv1alpha1.RateLimitBucket{Tokens: 0}}
			})
		}, "spec.rateLimit.requests.tokens", "greater than or equal to 1"},
		{"mesh-wide faults", func(string) client.Object {
			return meshInstance("mesh-faults", func(m *mi) {
				m.Spec.Resilience = &meshv1alpha1.Resilience{Fault: &meshv1alpha1.Fault{Delay: &meshv1alpha1.FaultDelay{FixedDelay: "1s", Percent: 1}}}
			})
		}, "spec.resilience", "fault injection is set on a ResiliencePolicy, never mesh-wide"},
		// Observability: modes and propagation take their values only,
		// sampling is a percentage of at most two decimals, the collector
		// is a Service's name, namespace and port, and a mesh that traces
		// names its collector (a MeshMember may not: it takes the mesh's).
		{"unknown access log mode", func(string) client.Object {
			return meshInstance("bad-log-mode", func(m *mi) { m.Spec.Observability.AccessLog = &meshv1alpha1.AccessLog{Mode: "Text"} })
		}, "spec.observability.accessLog.mode", "Unsupported value"},
		{"unknown tracing mode", func(string) client.Object {
			return meshInstance("bad-trace-mode", withTracing(meshv1alpha1.Tracing{Mode: "Zipkin", Collector: validCollector}))
		}, "spec.observability.tracing.mode", "Unsupported value"},
		{"tracing without a collector", func(string) client.Object {
			return meshInstance("no-collector", withTracing(meshv1alpha1.Tracing{Mode: meshv1alpha1.TracingOpenTelemetry}))
		}, "spec.observability.tracing", "tracing.mode OpenTelemetry needs tracing.collector"},
		{"sampling over 100", func(string) client.Object {
			return meshInstance("sampling-high", withTracing(meshv1alpha1.Tracing{SamplingPercent: "100.5"}))
		}, "spec.observability.tracing.samplingPercent", "should match"},
		{"sampling with three decimals", func(string) client.Object {
			return meshInstance("sampling-fine", withTracing(meshv1alpha1.Tracing{SamplingPercent: "0.001"}))
		}, "spec.observability.tracing.samplingPercent", "should match"},
		{"sampling that is no number", func(string) client.Object {
			return meshInstance("sampling-word", withTracing(meshv1alpha1.Tracing{SamplingPercent: "half"}))
		}, "spec.observability.tracing.samplingPercent", "should match"},
		{"B3 propagation", func(string) client.Object {
			return meshInstance("b3", withTracing(meshv1alpha1.Tracing{Propagation: "B3"}))
		}, "spec.observability.tracing.propagation", "Unsupported value"},
		{"collector name is not a Service name", func(string) client.Object {
			return meshInstance("bad-collector", withTracing(meshv1alpha1.Tracing{Collector: &meshv1alpha1.TraceCollector{Name: "Otel_Collector", Namespace: "observability"}}))
		}, "spec.observability.tracing.collector.name", "should match"},
		{"collector without a namespace", func(string) client.Object {
			return meshInstance("collector-namespace", withTracing(meshv1alpha1.Tracing{Collector: &meshv1alpha1.TraceCollector{Name: "otel"}}))
		}, "spec.observability.tracing.collector.namespace", "at least 1 chars long"},
		{"collector port out of range", func(string) client.Object {
			return meshInstance("collector-port", withTracing(meshv1alpha1.Tracing{Collector: &meshv1alpha1.TraceCollector{Name: "otel", Namespace: "observability", Port: 70000}}))
		}, "spec.observability.tracing.collector.port", "less than or equal to 65535"},
		{"member sampling over 100", func(ns string) client.Object {
			return meshMember(ns, func(m *mm) {
				m.Spec.Observability.Tracing = &meshv1alpha1.Tracing{SamplingPercent: "250"}
			})
		}, "spec.observability.tracing.samplingPercent", "should match"},
		{"unknown member access log mode", func(ns string) client.Object {
			return meshMember(ns, func(m *mm) { m.Spec.Observability.AccessLog = &meshv1alpha1.AccessLog{Mode: "On"} })
		}, "spec.observability.accessLog.mode", "Unsupported value"},
	}
	testenv.ExpectInvalid(t, env.Client, newNamespace(t), cases)
}

// withTracing sets a MeshInstance's spec.observability.tracing.
func withTracing(tr meshv1alpha1.Tracing) func(*meshv1alpha1.MeshInstance) {
	return func(m *meshv1alpha1.MeshInstance) { m.Spec.Observability.Tracing = &tr }
}

// validCollector is a valid trace collector.
var validCollector = &meshv1alpha1.TraceCollector{Name: "otel", Namespace: "observability"}

type rp = meshv1alpha1.ResiliencePolicy

// resiliencePolicy is a valid ResiliencePolicy of Service api in ns, as
// mutate changes it.
func resiliencePolicy(ns string, mutate func(*rp)) *rp {
	r := &rp{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: ns}, Spec: meshv1alpha1.ResiliencePolicySpec{
		TargetRefs: []gwv1.LocalPolicyTargetReferenceWithSectionName{{LocalPolicyTargetReference: gwv1.LocalPolicyTargetReference{Group: "", Kind: "Service", Name: "api"}}},
	}}
	mutate(r)
	return r
}

// TestAPIServerRejectsChangesToImmutableFields changes fields whose change
// would orphan state (certificates, labels, EndpointSlices).
func TestAPIServerRejectsChangesToImmutableFields(t *testing.T) {
	ns := newNamespace(t)
	cases := []struct {
		name   string
		obj    client.Object
		change func(client.Object)
		field  string
	}{
		{"MeshMember mesh", meshMember(ns), func(o client.Object) {
			o.(*meshv1alpha1.MeshMember).Spec.Mesh = "other"
		}, "spec.mesh"},
		{"MeshVM mesh", meshVM(ns), func(o client.Object) {
			o.(*meshv1alpha1.MeshVM).Spec.Mesh = "other"
		}, "spec.mesh"},
		{"MeshVM service account", meshVM(ns, func(m *meshv1alpha1.MeshVM) { m.Name = "vm2" }), func(o client.Object) {
			o.(*meshv1alpha1.MeshVM).Spec.ServiceAccountName = "somebody-else"
		}, "spec.serviceAccountName"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			create(t, tc.obj)
			tc.change(tc.obj)
			err := env.Client.Update(context.Background(), tc.obj)
			if err == nil {
				t.Fatalf("the API server accepted a change of %s", tc.field)
			}
			testenv.AssertInvalid(t, err, tc.field, "is immutable")
		})
	}
}
