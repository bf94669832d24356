package controllers_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/stdr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/open-service-mesh/osm-operator/controllers"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/internal/testenv/certmanager"
)

// The suite runs a real API server, cert-manager's real controllers and the
// operator's reconcilers in a manager, as a cluster would.
var (
	env *testenv.Env
	k8s client.Client
)

const operatorNamespace = "osm-system"

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctrllog.SetLogger(stdr.New(nil).V(0))
	klog.SetLogger(logr.Discard()) // cert-manager's controllers log through klog
	var err error
	if env, err = testenv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

func start(ctx context.Context) error {
	k8s = env.Client
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}}); err != nil {
		return err
	}
	if err := certmanager.Start(ctx, env.Environment); err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, Cache: controllers.CacheOptions(operatorNamespace)})
	if err != nil {
		return err
	}
	if err := controllers.SetupWithManager(mgr, controllers.Options{
		Namespace: operatorNamespace, ClusterResourceNamespace: certmanager.ClusterResourceNamespace,
		RootClock: func(mesh string) time.Time {
			if d, ok := rootClockAhead.Load(mesh); ok {
				return time.Now().Add(d.(time.Duration))
			}
			return time.Now()
		},
	}); err != nil {
		return err
	}
	go func() {
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()
	return nil
}

var seq atomic.Int32

// rootClockAhead moves the clock a mesh's bootstrapped root is judged by
// ahead, by mesh name.
var rootClockAhead sync.Map

func newNamespace(t *testing.T, labels map[string]string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("member-%d", seq.Add(1)), Labels: labels}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}
