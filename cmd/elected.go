package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
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
		mgr, err := ctrl.NewManager(e.cfg, ctrl.Options{
			Scheme:                  e.scheme,
			Metrics:                 metricsserver.Options{BindAddress: "0"},
			LeaderElection:          true,
			LeaderElectionID:        leaderElectionID,
			LeaderElectionNamespace: e.namespace,
			// A replica that stops (a rollout, a drain) hands over at once
			// instead of after the lease expires.
			LeaderElectionReleaseOnCancel: true,
			NewCache: func(*rest.Config, cache.Options) (cache.Cache, error) {
				return startedCache{e.cache}, nil
			},
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
		if ctx.Err() != nil {
			return nil
		}
		if err == nil || !strings.Contains(err.Error(), "leader election lost") {
			return err
		}
		e.log.Info("Lost the leader Lease: the reconcilers stopped; this replica goes on serving xDS and stands for election again")
	}
}

// startedCache is a cache that another manager starts: a manager that holds
// it waits for it to sync, and never starts it again.
type startedCache struct{ cache.Cache }

// Start waits for ctx to end.
func (startedCache) Start(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
