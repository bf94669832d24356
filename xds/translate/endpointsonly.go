package translate

import (
	"fmt"
	"slices"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/proto"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// EndpointsOnly says whether, for the group of v, which calls service s but
// runs none of its endpoints, s changing from old to now changes nothing
// of its config but the ClusterLoadAssignments of s (Endpoints): the
// change of endpoints of a rolling update or a scale-out, which then costs
// the group a patched snapshot instead of a translation. It holds this
// package's rule of what a caller's config reads of a service's
// endpoints besides EDS: a headless service's chains (their addresses),
// the plaintext transport socket of a port with endpoints without a proxy,
// an IngressBackend source's chains (addresses) and a backend's inbound
// rules (the source's addresses; IngressSources), the identities the
// upstream TLS accepts, and whether the cluster has IPv6 (ipv6Was: the old
// model's Mesh.IPv6).
func EndpointsOnly(v *mesh.View, old, now *mesh.Service, ipv6Was bool) bool {
	if old == nil || now == nil || old.Key != now.Key || old.Headless() || now.Headless() || v.Mesh.IPv6 != ipv6Was {
		return false
	}
	if !slices.Equal(old.ClusterIPs, now.ClusterIPs) || !slices.Equal(old.Ports, now.Ports) ||
		!slices.Equal(old.Identities, now.Identities) || !slices.Equal(old.PeerIdentities, now.PeerIdentities) {
		return false
	}
	if slices.Contains(now.Identities, v.Group.Identity) || slices.Contains(old.Identities, v.Group.Identity) {
		return false // its inbound config follows its own endpoints
	}
	for _, p := range now.Ports {
		if hasPlaintext(old, p) != hasPlaintext(now, p) {
			return false
		}
	}
	if slices.ContainsFunc(v.IngressTargets, func(it mesh.IngressSourceTarget) bool { return it.Service == now.Key }) {
		return false // it calls s's endpoints by address, as an ingress source
	}
	return !slices.Contains(v.IngressSources(), now.Key) // it lets s's endpoints in by address
}

// hasPlaintext says whether a port of s has an endpoint without a proxy,
// which gives its cluster a plaintext transport socket match.
func hasPlaintext(s *mesh.Service, p mesh.Port) bool {
	return slices.ContainsFunc(s.Endpoints, func(e mesh.Endpoint) bool { return e.NoProxy && published(e, p) })
}

// Endpoints are the ClusterLoadAssignments of service s, one per port, as
// the group of v is sent them when it calls s: built in sh, shared with the
// translations of sh's model.
func (sh *Shared) Endpoints(v *mesh.View, s *mesh.Service) ([]*endpointv3.ClusterLoadAssignment, error) {
	t := &translator{view: v, out: &Resources{shared: sh}, shared: sh}
	out := make([]*endpointv3.ClusterLoadAssignment, 0, len(s.Ports))
	for _, p := range s.Ports {
		if v.Group.Kind == mesh.ProxyGRPC {
			out = append(out, sharedResource(t, "grpc-endpoints", s, p, func(*translator) *endpointv3.ClusterLoadAssignment { return grpcEndpoints(s, p) }))
		} else {
			out = append(out, sharedResource(t, "endpoints", s, p, func(*translator) *endpointv3.ClusterLoadAssignment { return endpoints(s, p) }))
		}
	}
	if t.err != nil {
		return nil, fmt.Errorf("endpoints of %s: %w", s.Key, t.err)
	}
	return out, nil
}

// Encode is Resources.Encode for a resource built in sh outside a group's
// translation (Endpoints).
func (sh *Shared) Encode(m proto.Message) (Encoded, error) { return sh.encode(m) }
