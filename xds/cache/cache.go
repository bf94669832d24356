// Package cache holds the xDS snapshots the server serves: one go-control-plane
// snapshot per proxy group, with versions that are hashes of the content, so
// that the same mesh gives the same versions after a restart and on every
// replica, and an unchanged resource type is never pushed again.
package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/log"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// Cache is the snapshot cache, keyed by proxy group. It serves endpoints
// from a go-control-plane snapshot cache of their own and every other type
// from another: setting a snapshot makes go-control-plane compare, for every
// open watch of the group's proxies, each resource the watch's type holds
// with what the proxy has, so an endpoint change (the most frequent, and
// the one patched without a translation) compares only endpoints, not the
// clusters, listeners, routes and secrets of every affected proxy too.
type Cache struct {
	eds, rest cachev3.SnapshotCache
	nodes     *Nodes

	mu sync.Mutex
	// snaps are the groups' whole snapshots, as GetSnapshot returns them;
	// their types' versions are what Versions says.
	snaps map[string]*cachev3.Snapshot
	trust map[string]GroupTrust // by group
	// updates counts the snapshots set and removed.
	updates atomic.Uint64
}

// New returns an empty cache. nodes maps each connected proxy to its group.
func New(nodes *Nodes, logger log.Logger) *Cache {
	return &Cache{
		// Not go-control-plane's "ADS mode": it answers a request only when
		// the request names every resource of the type in the snapshot, so a
		// proxyless gRPC client or server, which asks for the one listener
		// it needs, would never be answered. Consistency across types is
		// ensured by Resources.Consistent instead.
		eds:   cachev3.NewSnapshotCache(false, nodes, logger),
		rest:  cachev3.NewSnapshotCache(false, nodes, logger),
		nodes: nodes,
		snaps: map[string]*cachev3.Snapshot{},
		trust: map[string]GroupTrust{},
	}
}

// Update publishes the resources of a group. It returns the resource types
// whose content changed (none when the group's config is unchanged, in which
// case nothing is pushed). Resources that are not self-consistent are refused
// and the group keeps its last good snapshot.
func (c *Cache) Update(ctx context.Context, group string, r *translate.Resources) ([]types.ResponseType, error) {
	return c.UpdateTrusting(ctx, group, r, Trust{})
}

// Trust is what a group's secrets hold: the mesh, the SHA-256 of its trust
// bundle's PEM, and the fingerprint of the bundle's CA certificate the
// group's leaf chains to. Empty for a group without secrets.
type Trust struct {
	Mesh, Bundle, LeafRoot string
}

// GroupTrust is the Trust of a group's published secrets, and their
// version: a proxy that acknowledged that version holds them.
type GroupTrust struct {
	Trust
	SecretVersion string
}

// UpdateTrusting is Update, recording what the group's secrets hold (t),
// for Trusts.
func (c *Cache) UpdateTrusting(ctx context.Context, group string, r *translate.Resources, t Trust) ([]types.ResponseType, error) {
	snap := &cachev3.Snapshot{VersionMap: map[string]map[string]string{}}
	all := typesOf(r)
	versions, perResource, encoded, err := versionsOf(r, all)
	if err != nil {
		return nil, fmt.Errorf("encoding the resources of group %s: %w", group, err)
	}
	for _, e := range all {
		url, _ := cachev3.GetResponseTypeURL(e.t)
		snap.Resources[e.t] = cachev3.NewResources(versions[e.t], encoded[e.t])
		snap.VersionMap[url] = perResource[e.t]
	}
	if err := r.Consistent(); err != nil {
		return nil, fmt.Errorf("group %s: inconsistent snapshot: %w", group, err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	old, had := c.snaps[group]
	var changed []types.ResponseType
	for t := range types.UnknownType {
		if !had || old.Resources[t].Version != versions[t] {
			changed = append(changed, t)
		}
	}
	if len(changed) == 0 {
		return nil, nil
	}
	if err := c.set(ctx, group, snap, changed); err != nil {
		return nil, err
	}
	if t == (Trust{}) {
		delete(c.trust, group)
	} else {
		c.trust[group] = GroupTrust{Trust: t, SecretVersion: versions[types.Secret]}
	}
	c.updates.Add(1)
	return changed, nil
}

// typed are the resources of one type.
type typed struct {
	t     types.ResponseType
	items []types.Resource
}

// typesOf are the resources of r by type: those the cache serves.
func typesOf(r *translate.Resources) []typed {
	return []typed{
		{types.Listener, asResources(r.Listeners)},
		{types.Route, asResources(r.Routes)},
		{types.Cluster, asResources(r.Clusters)},
		{types.Endpoint, asResources(r.Endpoints)},
		{types.Secret, asResources(r.Secrets)},
	}
}

// VersionsOf are the versions of r's types as the cache publishes them,
// and of each resource by type (its content hash): what a group's proxies
// are sent for r, which a reader of the same model computes alike.
func VersionsOf(r *translate.Resources) ([types.UnknownType]string, [types.UnknownType]map[string]string, error) {
	v, perResource, _, err := versionsOf(r, typesOf(r))
	return v, perResource, err
}

// versionsOf is VersionsOf, and the resources as the snapshot holds them:
// with their encodings (wire.Message), so that every stream sent a
// resource is sent the bytes encoded here, shared with the other groups
// for the resources translation shares.
func versionsOf(r *translate.Resources, all []typed) (versions [types.UnknownType]string, perResource [types.UnknownType]map[string]string, encoded [types.UnknownType][]types.Resource, err error) {
	for _, e := range all {
		// Each resource's version is its content hash (delta xDS sends only
		// resources whose hash changed); the type's version hashes those.
		perResource[e.t] = make(map[string]string, len(e.items))
		encoded[e.t] = make([]types.Resource, len(e.items))
		for i, it := range e.items {
			enc, err := r.Encode(it)
			if err != nil {
				return versions, perResource, encoded, err
			}
			perResource[e.t][enc.Wire.GetName()] = enc.Hash
			encoded[e.t][i] = enc.Wire
		}
		versions[e.t] = TypeVersion(perResource[e.t])
	}
	return versions, perResource, encoded, nil
}

// TypeVersion is the version of a resource type given the versions of its
// resources by name: what a state-of-the-world response carries, and what a
// delta client holding the same resources can compute for itself.
func TypeVersion(perResource map[string]string) string {
	names := make([]string, 0, len(perResource))
	for n := range perResource {
		names = append(names, n)
	}
	slices.Sort(names)
	d := sha256.New()
	for _, n := range names {
		fmt.Fprintf(d, "%s=%s;", n, perResource[n])
	}
	return hex.EncodeToString(d.Sum(nil)[:8])
}

// Versions returns the published type versions of every group, indexed by
// types.ResponseType: what the proxies of each group should hold.
func (c *Cache) Versions() map[string][types.UnknownType]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string][types.UnknownType]string, len(c.snaps))
	for g, s := range c.snaps {
		var v [types.UnknownType]string
		for t := range types.UnknownType {
			v[t] = s.Resources[t].Version
		}
		out[g] = v
	}
	return out
}

// Trusts returns the Trust of every group with secrets.
func (c *Cache) Trusts() map[string]GroupTrust {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.trust)
}

// Updates counts the snapshots set or removed so far: a cheap way to see
// that Versions changed.
func (c *Cache) Updates() uint64 { return c.updates.Load() }

// Remove forgets a group that has no workloads left.
func (c *Cache) Remove(group string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.trust, group)
	delete(c.snaps, group)
	c.eds.ClearSnapshot(group)
	c.rest.ClearSnapshot(group)
	c.updates.Add(1)
}

func asResources[T types.Resource](items []T) []types.Resource {
	out := make([]types.Resource, len(items))
	for i, it := range items {
		out[i] = it
	}
	return out
}

// Nodes maps each authorized xDS stream to its proxy group. The server pins
// a stream when it has checked the proxy's identity: Pin returns a node value
// of the stream's own, and the server hands the cache only that value on every
// request of the stream. The cache finds the group by the value itself, not
// by the ID inside it, so a node a proxy sends, whatever its ID, is in no
// group, and two streams claiming one node ID each keep the group they proved.
type Nodes struct{ m sync.Map } // *corev3.Node → group

// Pin returns a copy of node that belongs to group until Release.
func (n *Nodes) Pin(node *corev3.Node, group string) *corev3.Node {
	pinned := proto.Clone(node).(*corev3.Node)
	n.m.Store(pinned, group)
	return pinned
}

// Release ends a pinned node's membership of its group.
func (n *Nodes) Release(pinned *corev3.Node) { n.m.Delete(pinned) }

// ID is the group of a pinned node, or "" for any other node, which gets
// nothing.
func (n *Nodes) ID(node *corev3.Node) string {
	if g, ok := n.m.Load(node); ok {
		return g.(string)
	}
	return ""
}

// ConfigVersion is the version of a group's config, given its type
// versions (Versions): short, and the same on every replica that
// translated the same model. It leaves out the secrets: they are the
// group's certificates, which no policy decides and which rotate on their
// own (the trust census follows them), and which a reader of the model
// without the Secrets (osm-operator explain) cannot compute.
func ConfigVersion(v [types.UnknownType]string) string {
	d := sha256.New()
	for t, tv := range v {
		if types.ResponseType(t) != types.Secret {
			fmt.Fprintf(d, "%s;", tv)
		}
	}
	return hex.EncodeToString(d.Sum(nil)[:6])
}

// TypeVersions maps the type URL of a response to its version in v, for
// server.ProxyStatus.Holds: false for the types ConfigVersion leaves out.
func TypeVersions(v [types.UnknownType]string) func(typeURL string) (string, bool) {
	return func(typeURL string) (string, bool) {
		if t := cachev3.GetResponseType(typeURL); t < types.UnknownType && t != types.Secret {
			return v[t], true
		}
		return "", false
	}
}

// PatchEndpoints publishes, into the group's last snapshot, the given
// ClusterLoadAssignments in place of those of the same names: what a group
// is sent when only the endpoints of services it calls changed
// (translate.EndpointsOnly), without translating it again. It returns false,
// changing nothing, when the group has no snapshot or its snapshot lacks
// one of the names: the caller then translates the group.
func (c *Cache) PatchEndpoints(ctx context.Context, group string, endpoints []translate.Encoded) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	snap, ok := c.snaps[group]
	if !ok {
		return false, nil
	}
	const url = resourcev3.EndpointType
	old := snap.Resources[types.Endpoint]
	var items map[string]types.ResourceWithTTL
	var perResource map[string]string
	for _, e := range endpoints {
		name := e.Wire.GetName()
		if _, ok := old.Items[name]; !ok {
			return false, nil
		}
		if snap.VersionMap[url][name] == e.Hash {
			continue
		}
		if items == nil {
			items, perResource = maps.Clone(old.Items), maps.Clone(snap.VersionMap[url])
		}
		items[name] = types.ResourceWithTTL{Resource: e.Wire}
		perResource[name] = e.Hash
	}
	if items == nil {
		return true, nil // the same endpoints
	}
	next := &cachev3.Snapshot{Resources: snap.Resources, VersionMap: maps.Clone(snap.VersionMap)}
	version := TypeVersion(perResource)
	next.Resources[types.Endpoint] = cachev3.Resources{Version: version, Items: items}
	next.VersionMap[url] = perResource
	if err := c.set(ctx, group, next, []types.ResponseType{types.Endpoint}); err != nil {
		return false, err
	}
	c.updates.Add(1)
	return true, nil
}

// set publishes a group's whole snapshot: the endpoints into their cache
// first, so that a cluster the other cache then sends finds its endpoints
// there, and the rest into the other, each only when one of its types
// changed. The caller holds c.mu.
func (c *Cache) set(ctx context.Context, group string, snap *cachev3.Snapshot, changed []types.ResponseType) error {
	edsChanged := slices.Contains(changed, types.Endpoint)
	if edsChanged {
		eds := &cachev3.Snapshot{VersionMap: map[string]map[string]string{}}
		eds.Resources[types.Endpoint] = snap.Resources[types.Endpoint]
		eds.VersionMap[resourcev3.EndpointType] = snap.VersionMap[resourcev3.EndpointType]
		if err := c.eds.SetSnapshot(ctx, group, eds); err != nil {
			return fmt.Errorf("setting the endpoints of group %s: %w", group, err)
		}
	}
	if len(changed) > 1 || !edsChanged {
		rest := &cachev3.Snapshot{Resources: snap.Resources, VersionMap: maps.Clone(snap.VersionMap)}
		rest.Resources[types.Endpoint] = cachev3.Resources{}
		delete(rest.VersionMap, resourcev3.EndpointType)
		if err := c.rest.SetSnapshot(ctx, group, rest); err != nil {
			return fmt.Errorf("setting the snapshot of group %s: %w", group, err)
		}
	}
	c.snaps[group] = snap
	return nil
}

// GetSnapshot is the group's whole snapshot, as last published.
func (c *Cache) GetSnapshot(group string) (cachev3.ResourceSnapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.snaps[group]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("no snapshot found for node %s", group)
}

// of is the cache serving type URL t.
func (c *Cache) of(t string) cachev3.SnapshotCache {
	if t == resourcev3.EndpointType {
		return c.eds
	}
	return c.rest
}

// CreateWatch is go-control-plane's, served by the cache of the type.
func (c *Cache) CreateWatch(r *cachev3.Request, sub cachev3.Subscription, out chan cachev3.Response) (func(), error) {
	return c.of(r.GetTypeUrl()).CreateWatch(r, sub, out)
}

// CreateDeltaWatch is go-control-plane's, served by the cache of the type.
func (c *Cache) CreateDeltaWatch(r *cachev3.DeltaRequest, sub cachev3.Subscription, out chan cachev3.DeltaResponse) (func(), error) {
	return c.of(r.GetTypeUrl()).CreateDeltaWatch(r, sub, out)
}

// Fetch is go-control-plane's, served by the cache of the type.
func (c *Cache) Fetch(ctx context.Context, r *cachev3.Request) (cachev3.Response, error) {
	return c.of(r.GetTypeUrl()).Fetch(ctx, r)
}
