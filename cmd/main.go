// Command osm-operator runs the OSM Operator manager: the controllers of the
// mesh.openservicemesh.io API, the admission webhooks and the xDS control plane,
// against the cluster of the current kubeconfig or of the pod it runs in.
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"flag"
	"os"
	"strconv"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/controllers"
	"github.com/open-service-mesh/osm-operator/internal/memlimit"
	"github.com/open-service-mesh/osm-operator/webhooks"
	"github.com/open-service-mesh/osm-operator/webhooks/inject"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "vm":
			os.Exit(runVM(os.Args[2:]))
		case "inject":
			os.Exit(runInject(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
		case "explain":
			os.Exit(runExplain(os.Args[2:], os.Stdout, os.Stderr, ctrl.GetConfig))
		case "status":
			os.Exit(runStatus(os.Args[2:], os.Stdout, os.Stderr, ctrl.GetConfig))
		case "plan":
			os.Exit(runPlan(os.Args[2:], os.Stdin, os.Stdout, os.Stderr, ctrl.GetConfig))
		}
	}
	var o options
	xdsOpts := &o.xds
	flag.StringVar(&o.metricsAddr, "metrics-bind-address", "0", "Address of the metrics endpoint: :8443 for HTTPS, :8080 for HTTP, 0 to turn it off.")
	flag.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the health and readiness probes.")
	flag.BoolVar(&o.leaderElect, "leader-elect", false, "Elect a leader among replicas: only the leader writes, every replica serves xDS and webhooks.")
	flag.BoolVar(&o.secureMetrics, "metrics-secure", true, "Serve metrics over HTTPS, authenticated and authorized by the API server.")
	flag.BoolVar(&o.webhooks, "webhooks", true, "Serve the admission webhooks (sidecar injection, validation); they need a serving certificate in --webhook-cert-dir.")
	flag.IntVar(&o.webhookPort, "webhook-port", 9443, "Port of the admission webhook server.")
	flag.StringVar(&o.webhookCertDir, "webhook-cert-dir", "", "Directory holding the webhook server's tls.crt and tls.key; empty means controller-runtime's default, /tmp/k8s-webhook-server/serving-certs.")
	flag.StringVar(&o.sidecarImage, "sidecar-image", inject.DefaultSidecarImage, "Envoy image of the sidecars of meshes that name none in spec.sidecar.image; by default the Envoy this operator is built for, so that upgrading the operator moves those meshes to it.")
	flag.StringVar(&o.initImage, "init-image", inject.DefaultInitImage, "Image of the init container that redirects a pod's traffic to its sidecar (needs sh and iptables-restore), for meshes that name none.")
	flag.StringVar(&xdsOpts.certManagerNamespace, "cert-manager-namespace", "cert-manager", "cert-manager's cluster resource namespace, where the Secrets of ClusterIssuers (the mesh root CA) live.")
	flag.StringVar(&xdsOpts.address, "xds-address", ":"+strconv.Itoa(meshv1alpha1.DefaultXDSPort), "Address of the xDS (ADS) server proxies connect to.")
	flag.StringVar(&xdsOpts.certDir, "xds-cert-dir", "", "Directory holding the xDS server's tls.crt, tls.key and the trust bundle ca.crt. Empty (the default) serves the certificates the operator has each mesh's issuer sign, from Secrets in its namespace.")
	flag.StringVar(&xdsOpts.clusterDomain, "cluster-domain", mesh.DefaultClusterDomain, "The cluster's DNS domain (the kubelet's --cluster-domain): Services are <name>.<namespace>.svc.<domain>.")
	flag.StringVar(&xdsOpts.debugAddress, "xds-debug-address", "127.0.0.1:15129", "Loopback address of the debug endpoint that shows proxies' config; empty turns it off.")
	opts := zap.Options{Development: false}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()

	ctrl.SetLogger(withoutBodies(zap.New(zap.UseFlagOptions(&opts))))
	log := ctrl.Log.WithName("setup")
	if soft, why := memlimit.Set(); soft > 0 {
		log.Info("Soft memory limit set", "bytes", soft, "from", why)
	} else {
		log.Info("No soft memory limit set", "because", why)
	}

	if err := run(ctrl.SetupSignalHandler(), ctrl.GetConfigOrDie(), o); err != nil {
		log.Error(err, "Operator stopped")
		os.Exit(1)
	}
}

// options are the manager's flags.
type options struct {
	metricsAddr, probeAddr     string
	leaderElect, secureMetrics bool
	webhooks                   bool
	webhookPort                int
	webhookCertDir, initImage  string
	sidecarImage               string
	xds                        xdsOptions
	// testing runs several operators in one process (controller names are
	// otherwise unique per process, for their metrics).
	testing bool
}

// run runs the manager against the cluster of cfg until ctx ends.
func run(ctx context.Context, cfg *rest.Config, o options) error {
	// Webhooks (called by the API server) and metrics (Prometheus) speak TLS 1.3.
	tlsOpts := []func(*tls.Config){func(c *tls.Config) { c.MinVersion = tls.VersionTLS13 }}
	metricsOpts := metricsserver.Options{
		BindAddress:   o.metricsAddr,
		SecureServing: o.secureMetrics,
		TLSOpts:       tlsOpts,
	}
	if o.secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	xdsOpts := o.xds
	xdsOpts.namespace = cmp.Or(xdsOpts.namespace, os.Getenv("POD_NAMESPACE"), "osm-system")
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 newScheme(),
		Metrics:                metricsOpts,
		WebhookServer:          webhook.NewServer(webhook.Options{Port: o.webhookPort, CertDir: o.webhookCertDir, TLSOpts: tlsOpts}),
		HealthProbeBindAddress: o.probeAddr,
		Cache:                  controllers.CacheOptions(xdsOpts.namespace),
		Controller:             config.Controller{SkipNameValidation: ptr.To(o.testing)},
	})
	if err != nil {
		return err
	}
	cp := newXDS(mgr, xdsOpts)
	ctlOpts := controllers.Options{
		Namespace: xdsOpts.namespace, ClusterResourceNamespace: xdsOpts.certManagerNamespace, SidecarImage: o.sidecarImage, ClusterDomain: xdsOpts.clusterDomain,
		Enforcement: cp,
	}
	if o.leaderElect {
		// Only the leader reconciles; every replica serves xDS and webhooks.
		// The Lease lives beside the operator, in or out of a cluster.
		if err := controllers.SetupIndexes(mgr.GetFieldIndexer()); err != nil {
			return err
		}
		err = mgr.Add(&electedReconcilers{
			cfg: cfg, scheme: mgr.GetScheme(), cache: mgr.GetCache(), namespace: xdsOpts.namespace, opts: ctlOpts,
			log: ctrl.Log.WithName("leader-election"),
		})
	} else {
		err = controllers.SetupWithManager(mgr, ctlOpts)
	}
	if err != nil {
		return err
	}
	if err := cp.AddTo(mgr); err != nil {
		return err
	}
	if o.webhooks {
		if err := webhooks.SetupWithManager(mgr, webhooks.Options{Namespace: xdsOpts.namespace, InitImage: o.initImage, SidecarImage: o.sidecarImage}); err != nil {
			return err
		}
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	if o.webhooks {
		if err := mgr.AddReadyzCheck("webhooks", mgr.GetWebhookServer().StartedChecker()); err != nil {
			return err
		}
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

// maxLogLevel is the most verbose level the operator logs. client-go logs
// request and response bodies from level 8, and the bodies of Secrets hold
// private keys: however verbose the flags ask for, they are never logged.
const maxLogLevel = 7

// withoutBodies is l with every level above maxLogLevel disabled.
func withoutBodies(l logr.Logger) logr.Logger {
	return logr.New(cappedSink{l.GetSink()})
}

type cappedSink struct{ logr.LogSink }

func (s cappedSink) Enabled(level int) bool { return level <= maxLogLevel && s.LogSink.Enabled(level) }

func (s cappedSink) WithValues(kv ...any) logr.LogSink {
	return cappedSink{s.LogSink.WithValues(kv...)}
}

func (s cappedSink) WithName(name string) logr.LogSink { return cappedSink{s.LogSink.WithName(name)} }

// WithCallDepth keeps the caller's file and line right.
func (s cappedSink) WithCallDepth(depth int) logr.LogSink {
	if d, ok := s.LogSink.(logr.CallDepthLogSink); ok {
		return cappedSink{d.WithCallDepth(depth)}
	}
	return s
}
