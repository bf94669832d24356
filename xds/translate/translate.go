// Package translate turns the mesh model into Envoy v3 resources for one proxy
// group. Every function here is pure: the same view gives the same resources,
// in the same order, and every resource passes Envoy's own validation rules
// before it is returned.
package translate

import (
	"errors"
	"fmt"
	"strconv"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/open-service-mesh/osm-operator/xds/envoyrules"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// Names of resources every group shares.
const (
	OutboundListener   = "outbound"
	InboundListener    = "inbound"
	PrometheusListener = "prometheus"
	PassthroughCluster = "passthrough"
	AdminCluster       = "self-admin"
	IdentitySecret     = "identity"
	TrustBundleSecret  = "trust-bundle"
)

// Resources are the Envoy resources of one proxy group, each list sorted by name.
type Resources struct {
	Listeners []*listenerv3.Listener
	Routes    []*routev3.RouteConfiguration
	Clusters  []*clusterv3.Cluster
	Endpoints []*endpointv3.ClusterLoadAssignment
	Secrets   []*tlsv3.Secret

	// shared holds the encodings of resources shared with other groups.
	shared *Shared
	// rdsRefs are the route names the listeners' filter chains load by RDS.
	rdsRefs []string
}

// Consistent checks that the resources carry every route and endpoint list
// they reference, and nothing unreferenced, as ADS requires: proxies wait
// forever for a missing one. It reads what translation recorded, without
// decoding the listeners.
func (r *Resources) Consistent() error {
	routes := map[string]bool{}
	for _, rc := range r.Routes {
		routes[rc.GetName()] = true
	}
	refs := map[string]bool{}
	for _, n := range r.rdsRefs {
		if !routes[n] {
			return fmt.Errorf("route %q is referenced but missing", n)
		}
		refs[n] = true
	}
	if len(refs) != len(routes) {
		return fmt.Errorf("%d routes for %d references", len(routes), len(refs))
	}
	eps := map[string]bool{}
	for _, e := range r.Endpoints {
		eps[e.GetClusterName()] = true
	}
	edsRefs := 0
	for _, c := range r.Clusters {
		if c.GetType() != clusterv3.Cluster_EDS {
			continue
		}
		edsRefs++
		if n := c.GetEdsClusterConfig().GetServiceName(); !eps[n] {
			return fmt.Errorf("endpoints %q of cluster %q are missing", n, c.GetName())
		}
	}
	if edsRefs != len(eps) {
		return fmt.Errorf("%d endpoint lists for %d EDS clusters", len(eps), edsRefs)
	}
	return nil
}

// Certificates is the TLS material of a group: PEM encoded.
type Certificates struct {
	CertChain, PrivateKey []byte
	TrustBundle           []byte
}

// Translate builds the resources of the group of v. Without certificates the
// group gets no secrets, and its proxies wait for them (SDS warming).
func Translate(v *mesh.View, certs *Certificates) (*Resources, error) {
	return NewShared().Translate(v, certs)
}

// Translate is the package's Translate, sharing the resources common to
// groups with the other translations of sh's model.
func (sh *Shared) Translate(v *mesh.View, certs *Certificates) (*Resources, error) {
	t := &translator{view: v, out: &Resources{shared: sh}, shared: sh}
	switch v.Group.Kind {
	case mesh.ProxyGRPC:
		// gRPC reads its certificates from files, not SDS.
		t.grpcClient()
		t.grpcServer()
	default:
		t.outbound()
		t.inbound()
		t.prometheus()
		t.defaultClusters()
		t.tracingCluster()
		t.secrets(certs)
	}
	sortByName(t.out.Listeners, (*listenerv3.Listener).GetName)
	sortByName(t.out.Routes, (*routev3.RouteConfiguration).GetName)
	sortByName(t.out.Clusters, (*clusterv3.Cluster).GetName)
	sortByName(t.out.Endpoints, (*endpointv3.ClusterLoadAssignment).GetClusterName)
	if t.err != nil {
		return nil, fmt.Errorf("translating group %s: %w", v.Group, t.err)
	}
	if err := validate(t.out, sh); err != nil {
		return nil, fmt.Errorf("translating group %s: %w", v.Group, err)
	}
	check := sh.checkRules
	if v.Group.Kind == mesh.ProxyGRPC {
		check = sh.checkGRPC
	}
	if err := check(t.out); err != nil {
		return nil, fmt.Errorf("translating group %s: %w", v.Group, err)
	}
	return t.out, nil
}

// checkGRPC holds a proxyless gRPC group's resources to the rules grpc-go
// validates what it is sent by (envoyrules.CheckGRPC), not Envoy's.
func (sh *Shared) checkGRPC(r *Resources) error { return sh.rules.CheckGRPC(r.Envoy()) }

// checkRules holds an Envoy group's resources to Envoy's load rules.
func (sh *Shared) checkRules(r *Resources) error {
	c := sh.rules
	if len(r.Secrets) == 0 {
		c = sh.rulesPending
	}
	return c.Check(r.Envoy())
}

// Envoy is what a proxy of the group loads, for Envoy's load rules.
func (r *Resources) Envoy() *envoyrules.Resources {
	return &envoyrules.Resources{Listeners: r.Listeners, Routes: r.Routes, Clusters: r.Clusters, Endpoints: r.Endpoints, Secrets: r.Secrets}
}

// translator accumulates the resources of one group and the first error.
type translator struct {
	view   *mesh.View
	out    *Resources
	err    error
	shared *Shared
}

// sharedResource returns a resource common to groups, from t.shared.
func sharedResource[T proto.Message](t *translator, kind string, s *mesh.Service, p mesh.Port, build func(*translator) T) T {
	m, err := t.shared.get(kind, s, p.Port, func(bt *translator) proto.Message { return build(bt) }, t.view)
	if err != nil && t.err == nil {
		t.err = err
	}
	out, _ := m.(T)
	return out
}

// sharedNamed is sharedResource for a resource of no service, told apart
// by its name and port.
func sharedNamed[T proto.Message](t *translator, kind, name string, port int32, build func(*translator) T) T {
	m, err := t.shared.getKey(sharedKey{kind: kind, port: port, name: name}, func(bt *translator) proto.Message { return build(bt) }, t.view)
	if err != nil && t.err == nil {
		t.err = err
	}
	out, _ := m.(T)
	return out
}

// any validates m and packs it. Envoy's validation rules do not look inside
// an Any, so a typed config (connection manager, RBAC, TLS context, proxy) is
// checked here, where it is made; a failure is recorded as t's error.
func (t *translator) any(m proto.Message) *anypb.Any {
	if v, ok := m.(validator); ok {
		if err := v.ValidateAll(); err != nil && t.err == nil {
			t.err = fmt.Errorf("%s: %w", m.ProtoReflect().Descriptor().FullName(), err)
		}
	}
	// Deterministic: a map (a JSON log format, RBAC policies) packs in
	// key order, so the same config packs to the same bytes and hashes
	// alike from one translation to the next.
	a := &anypb.Any{}
	err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true})
	if err != nil && t.err == nil {
		t.err = fmt.Errorf("packing %T: %w", m, err)
	}
	if t.shared != nil {
		t.shared.packed.Store(a, m)
	}
	return a
}

type validator interface{ ValidateAll() error }

// validate checks every resource that sh did not already validate. Filter
// chains may be shared between groups: a listener's chains are checked one by
// one, then the listener without them.
func validate(r *Resources, sh *Shared) error {
	var errs []error
	check := func(kind, name string, v validator) {
		if m, ok := v.(proto.Message); ok && sh.validated(m) {
			return
		}
		if l, ok := v.(*listenerv3.Listener); ok {
			chains := l.FilterChains
			for _, fc := range chains {
				if sh.validated(fc) {
					continue
				}
				if err := fc.ValidateAll(); err != nil {
					errs = append(errs, fmt.Errorf("listener %q: filter chain %q: %w", name, fc.GetName(), err))
				}
			}
			l.FilterChains = nil
			defer func() { l.FilterChains = chains }()
		}
		if err := v.ValidateAll(); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", kind, name, err))
		}
	}
	for _, l := range r.Listeners {
		check("listener", l.GetName(), l)
	}
	for _, rc := range r.Routes {
		check("route", rc.GetName(), rc)
	}
	for _, c := range r.Clusters {
		check("cluster", c.GetName(), c)
	}
	for _, e := range r.Endpoints {
		check("endpoints", e.GetClusterName(), e)
	}
	for _, s := range r.Secrets {
		check("secret", s.GetName(), s)
	}
	return errors.Join(errs...)
}

// OutboundClusterName names the cluster of a service port.
func OutboundClusterName(k mesh.ServiceKey, port int32) string {
	return "out|" + k.String() + "|" + strconv.Itoa(int(port))
}

// InboundClusterName names the cluster of the local application's port.
func InboundClusterName(port int32) string {
	return "in|" + strconv.Itoa(int(port))
}

func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
}

func socketAddress(addr string, port int32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       addr,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)},
	}}}
}
