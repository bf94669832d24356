package xdstest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/open-service-mesh/osm-operator/xds/cache"
)

// Envoy-like clients: they subscribe as Envoy does (clusters and listeners by
// wildcard, then the endpoints, routes and secrets those name), accept
// everything they receive, and report the versions they hold.

// typeURLs are the types a proxy holds, indexed by types.ResponseType as the
// cache's versions are.
var typeURLs = [types.UnknownType]string{
	types.Listener: resourcev3.ListenerType,
	types.Route:    resourcev3.RouteType,
	types.Cluster:  resourcev3.ClusterType,
	types.Endpoint: resourcev3.EndpointType,
	types.Secret:   resourcev3.SecretType,
}

// Held is what a proxy holds after a response: the server's version of each
// type it was computed from (as the cache versions them), the bytes it has received so far and when it sent
// its ACK.
type Held struct {
	Versions [types.UnknownType]string
	Bytes    int64
	At       time.Time
}

// Envoy is a simulated proxy on one ADS stream.
type Envoy struct {
	NodeID string
	// Delta selects incremental xDS; otherwise state of the world.
	Delta bool
	// OnHeld is called, from the stream's goroutine, after every ACK.
	OnHeld func(Held)
}

// Run opens the stream on conn and follows the server until ctx ends or the
// stream fails.
func (e *Envoy) Run(ctx context.Context, conn *grpc.ClientConn) error {
	c := &envoyState{e: e, resources: map[string]map[string]*held{}, version: map[string]string{}, subscribed: map[string][]string{}}
	for _, t := range typeURLs {
		c.resources[t] = map[string]*held{}
	}
	if e.Delta {
		s, err := OpenDeltaStream(ctx, conn, e.NodeID)
		if err != nil {
			return err
		}
		return c.runDelta(s)
	}
	s, err := OpenStream(ctx, conn, e.NodeID)
	if err != nil {
		return err
	}
	return c.runSotW(s)
}

type envoyState struct {
	e *Envoy
	// resources by type URL and name.
	resources map[string]map[string]*held
	// version is the server's version of each type in the last response:
	// the accepted version (state of the world) or the system version the
	// changes were computed from (delta).
	version    map[string]string
	subscribed map[string][]string
	bytes      int64
}

func (c *envoyState) runSotW(s *Stream) error {
	for _, t := range []string{resourcev3.ClusterType, resourcev3.ListenerType} {
		if err := s.Subscribe(t, nil); err != nil {
			return err
		}
	}
	for {
		r, err := s.Recv()
		if err != nil {
			return err
		}
		c.bytes += int64(proto.Size(r))
		t := r.GetTypeUrl()
		got := map[string]*held{}
		for _, a := range r.GetResources() {
			name, err := resourceName(a)
			if err != nil {
				return err
			}
			got[name] = c.resources[t][name].update(a)
		}
		c.resources[t] = got
		c.version[t] = r.GetVersionInfo()
		if err := s.ACK(r); err != nil {
			return err
		}
		for dep, names := range c.references(t) {
			if slices.Equal(names, c.subscribed[dep]) {
				continue
			}
			c.subscribed[dep] = names
			// A new subscription repeats the accepted version, as Envoy does.
			if err := s.send(&discoveryv3.DiscoveryRequest{TypeUrl: dep, ResourceNames: names, VersionInfo: c.version[dep]}); err != nil {
				return err
			}
			s.names[dep] = names
		}
		c.report()
	}
}

func (c *envoyState) runDelta(s *DeltaStream) error {
	for _, t := range []string{resourcev3.ClusterType, resourcev3.ListenerType} {
		if err := s.Subscribe(t, nil); err != nil {
			return err
		}
	}
	for {
		r, err := s.Recv()
		if err != nil {
			return err
		}
		c.bytes += int64(proto.Size(r))
		t := r.GetTypeUrl()
		for _, res := range r.GetResources() {
			c.resources[t][res.GetName()] = c.resources[t][res.GetName()].update(res.GetResource())
		}
		for _, name := range r.GetRemovedResources() {
			delete(c.resources[t], name)
		}
		c.version[t] = r.GetSystemVersionInfo()
		if err := s.ACK(r); err != nil {
			return err
		}
		for dep, names := range c.references(t) {
			old := c.subscribed[dep]
			if slices.Equal(names, old) {
				continue
			}
			c.subscribed[dep] = names
			req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: dep}
			for _, n := range names {
				if !slices.Contains(old, n) {
					req.ResourceNamesSubscribe = append(req.ResourceNamesSubscribe, n)
				}
			}
			for _, n := range old {
				if !slices.Contains(names, n) {
					req.ResourceNamesUnsubscribe = append(req.ResourceNamesUnsubscribe, n)
					delete(c.resources[dep], n)
				}
			}
			if err := s.send(req); err != nil {
				return err
			}
		}
		c.report()
	}
}

// held is a resource a proxy holds, with the names it refers to (clusters
// and listeners), read once when it arrives.
type held struct {
	res               *anypb.Any
	eds, rds, secrets []string
}

// update is h holding a, re-reading its references only when it changed.
func (h *held) update(a *anypb.Any) *held {
	if h != nil && h.res.GetTypeUrl() == a.GetTypeUrl() && bytes.Equal(h.res.GetValue(), a.GetValue()) {
		return h
	}
	n := &held{res: a}
	if a.GetTypeUrl() != resourcev3.ClusterType && a.GetTypeUrl() != resourcev3.ListenerType {
		return n
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		return n // a resource this build cannot read names nothing
	}
	if cl, ok := m.(*clusterv3.Cluster); ok && cl.GetType() == clusterv3.Cluster_EDS {
		name := cl.GetEdsClusterConfig().GetServiceName()
		if name == "" {
			name = cl.GetName()
		}
		n.eds = append(n.eds, name)
	}
	walk(m.ProtoReflect(), func(m proto.Message) {
		switch x := m.(type) {
		case *tlsv3.SdsSecretConfig:
			n.secrets = append(n.secrets, x.GetName())
		case *hcmv3.HttpConnectionManager:
			if name := x.GetRds().GetRouteConfigName(); name != "" {
				n.rds = append(n.rds, name)
			}
		}
	})
	return n
}

// references are the names of the resources that the resources of type t
// name, by type: endpoints and secrets of clusters, routes and secrets of
// listeners. Secrets are named by both: each side contributes its own.
func (c *envoyState) references(t string) map[string][]string {
	switch t {
	case resourcev3.ClusterType, resourcev3.ListenerType:
	default:
		return nil
	}
	var eds, rds, secrets []string
	for _, kind := range []string{resourcev3.ClusterType, resourcev3.ListenerType} {
		for _, h := range c.resources[kind] {
			eds = append(eds, h.eds...)
			rds = append(rds, h.rds...)
			secrets = append(secrets, h.secrets...)
		}
	}
	out := map[string][]string{resourcev3.SecretType: sortedSet(secrets)}
	if t == resourcev3.ClusterType {
		out[resourcev3.EndpointType] = sortedSet(eds)
	} else {
		out[resourcev3.RouteType] = sortedSet(rds)
	}
	return out
}

// walk calls f on m and every message inside it, unpacking Any fields.
func walk(m protoreflect.Message, f func(proto.Message)) {
	if a, ok := m.Interface().(*anypb.Any); ok {
		if inner, err := a.UnmarshalNew(); err == nil {
			walk(inner.ProtoReflect(), f)
		}
		return
	}
	f(m.Interface())
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
			return true
		}
		switch {
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				walk(l.Get(i).Message(), f)
			}
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					walk(mv.Message(), f)
					return true
				})
			}
		default:
			walk(v.Message(), f)
		}
		return true
	})
}

func (c *envoyState) report() {
	if c.e.OnHeld == nil {
		return
	}
	h := Held{Bytes: c.bytes, At: time.Now()}
	for i, t := range typeURLs {
		if t == "" {
			continue // a type the mesh does not serve
		}
		v, received := c.version[t]
		if !received && len(c.subscribed[t]) == 0 && t != resourcev3.ClusterType && t != resourcev3.ListenerType {
			v = cache.TypeVersion(nil) // it needs none: it holds the empty set
		}
		h.Versions[i] = v
	}
	c.e.OnHeld(h)
}

// resourceName is the name of a resource, read from its name field.
func resourceName(a *anypb.Any) (string, error) {
	m, err := a.UnmarshalNew()
	if err != nil {
		return "", fmt.Errorf("reading a %s: %w", a.GetTypeUrl(), err)
	}
	fd := m.ProtoReflect().Descriptor().Fields().ByName("name")
	if fd == nil {
		fd = m.ProtoReflect().Descriptor().Fields().ByName("cluster_name") // ClusterLoadAssignment
	}
	if fd == nil {
		return "", fmt.Errorf("a %s has no name", a.GetTypeUrl())
	}
	return m.ProtoReflect().Get(fd).String(), nil
}

func sortedSet(names []string) []string {
	slices.Sort(names)
	return slices.Compact(names)
}
