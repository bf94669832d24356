// Command osm-operator runs the OSM Operator manager: the controllers of the
// mesh.openservicemesh.io API, the admission webhooks and the xDS control plane,
// against the cluster of the current kubeconfig or of the pod it runs in.
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"flag"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/controllers"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "vm" {
		os.Exit(runVM(os.Args[2:]))
	}
	var (
		metricsAddr          string
		probeAddr            string
		enableLeaderElection bool
		secureMetrics        bool
		xdsOpts              xdsOptions
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", "0", "Address of the metrics endpoint: :8443 for HTTPS, :8080 for HTTP, 0 to turn it off.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address of the health and readiness probes.")
	flag.BoolVar(&enableLeaderElection, "leader-elect", false, "Elect a leader among replicas: only the leader writes, every replica serves xDS.")
	flag.BoolVar(&secureMetrics, "metrics-secure", true, "Serve metrics over HTTPS, authenticated and authorized by the API server.")
	flag.StringVar(&xdsOpts.certManagerNamespace, "cert-manager-namespace", "cert-manager", "cert-manager's cluster resource namespace, where the Secrets of ClusterIssuers (the mesh root CA) live.")
	flag.StringVar(&xdsOpts.address, "xds-address", ":15128", "Address of the xDS (ADS) server proxies connect to.")
	flag.StringVar(&xdsOpts.certDir, "xds-cert-dir", "", "Directory holding the xDS server's tls.crt, tls.key and the trust bundle ca.crt. Empty (the default) serves the certificates the operator has each mesh's issuer sign, from Secrets in its namespace.")
	flag.StringVar(&xdsOpts.debugAddress, "xds-debug-address", "127.0.0.1:15129", "Loopback address of the debug endpoint that shows proxies' config; empty turns it off.")
	opts := zap.Options{Development: false}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("setup")

	if err := run(ctrl.SetupSignalHandler(), ctrl.GetConfigOrDie(), metricsAddr, probeAddr, enableLeaderElection, secureMetrics, xdsOpts); err != nil {
		log.Error(err, "Operator stopped")
		os.Exit(1)
	}
}

// run runs the manager against the cluster of cfg until ctx ends.
func run(ctx context.Context, cfg *rest.Config, metricsAddr, probeAddr string, leaderElect, secureMetrics bool, xdsOpts xdsOptions) error {
	metricsOpts := metricsserver.Options{
		BindAddress:   metricsAddr,
		SecureServing: secureMetrics,
		TLSOpts:       []func(*tls.Config){func(c *tls.Config) { c.MinVersion = tls.VersionTLS12 }},
	}
	if secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 newScheme(),
		Metrics:                metricsOpts,
		HealthProbeBindAddress: probeAddr,
		LeaderElection:         leaderElect,
		LeaderElectionID:       "osm-operator.mesh.openservicemesh.io",
		Cache:                  controllers.CacheOptions(),
	})
	if err != nil {
		return err
	}
	xdsOpts.namespace = cmp.Or(xdsOpts.namespace, os.Getenv("POD_NAMESPACE"), "osm-system")
	if err := controllers.SetupWithManager(mgr, controllers.Options{
		Namespace:                xdsOpts.namespace,
		ClusterResourceNamespace: xdsOpts.certManagerNamespace,
	}); err != nil {
		return err
	}
	if err := addXDS(mgr, xdsOpts); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	ctrl.Log.WithName("setup").Info("Starting manager")
	return mgr.Start(ctx)
}

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(meshv1alpha1.AddToScheme(s))
	utilruntime.Must(mesh.AddToScheme(s))
	utilruntime.Must(cmapi.AddToScheme(s))
	return s
}
