// Package runner keeps the snapshot cache in step with the cluster: it watches
// the informer cache, coalesces changes, rebuilds the mesh model, translates
// the proxy groups a change touches and publishes them. A group whose
// translation fails keeps its last good snapshot.
package runner

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	splitv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha4"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	toolscache "k8s.io/client-go/tools/cache"
	ctrlcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/cache"
	"github.com/open-service-mesh/osm-operator/xds/census"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// Options configure a Runner.
type Options struct {
	// Cache is the informer cache the model is read from.
	Cache ctrlcache.Cache
	// Snapshots receives the translated groups.
	Snapshots *cache.Cache
	// Quiet is how long the runner waits for more changes after one arrives;
	// MaxDelay bounds the wait while changes keep coming.
	Quiet, MaxDelay time.Duration
	// TrustNamespace is the operator's namespace, where the MeshInstance
	// reconciler writes each mesh's trust bundle Secret: what proxies trust.
	TrustNamespace string
	// ClusterDomain is the cluster's DNS domain; empty means
	// mesh.DefaultClusterDomain.
	ClusterDomain string
	// OnFailing is called, from the runner's goroutine, when the set of
	// failing groups or their errors changed; Failing tells them. Nil
	// calls nothing.
	OnFailing func()
	Log       logr.Logger
}

// The runner reads, and never writes, everything the model is built from,
// through informers.
// +kubebuilder:rbac:groups="",resources=namespaces;pods;services;secrets,verbs=list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=list;watch
// +kubebuilder:rbac:groups=access.smi-spec.io,resources=traffictargets,verbs=list;watch
// +kubebuilder:rbac:groups=specs.smi-spec.io,resources=httproutegroups;tcproutes,verbs=list;watch
// +kubebuilder:rbac:groups=split.smi-spec.io,resources=trafficsplits,verbs=list;watch
// +kubebuilder:rbac:groups=policy.openservicemesh.io,resources=ingressbackends;egresses;upstreamtrafficsettings;retries,verbs=list;watch
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes;grpcroutes;referencegrants,verbs=list;watch
// +kubebuilder:rbac:groups=mesh.openservicemesh.io,resources=resiliencepolicies,verbs=list;watch

// Runner is a controller-runtime Runnable; it runs on every replica.
type Runner struct {
	opts Options

	mu    sync.Mutex
	dirty changes
	kick  chan struct{}

	// deps are the services each published group depends on.
	deps map[string]map[mesh.ServiceKey]bool
	// checked is the resource version of each group's identity Secret
	// when its certificates last parsed.
	checked map[string]string
	// trust is what the certificates of each group checked hold (trustOf).
	trust map[string]cache.Trust
	// last is, by mesh, what the last sync's model held of its services:
	// what an endpoints-only change is told from (translate.EndpointsOnly).
	last map[string]lastModel

	// policies are each mesh's policies as the last sync found them.
	pmu      sync.Mutex
	policies map[string][]Policy

	// failing are the groups whose last translation failed: they keep
	// their last good snapshot.
	fmu     sync.Mutex
	failing map[string]failure
}

// failure is why a group's last translation failed.
type failure struct {
	namespace string
	err       error
}

// changes are what happened since the last sync.
type changes struct {
	full       bool
	services   map[mesh.ServiceKey]bool
	identities map[mesh.Identity]bool
	// workloads are the identities of pods whose endpoints may have moved
	// (added, deleted, new addresses, phase, labels): the services they
	// back change for their callers too. A subset of identities.
	workloads map[mesh.Identity]bool
	// meshes whose trust bundle changed: all their groups.
	meshes map[string]bool
	// secrets are the identity Secrets that changed: each is the Secret of
	// the groups whose service account's IdentitySecretName it has, and of
	// no other.
	secrets map[client.ObjectKey]bool
}

func (c *changes) empty() bool {
	return !c.full && len(c.services) == 0 && len(c.identities) == 0 && len(c.meshes) == 0 && len(c.secrets) == 0
}

// New returns a runner.
func New(opts Options) *Runner {
	if opts.Quiet == 0 {
		opts.Quiet = 50 * time.Millisecond
	}
	if opts.MaxDelay == 0 {
		opts.MaxDelay = 500 * time.Millisecond
	}
	r := &Runner{
		opts: opts, kick: make(chan struct{}, 1),
		deps: map[string]map[mesh.ServiceKey]bool{}, checked: map[string]string{}, trust: map[string]cache.Trust{}, last: map[string]lastModel{}, failing: map[string]failure{},
	}
	r.dirty = changes{full: true}
	return r
}

// Failing returns the groups whose last translation failed, per namespace.
func (r *Runner) Failing() census.Failing {
	r.fmu.Lock()
	defer r.fmu.Unlock()
	out := census.Failing{}
	for group, f := range r.failing {
		out.Fail(f.namespace, group, f.err)
	}
	return out
}

// NeedLeaderElection is false: every replica serves the same snapshots.
func (r *Runner) NeedLeaderElection() bool { return false }

// watched are the types the model is built from, and how a change of each is
// classified.
var watched = []struct {
	obj client.Object
	// classify notes what a change of obj touches; other is its other
	// version on an update, nil on an add or a delete; trustNamespace is
	// the operator's (Options.TrustNamespace).
	classify func(other, obj any, c *changes, trustNamespace string)
}{
	// A change of these can change any group: nil means a full sync.
	{&meshv1alpha1.MeshInstance{}, nil},
	{&meshv1alpha1.MeshMember{}, nil},
	{&meshv1alpha1.MeshVM{}, nil},
	{&corev1.Namespace{}, nil},
	// A TrafficTarget changes the inbound policy of its destination and
	// what its sources may call: the groups of those identities.
	{&accessv1alpha3.TrafficTarget{}, func(other, obj any, c *changes, _ string) {
		if tt, ok := obj.(*accessv1alpha3.TrafficTarget); ok && !sameGeneration(other, obj) {
			d := tt.Spec.Destination
			c.identities[mesh.Identity{Namespace: cmp.Or(d.Namespace, tt.Namespace), ServiceAccount: d.Name}] = true
			for _, s := range tt.Spec.Sources {
				c.identities[mesh.Identity{Namespace: cmp.Or(s.Namespace, tt.Namespace), ServiceAccount: s.Name}] = true
			}
		}
	}},
	{&specsv1alpha4.HTTPRouteGroup{}, specChanged},
	{&specsv1alpha4.TCPRoute{}, specChanged},
	{&splitv1alpha4.TrafficSplit{}, specChanged},
	{&policyv1alpha1.IngressBackend{}, specChanged},
	{&policyv1alpha1.Egress{}, specChanged},
	{&meshv1alpha1.ResiliencePolicy{}, specChanged},
	{&policyv1alpha1.UpstreamTrafficSetting{}, specChanged},
	{&policyv1alpha1.Retry{}, specChanged},
	// Gateway API routes: a cluster without their CRDs has none (mesh.Absent).
	{&gwv1.HTTPRoute{}, specChanged},
	{&gwv1.GRPCRoute{}, specChanged},
	{&gwv1beta1.ReferenceGrant{}, nil},
	{&corev1.Service{}, func(_, obj any, c *changes, _ string) {
		if s, ok := obj.(*corev1.Service); ok {
			c.services[mesh.ServiceKey{Namespace: s.Namespace, Name: s.Name}] = true
		}
	}},
	{&discoveryv1.EndpointSlice{}, func(_, obj any, c *changes, _ string) {
		if es, ok := obj.(*discoveryv1.EndpointSlice); ok {
			c.services[mesh.ServiceKey{Namespace: es.Namespace, Name: es.Labels[discoveryv1.LabelServiceName]}] = true
		}
	}},
	{&corev1.Pod{}, func(other, obj any, c *changes, _ string) {
		if p, ok := obj.(*corev1.Pod); ok {
			id := mesh.Identity{Namespace: p.Namespace, ServiceAccount: mesh.ServiceAccountOf(p.Spec.ServiceAccountName)}
			c.identities[id] = true
			if o, ok := other.(*corev1.Pod); !ok || endpointsMayMove(o, p) {
				c.workloads[id] = true
			}
		}
	}},
	{&corev1.Secret{}, func(_, obj any, c *changes, trustNamespace string) {
		s, ok := obj.(*corev1.Secret)
		switch {
		case !ok:
		case s.Labels[meshv1alpha1.TrustBundleSecretLabel] != "" && s.Namespace == trustNamespace:
			// Only the operator's namespace's is read: the label on a
			// Secret elsewhere, anyone's to write, changes nothing.
			c.meshes[s.Labels[meshv1alpha1.TrustBundleSecretLabel]] = true
		case meshv1alpha1.IsIdentitySecretName(s.Name):
			// Noted by name, which the sync matches against the name each
			// group's service account gives (a hashed name does not spell
			// it out, and its annotation is anyone's to write): a Secret
			// that is no group's touches none.
			c.secrets[client.ObjectKeyFromObject(s)] = true
		}
	}},
}

// specChanged is a full sync unless an update keeps the object's
// generation: the status of a policy, which the leader writes as it judges
// the policy, is in no proxy's config.
func specChanged(other, obj any, c *changes, _ string) {
	if !sameGeneration(other, obj) {
		c.full = true
	}
}

// sameGeneration says that an update kept the object's generation: only
// its status or metadata changed.
func sameGeneration(other, obj any) bool {
	o, ok1 := other.(client.Object)
	n, ok2 := obj.(client.Object)
	return ok1 && ok2 && n.GetGeneration() != 0 && o.GetGeneration() == n.GetGeneration()
}

// Start watches the informers and syncs until ctx ends.
func (r *Runner) Start(ctx context.Context) error {
	for _, w := range watched {
		// Not waiting here: the informers list at once, and
		// WaitForCacheSync below waits for all of them. Waiting for each in
		// turn made a cold start list 11 types one after another.
		inf, err := r.opts.Cache.GetInformer(ctx, w.obj, ctrlcache.BlockUntilSynced(false))
		if mesh.Absent(w.obj, err) {
			r.opts.Log.Info("The cluster serves no such kind; the mesh reads none until the operator restarts after its CRD is installed", "kind", fmt.Sprintf("%T", w.obj))
			continue
		}
		if err != nil {
			return fmt.Errorf("watching %T: %w", w.obj, err)
		}
		classify := w.classify
		note := func(other, obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			r.mu.Lock()
			if classify == nil {
				r.dirty.full = true
			} else {
				r.ensureMaps()
				classify(other, obj, &r.dirty, r.opts.TrustNamespace)
			}
			r.mu.Unlock()
			r.poke()
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { note(nil, obj) },
			UpdateFunc: func(old, obj any) { note(obj, old); note(old, obj) },
			DeleteFunc: func(obj any) { note(nil, obj) },
		}); err != nil {
			return fmt.Errorf("watching %T: %w", w.obj, err)
		}
	}
	if !r.opts.Cache.WaitForCacheSync(ctx) {
		return fmt.Errorf("the informer cache did not sync")
	}
	r.poke()
	failedSyncs := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.kick:
		}
		r.coalesce(ctx)
		r.mu.Lock()
		c := r.dirty
		r.dirty = changes{}
		r.mu.Unlock()
		if c.empty() {
			continue
		}
		if err := r.sync(ctx, c); err != nil {
			failedSyncs++
			wait := retryBackoff(failedSyncs)
			syncErrors.Inc()
			syncFailing.Set(1)
			r.opts.Log.Error(err, "Failed to sync xDS snapshots; retrying", "attempt", failedSyncs, "in", wait.String())
			r.mu.Lock()
			r.dirty.full = true // everything, on the retry or the next change
			r.mu.Unlock()
			time.AfterFunc(wait, r.poke)
			continue
		}
		if failedSyncs > 0 {
			r.opts.Log.Info("Synced xDS snapshots again", "failedAttempts", failedSyncs)
		}
		failedSyncs = 0
		syncFailing.Set(0)
	}
}

// retryBackoff is how long the runner waits to retry after its n-th failed
// sync in a row: 100 ms doubling to 30 s. A change that arrives meanwhile
// is synced at once, as always.
func retryBackoff(n int) time.Duration {
	return min(100*time.Millisecond<<min(n-1, 9), 30*time.Second)
}

// poke wakes the runner's loop, unless it is awake already.
func (r *Runner) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *Runner) ensureMaps() {
	if r.dirty.services == nil {
		r.dirty.services = map[mesh.ServiceKey]bool{}
	}
	if r.dirty.identities == nil {
		r.dirty.identities = map[mesh.Identity]bool{}
	}
	if r.dirty.workloads == nil {
		r.dirty.workloads = map[mesh.Identity]bool{}
	}
	if r.dirty.meshes == nil {
		r.dirty.meshes = map[string]bool{}
	}
	if r.dirty.secrets == nil {
		r.dirty.secrets = map[client.ObjectKey]bool{}
	}
}

// coalesce waits until no change arrived for Quiet, or MaxDelay passed.
func (r *Runner) coalesce(ctx context.Context) {
	deadline := time.NewTimer(r.opts.MaxDelay)
	defer deadline.Stop()
	quiet := time.NewTimer(r.opts.Quiet)
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-quiet.C:
			return
		case <-r.kick:
			quiet.Reset(r.opts.Quiet)
		}
	}
}

// endpointsMayMove says whether a pod's update, from o to p, may change the
// endpoints the model resolves to it: what makes it meshed (labels,
// annotations), its addresses, its phase and its deletion. Its status's
// other churn (conditions, container states) changes none.
func endpointsMayMove(o, p *corev1.Pod) bool {
	return !maps.Equal(o.Labels, p.Labels) || !maps.Equal(o.Annotations, p.Annotations) ||
		o.Status.Phase != p.Status.Phase || o.Status.PodIP != p.Status.PodIP ||
		!slices.Equal(o.Status.PodIPs, p.Status.PodIPs) || o.DeletionTimestamp.IsZero() != p.DeletionTimestamp.IsZero()
}
