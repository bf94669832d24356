// Package mesh holds the mesh model: plain Go structs, built from Kubernetes
// and SMI objects by a pure function, that say which services exist, where their
// endpoints are, which identities run them and who may call whom. Translation
// to Envoy reads only this model.
package mesh

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// Mode is how traffic between members is authorized.
type Mode string

const (
	// ModeSMI denies what no TrafficTarget allows.
	ModeSMI Mode = "SMI"
	// ModePermissive allows all traffic between members.
	ModePermissive Mode = "Permissive"
)

// Protocol is the application protocol of a service port.
type Protocol string

const (
	ProtocolHTTP  Protocol = "http"
	ProtocolHTTP2 Protocol = "http2"
	ProtocolGRPC  Protocol = "grpc"
	ProtocolTCP   Protocol = "tcp"
)

// IsHTTP says whether traffic of the protocol is routed by an HTTP connection manager.
func (p Protocol) IsHTTP() bool { return p != ProtocolTCP }

// Identity is a workload identity: a service account in a namespace.
type Identity struct {
	Namespace      string
	ServiceAccount string
}

func (i Identity) String() string { return i.Namespace + "/" + i.ServiceAccount }

// SPIFFE is the identity's SPIFFE ID in the given trust domain.
func (i Identity) SPIFFE(trustDomain string) string {
	return fmt.Sprintf("spiffe://%s/ns/%s/sa/%s", trustDomain, i.Namespace, i.ServiceAccount)
}

func compareIdentity(a, b Identity) int {
	return strings.Compare(a.String(), b.String())
}

// ProxyKind is the kind of xDS client of a workload.
type ProxyKind string

const (
	// ProxyEnvoy is an Envoy proxy: a pod's sidecar or a VM's Envoy.
	ProxyEnvoy ProxyKind = "envoy"
	// ProxyGRPC is a proxyless gRPC application speaking xDS itself.
	ProxyGRPC ProxyKind = "grpc"
)

// Group is a proxy group: every proxy of one identity and kind gets the same
// configuration, so the snapshot cache holds one snapshot per group.
type Group struct {
	Kind     ProxyKind
	Identity Identity
}

// String is the group's snapshot cache key.
func (g Group) String() string { return string(g.Kind) + "/" + g.Identity.String() }

// GroupNamespace is the namespace of a group's key (Group.String),
// "<kind>/<namespace>/<service account>".
func GroupNamespace(key string) string {
	_, rest, _ := strings.Cut(key, "/")
	ns, _, _ := strings.Cut(rest, "/")
	return ns
}

// ServiceKey names a Service.
type ServiceKey struct {
	Namespace, Name string
}

func (k ServiceKey) String() string { return k.Namespace + "/" + k.Name }

// compareServiceKey orders keys as their Strings, "namespace/name", sort,
// without making them: the model looks services up by key all the time.
func compareServiceKey(a, b ServiceKey) int {
	if a.Namespace == b.Namespace {
		return strings.Compare(a.Name, b.Name)
	}
	n := min(len(a.Namespace), len(b.Namespace))
	if c := strings.Compare(a.Namespace[:n], b.Namespace[:n]); c != 0 {
		return c
	}
	// One namespace is a prefix of the other: its "/" meets the other's
	// next character (a namespace holds no "/").
	if len(a.Namespace) == n {
		return cmp.Compare(byte('/'), b.Namespace[n])
	}
	return cmp.Compare(a.Namespace[n], byte('/'))
}

// Mesh is the model of one mesh.
type Mesh struct {
	Name        string
	TrustDomain string
	// ClusterDomain is the cluster's DNS domain (Inputs.ClusterDomain, or
	// DefaultClusterDomain), of its Services' names (FQDN).
	ClusterDomain string
	Mode          Mode
	// EgressAllowed passes traffic to non-mesh destinations through.
	EgressAllowed bool
	// IPv6 says that the cluster has IPv6: some Service or pod of the mesh
	// has an IPv6 address (a MeshVM's says nothing of the pods). View.IPv6
	// says what the proxies do with it.
	IPv6 bool
	// Services of member namespaces, sorted by key.
	Services []*Service
	// Policies are the SMI TrafficTargets, resolved, sorted by namespace/name.
	Policies []*Policy
	// Splits are the SMI TrafficSplits, keyed by root service.
	Splits map[ServiceKey]*Split
	// Groups are the proxy groups with at least one member workload, sorted.
	Groups []Group
	// IngressBackends are the OSM IngressBackends, resolved, sorted by
	// namespace/name.
	IngressBackends []*IngressBackend
	// Routes are the route tables of the Gateway API routes attached to the
	// mesh's Services (routes.go), and RouteStatuses what the mesh makes of
	// each parentRef naming a Service, sorted by route.
	Routes        map[RouteTableKey]*RouteTable
	RouteStatuses []RouteParentStatus
	// ResilienceStatuses are what the mesh makes of each targetRef of the
	// ResiliencePolicies of its namespaces (resilience.go), sorted.
	ResilienceStatuses []PolicyAncestorStatus

	// members are the member namespaces.
	members map[string]bool

	// spec and memberInbound (by namespace) are what the mesh and its
	// MeshMembers say of plaintext from outside the mesh.
	spec          meshv1alpha1.MeshInstanceSpec
	memberInbound map[string]meshv1alpha1.MemberInbound
	// meshObservability and observability (by member namespace) are what
	// the mesh and its MeshMembers have the proxies report.
	meshObservability Observability
	observability     map[string]Observability
	// outbound are, by member namespace, the services its MeshMembers
	// say its proxies call (spec.outbound.services); a namespace without
	// an entry calls every service.
	outbound map[string][]ServicePattern
	// scoped are, in a Permissive mesh, the services those patterns name,
	// by namespace: matched once per model, not once per group.
	scoped map[string]map[ServiceKey]bool

	// Indexes built with the model, so that a view costs what it holds.
	byIdentity   map[Identity][]*Service // services each identity backs
	destinations map[Identity][]Identity // identities each identity may call
	policiesTo   map[Identity][]*Policy  // policies by destination
	// egress are what each identity may reach outside the mesh (Egress).
	egress map[Identity][]EgressPort
	// ingressTargets are, for each identity an IngressBackend names as a
	// source, the backends it calls by endpoint address (ingresssources.go).
	ingressTargets map[Identity][]IngressSourceTarget
	// routeConsumers are the namespaces with consumer routes of each
	// service port (keyed with Consumer "").
	routeConsumers map[RouteTableKey][]string
	// faultyPorts are the service ports a route rule injects a fault on.
	faultyPorts map[PortKey]bool
	// resilience are the service ports' resilience where a policy sets it;
	// the others have the mesh's defaults.
	resilience map[PortKey]*meshv1alpha1.Resilience
	// retries are how each identity retries its requests to each Service,
	// where a Retry says (retry.go).
	retries map[Identity]map[ServiceKey]*policyv1alpha1.RetryPolicy
}

// Service is a Kubernetes Service of a member namespace.
type Service struct {
	Key ServiceKey
	// ClusterIPs are the service's virtual IPs; empty for a headless service.
	ClusterIPs []string
	Ports      []Port
	// Endpoints are the service's endpoints, sorted by address.
	Endpoints []Endpoint
	// Identities run the service's endpoints, sorted.
	Identities []Identity
	// PeerIdentities are those a caller accepts, in mutual TLS, from the
	// service's endpoints, sorted: the identities of its endpoints with a
	// proxy. An endpoint without one presents no certificate, so its
	// identity (often a namespace's default service account) widens
	// nobody's trust. A service with no endpoint with a proxy has all its
	// Identities here: the mutual TLS no endpoint then gets still names
	// whom it would accept.
	PeerIdentities []Identity
}

// Headless says whether clients reach endpoints directly, without a virtual IP.
func (s *Service) Headless() bool { return len(s.ClusterIPs) == 0 }

// FQDN is the cluster DNS name of the service k.
func (m *Mesh) FQDN(k ServiceKey) string {
	return k.Name + "." + k.Namespace + ".svc." + m.ClusterDomain
}

// Port is a port of a service.
type Port struct {
	Name     string
	Port     int32
	Protocol Protocol
}

// Endpoint is one address backing a service, with its port numbers by
// service port name.
type Endpoint struct {
	Address string
	// Ports maps a service port name to the endpoint's port number.
	Ports       map[string]int32
	Ready       bool
	Serving     bool
	Terminating bool
	Identity    Identity
	// Zone is the endpoint's topology zone, when known.
	Zone string
	// Workload names the pod or MeshVM behind the endpoint, as "Pod/ns/name".
	Workload string
	// NoProxy says that no proxy runs beside the endpoint (a pod HasProxy
	// says has none: created before its namespace joined, or opted out), so
	// it cannot speak mutual TLS: callers reach it in plaintext, and no
	// mesh proxy authorizes what reaches it, whatever the SMI policy says.
	// The zero value is a meshed endpoint: what the model does not mark is
	// reached with mutual TLS.
	NoProxy bool
}

// Policy is an SMI TrafficTarget: sources may reach the destination over rules.
type Policy struct {
	Namespace, Name string
	Destination     Identity
	Sources         []Identity
	// HTTP lists the HTTP requests allowed; empty with TCP empty allows all.
	HTTP []HTTPMatch
	// TCPPorts lists the destination ports allowed for TCP; nil means all ports
	// when the policy names a TCPRoute without ports.
	TCPPorts []int32
	// AllowAllTCP is true when a TCPRoute rule matches every port.
	AllowAllTCP bool
}

// HTTPMatch is one match of an HTTPRouteGroup.
type HTTPMatch struct {
	Name      string
	PathRegex string
	// Methods allowed; empty or "*" means any.
	Methods []string
	// Headers maps a header name to a regex its value must match.
	Headers map[string]string
}

// Split is an SMI TrafficSplit of a root service among backends.
type Split struct {
	Namespace, Name string
	Root            ServiceKey
	Backends        []Backend
	// Ports are the root's ports the split routes, sorted: those every
	// backend serves (SplitPorts). The root's other ports keep its traffic.
	Ports []int32
}

// Routes says whether the split routes the root's port.
func (sp *Split) Routes(port int32) bool {
	_, ok := slices.BinarySearch(sp.Ports, port)
	return ok
}

// Backend is a weighted backend service of a split.
type Backend struct {
	Service ServiceKey
	Weight  uint32
}

// Callers are the identities a policy lets call id (its sources), whether
// or not id backs a service yet: the groups a destination's first
// endpoints must reach.
func (m *Mesh) Callers(id Identity) []Identity {
	var out []Identity
	for _, p := range m.policiesTo[id] {
		out = append(out, p.Sources...)
	}
	return out
}

// ServicesOf are the services whose endpoints run as id, sorted.
func (m *Mesh) ServicesOf(id Identity) []*Service { return m.byIdentity[id] }

// Member says whether namespace is a member of the mesh.
func (m *Mesh) Member(namespace string) bool { return m.members[namespace] }

// Service returns the service with the key, or nil.
func (m *Mesh) Service(k ServiceKey) *Service {
	i, ok := slices.BinarySearchFunc(m.Services, k, func(s *Service, k ServiceKey) int {
		return compareServiceKey(s.Key, k)
	})
	if !ok {
		return nil
	}
	return m.Services[i]
}
