// Package controlplane wires the xDS control plane of one operator replica:
// the runner that keeps the snapshots in step with the cluster, the ADS
// server, the census of its proxies and, when asked for, the debug endpoint.
// The operator, the scale harness and the runner's tests all build it here,
// so that what is measured and tested is what runs.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/go-logr/logr"
	ctrlcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/cache"
	"github.com/open-service-mesh/osm-operator/xds/census"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/runner"
	"github.com/open-service-mesh/osm-operator/xds/server"
)

// Options configure a replica's control plane.
type Options struct {
	// Cache is the informer cache the runner and the authorizer read; the
	// operator's has controllers.CacheOptions.
	Cache ctrlcache.Cache
	// Client writes the census Lease; the xDS server writes nothing else.
	Client client.Client
	// Address is where the ADS server listens; TLS gives its certificate
	// and the roots it trusts for clients.
	Address string
	TLS     server.TLSSource
	// Replica names this replica in MeshVM status and in its census Lease.
	Replica string
	// TrustNamespace is where the mesh trust bundle Secrets are (the
	// operator's namespace): what proxies trust.
	TrustNamespace string
	// ClusterDomain is the cluster's DNS domain (runner.Options).
	ClusterDomain string
	// CensusNamespace is where the replica publishes its census Lease (the
	// operator's namespace); empty publishes none.
	CensusNamespace string
	// DebugAddress is where the debug endpoint listens; empty serves none.
	DebugAddress string
	Log          logr.Logger
}

// ControlPlane is a replica's control plane, not started yet.
type ControlPlane struct {
	Snapshots *cache.Cache
	Nodes     *cache.Nodes
	Server    *server.Server
	Runner    *runner.Runner

	runnables []manager.Runnable
}

// New wires a control plane.
func New(o Options) *ControlPlane {
	cp := &ControlPlane{Nodes: &cache.Nodes{}}
	cp.Snapshots = cache.New(cp.Nodes, nil)
	var observers server.Observers
	var onFailing, onConfigState func()
	var publisher *census.Publisher
	var proxies []server.ProxyStatus
	if o.CensusNamespace != "" {
		publisher = census.NewPublisher(census.Options{
			Client:    o.Client,
			Namespace: o.CensusNamespace,
			Replica:   o.Replica,
			// One copy of the proxies' status per report (the publisher's
			// goroutine alone calls these): each copy holds the server's
			// lock over every proxy, which at 10,000 proxies stalled their
			// requests three times a second during a cold start.
			Prepare:      func() { proxies = cp.Server.Proxies() },
			Count:        func() census.Counts { return sidecarCounts(proxies) },
			Failing:      func() census.Failing { return cp.Runner.Failing() },
			Trust:        func() census.Trust { return TrustCounts(proxies, cp.Snapshots.Trusts()) },
			Groups:       func() census.Groups { return GroupStates(proxies, cp.Snapshots.Versions()) },
			FieldManager: meshv1alpha1.FieldManager,
			Log:          o.Log.WithName("census"),
		})
		observers = append(observers, publisher)
		onFailing, onConfigState = publisher.Changed, publisher.Changed
	}
	cp.Server = server.New(server.Options{
		Address:    o.Address,
		TLS:        o.TLS,
		Authorizer: server.WorkloadAuthorizer{Reader: o.Cache},
		Cache:      cp.Snapshots,
		Nodes:      cp.Nodes,
		Workloads:  o.Cache,
		Observer:   observers,
		// What proxies run changes the census: the policies' Enforced.
		OnConfigState: onConfigState,
		Log:           o.Log.WithName("server"),
	})
	cp.Runner = runner.New(runner.Options{
		Cache: o.Cache, Snapshots: cp.Snapshots, TrustNamespace: o.TrustNamespace, ClusterDomain: o.ClusterDomain, OnFailing: onFailing, Log: o.Log.WithName("runner"),
	})
	cp.runnables = []manager.Runnable{cp.Runner, cp.Server}
	if publisher != nil {
		cp.runnables = append(cp.runnables, publisher)
	}
	if o.DebugAddress != "" {
		cp.runnables = append(cp.runnables, &server.Debug{Address: o.DebugAddress, Server: cp.Server, Cache: cp.Snapshots})
	}
	return cp
}

// AddTo adds the control plane to a manager, which runs it on every replica
// (none of its parts needs leader election) and starts the cache.
func (cp *ControlPlane) AddTo(mgr manager.Manager) error {
	for _, r := range cp.runnables {
		if err := mgr.Add(r); err != nil {
			return fmt.Errorf("adding the xDS control plane: %w", err)
		}
	}
	return nil
}

// Start runs the control plane without a manager until ctx ends or, as a
// manager does, until one of its parts fails, and returns what its parts
// returned. The caller starts the cache.
func (cp *ControlPlane) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(cp.runnables))
	for _, r := range cp.runnables {
		go func() {
			err := r.Start(ctx)
			if err != nil {
				cancel()
			}
			errs <- err
		}()
	}
	var all []error
	for range cp.runnables {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}

// sidecarCounts counts the connected sidecars per namespace; VMs report
// their connection in their own status.
func sidecarCounts(proxies []server.ProxyStatus) census.Counts {
	c := census.Counts{}
	for _, p := range proxies {
		if kind, ns, _, err := mesh.ParseNodeID(p.NodeID); err == nil && kind == mesh.NodeKindSidecar {
			c[ns]++
		}
	}
	return c
}

// TrustCounts counts, per mesh, the connected proxies that hold secrets
// they acknowledged, and of those that acknowledged their group's current
// secrets, which trust bundle and which leaf root they hold. A proxy that
// has acknowledged none (its group has no secrets yet, or it rejected
// every one) counts nowhere: it trusts nothing, and holds no leaf.
func TrustCounts(proxies []server.ProxyStatus, trust map[string]cache.GroupTrust) census.Trust {
	out := census.Trust{}
	for _, p := range proxies {
		acked := p.Acked[resourcev3.SecretType]
		gt, ok := trust[p.Group]
		if acked == "" || !ok {
			continue
		}
		m := out[gt.Mesh]
		m.Proxies++
		if acked == gt.SecretVersion {
			m.Bundles = increment(m.Bundles, gt.Bundle)
			if gt.LeafRoot != "" {
				m.LeafRoots = increment(m.LeafRoots, gt.LeafRoot)
			}
		}
		out[gt.Mesh] = m
	}
	return out
}

func increment(m map[string]int32, key string) map[string]int32 {
	if m == nil {
		m = map[string]int32{}
	}
	m[key]++
	return m
}

// GroupStates are what the connected proxies of each group run, against
// the config versions of versions (cache.Versions): for the census, which
// the leader reads to say how many proxies enforce each policy.
func GroupStates(proxies []server.ProxyStatus, versions map[string][types.UnknownType]string) census.Groups {
	out := census.Groups{}
	for _, p := range proxies {
		s, seen := out[p.Group]
		s.Connected++
		v, ok := versions[p.Group]
		if ok && !seen {
			s.Version = cache.ConfigVersion(v)
		}
		if ok && p.Holds(cache.TypeVersions(v)) {
			s.Holding++
		}
		// The rejections of the types the config version counts (a proxy
		// rejecting its certificates is the trust census's).
		if r := counted(p.Rejecting); len(r) > 0 {
			s.Rejecting++
			if s.Rejection == "" {
				s.Rejection = firstRejection(r)
			}
		}
		out[p.Group] = s
	}
	return out
}

// counted are the rejections of r of the types cache.ConfigVersion counts.
func counted(r map[string]string) map[string]string {
	if _, secrets := r[resourcev3.SecretType]; !secrets {
		return r
	}
	out := maps.Clone(r)
	delete(out, resourcev3.SecretType)
	return out
}

// firstRejection is the detail of the first rejected type, by URL: one
// detail per group is enough to tell what is wrong.
func firstRejection(r map[string]string) string {
	urls := slices.Sorted(maps.Keys(r))
	return server.TypeName(urls[0]) + ": " + r[urls[0]]
}

// Policies are the policies as the runner's last sync found them.
func (cp *ControlPlane) Policies() []runner.Policy { return cp.Runner.Policies() }

// ConfigVersions are the config version (cache.ConfigVersion) of every
// group published.
func (cp *ControlPlane) ConfigVersions() map[string]string {
	v := cp.Snapshots.Versions()
	out := make(map[string]string, len(v))
	for g, tv := range v {
		out[g] = cache.ConfigVersion(tv)
	}
	return out
}

// FailingGroups are the groups whose last translation failed, with the error.
func (cp *ControlPlane) FailingGroups() map[string]string {
	out := map[string]string{}
	for _, f := range cp.Runner.Failing() {
		maps.Copy(out, f.Errors)
	}
	return out
}
