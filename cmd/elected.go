package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/open-service-mesh/osm-operator/controllers"
)

// leaderElectionID names the leader Lease.
const leaderElectionID = "osm-operator.mesh.openservicemesh.io"

// electedReconcilers run the reconcilers on the replica that holds the
// leader Lease, in a manager of their own over the replica's cache.
//
// controller-runtime ends a manager that loses its Lease. Were the xDS
// server and the webhooks in that manager, an API server outage longer than
// the renew deadline would end them too, and cut every proxy of the replica
// off its control plane. Here it ends only the reconcilers: the replica goes
// on serving from its cache and stands for election again.
type electedReconcilers struct {
	cfg    *rest.Config
	scheme *runtime.Scheme
	// cache is the replica's, started and synced by its manager.
	cache cache.Cache
	// namespace holds the leader Lease.
	namespace string
	opts      controllers.Options
	log       logr.Logger
}

// NeedLeaderElection is false: the runnable stands for election itself.
func (e *electedReconcilers) NeedLeaderElection() bool { return false }

// Start stands for election and runs the reconcilers while elected, until
// ctx ends.
func (e *electedReconcilers) Start(ctx context.Context) error {
	for {
		term := &termCache{Cache: e.cache}
		mgr, err := ctrl.NewManager(e.cfg, ctrl.Options{
			Scheme:                  e.scheme,
			Metrics:                 metricsserver.Options{BindAddress: "0"},
			LeaderElection:          true,
			LeaderElectionID:        leaderElectionID,
			LeaderElectionNamespace: e.namespace,
			// A replica that stops (a rollout, a drain) hands over at once
			// instead of after the lease expires.
			LeaderElectionReleaseOnCancel: true,
			NewCache:                      func(*rest.Config, cache.Options) (cache.Cache, error) { return term, nil },
			// Each term registers the same controllers again.
			Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		})
		if err != nil {
			return fmt.Errorf("creating the reconcilers' manager: %w", err)
		}
		if err := controllers.SetupReconcilers(mgr, e.opts); err != nil {
			return err
		}
		err = mgr.Start(ctx)
		if rmErr := term.end(); rmErr != nil {
			e.log.Error(rmErr, "Removing the event handlers of the reconcilers' term")
		}
		if ctx.Err() != nil {
			return nil
		}
		if err == nil || !strings.Contains(err.Error(), "leader election lost") {
			return err
		}
		e.log.Info("Lost the leader Lease: the reconcilers stopped; this replica goes on serving xDS and stands for election again")
	}
}

// termCache is the replica's cache as the reconcilers of one term see it.
// The replica's manager starts it: a manager of a term waits for it to sync
// and never starts it again. The event handlers a term adds to its informers
// are removed when the term ends, so that the next term's are the only ones.
type termCache struct {
	cache.Cache

	mu       sync.Mutex
	handlers []handler
}

type handler struct {
	informer     cache.Informer
	registration toolscache.ResourceEventHandlerRegistration
}

// Start waits for ctx to end.
func (*termCache) Start(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

func (c *termCache) GetInformer(ctx context.Context, obj client.Object, opts ...cache.InformerGetOption) (cache.Informer, error) {
	i, err := c.Cache.GetInformer(ctx, obj, opts...)
	if err != nil {
		return nil, err
	}
	return &termInformer{Informer: i, term: c}, nil
}

func (c *termCache) GetInformerForKind(ctx context.Context, gvk schema.GroupVersionKind, opts ...cache.InformerGetOption) (cache.Informer, error) {
	i, err := c.Cache.GetInformerForKind(ctx, gvk, opts...)
	if err != nil {
		return nil, err
	}
	return &termInformer{Informer: i, term: c}, nil
}

func (c *termCache) added(i cache.Informer, r toolscache.ResourceEventHandlerRegistration, err error) (toolscache.ResourceEventHandlerRegistration, error) {
	if err == nil {
		c.mu.Lock()
		c.handlers = append(c.handlers, handler{informer: i, registration: r})
		c.mu.Unlock()
	}
	return r, err
}

// end removes the event handlers the term added.
func (c *termCache) end() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, h := range c.handlers {
		errs = append(errs, h.informer.RemoveEventHandler(h.registration))
	}
	c.handlers = nil
	return errors.Join(errs...)
}

// termInformer records the event handlers added to an informer in a term.
type termInformer struct {
	cache.Informer
	term *termCache
}

func (i *termInformer) AddEventHandler(h toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	r, err := i.Informer.AddEventHandler(h)
	return i.term.added(i.Informer, r, err)
}

func (i *termInformer) AddEventHandlerWithResyncPeriod(h toolscache.ResourceEventHandler, resync time.Duration) (toolscache.ResourceEventHandlerRegistration, error) {
	r, err := i.Informer.AddEventHandlerWithResyncPeriod(h, resync)
	return i.term.added(i.Informer, r, err)
}

func (i *termInformer) AddEventHandlerWithOptions(h toolscache.ResourceEventHandler, o toolscache.HandlerOptions) (toolscache.ResourceEventHandlerRegistration, error) {
	r, err := i.Informer.AddEventHandlerWithOptions(h, o)
	return i.term.added(i.Informer, r, err)
}
