// Command mesh is the demo itself (`make demo` runs it through its launcher,
// hack/demo, which builds it and the control plane first): with the test
// control plane (kube-apiserver, etcd and kube-controller-manager built by
// hack/build-envtest.sh), cert-manager's controllers, a simulated node and
// the operator binary, it brings up a working mesh on this machine with no
// cluster; then it applies the bookstore sample, connects proxies with the
// certificates the mesh issued, and shows the mesh's state and one proxy's
// config. It keeps running until Ctrl-C, then cleans up.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/open-service-mesh/osm-operator/hack/demo/progress"
	"github.com/open-service-mesh/osm-operator/internal/simnode"
	"github.com/open-service-mesh/osm-operator/internal/summary"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/internal/testenv/certmanager"
)

// options are what the launcher built and when it started.
type options struct {
	once bool
	// rotate rotates the mesh to a new root after showing it.
	rotate bool
	// assets is the directory of kube-apiserver, etcd and kube-controller-manager.
	assets string
	// operator is the operator's binary.
	operator string
	// started is when the demo started: the progress lines count from it.
	started time.Time
	// logs is the directory of the operator's and kube-controller-manager's
	// logs; empty, the demo's temporary directory (removed when it ends).
	logs string
}

func main() {
	var o options
	var startedSec int64
	flag.BoolVar(&o.once, "once", false, "Exit after showing the mesh instead of running until Ctrl-C.")
	flag.BoolVar(&o.rotate, "rotate", false, "After showing the mesh, rotate it to a new self-signed root through the rotation's phases, and time it.")
	flag.StringVar(&o.assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"), "The directory of kube-apiserver, etcd and kube-controller-manager (hack/build-envtest.sh kube-controller-manager prints it).")
	flag.StringVar(&o.operator, "operator", "", "The operator's binary (go build ./cmd).")
	flag.Int64Var(&startedSec, "started", 0, "When the demo started, in Unix seconds: the progress lines count from it (default now).")
	flag.StringVar(&o.logs, "logs", "", "The directory of the operator's and kube-controller-manager's logs, kept after the demo ends (default a temporary directory, removed).")
	flag.Parse()
	o.started = time.Now()
	if startedSec > 0 {
		o.started = time.Unix(startedSec, 0)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := progress.New(os.Stdout, o.started)
	if err := checkOptions(o); err != nil {
		p.Step("FAILED: %v", err)
		os.Exit(2)
	}
	// The operator's log is new each run: a failure shows this run's lines.
	if err := run(ctx, p, os.Stdout, o); err != nil {
		if o.logs == "" {
			p.Step("FAILED: %v", err)
		} else {
			p.Failed("", err, filepath.Join(o.logs, operatorLog))
		}
		os.Exit(1)
	}
}

// The logs of the processes the demo starts.
const (
	operatorLog = "osm-operator.log"
	kcmLog      = "kube-controller-manager.log"
)

// checkOptions says what is missing to run the demo.
func checkOptions(o options) error {
	if o.assets == "" {
		return errors.New("no test control plane: pass -assets or set KUBEBUILDER_ASSETS to the directory hack/build-envtest.sh kube-controller-manager prints (or run make demo)")
	}
	for _, bin := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		if _, err := os.Stat(filepath.Join(o.assets, bin)); err != nil {
			return fmt.Errorf("the test control plane in %s has no %s (hack/build-envtest.sh kube-controller-manager builds it): %w", o.assets, bin, err)
		}
	}
	if o.operator == "" {
		return errors.New("no operator binary: pass -operator with the binary go build ./cmd writes (or run make demo)")
	}
	if _, err := os.Stat(o.operator); err != nil {
		return fmt.Errorf("the operator binary: %w", err)
	}
	return nil
}

func run(ctx context.Context, p *progress.Printer, out io.Writer, o options) error {
	ctrllog.SetLogger(logr.Discard())
	klog.SetLogger(logr.Discard())
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "osm-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logs := o.logs
	if logs == "" {
		logs = dir
	}
	kcmOut, err := logFile(logs, kcmLog)
	if err != nil {
		return err
	}
	defer kcmOut.Close()
	opOut, err := logFile(logs, operatorLog)
	if err != nil {
		return err
	}
	defer opOut.Close()

	assets, operatorBin := o.assets, o.operator
	if err := os.Setenv("KUBEBUILDER_ASSETS", assets); err != nil {
		return err
	}

	p.Step("starting kube-apiserver and etcd with the mesh, SMI, Gateway API and cert-manager CRDs and the operator's webhooks")
	env, err := testenv.StartWithWebhooks()
	if err != nil {
		return err
	}
	defer func() { _ = env.Stop() }()
	p.Step("control plane up: kube-apiserver at %s", env.Config.Host)
	user, err := env.AddUser(envtest.User{Name: "demo-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	raw, err := user.KubeConfig()
	if err == nil {
		err = os.WriteFile(kubeconfig, raw, 0o600)
	}
	if err != nil {
		return fmt.Errorf("writing the kubeconfig: %w", err)
	}
	// The processes stop before the API server does (defers run last first).
	ctx, cancel := context.WithCancel(ctx)
	var procs []*exec.Cmd
	defer func() {
		cancel()
		for _, p := range procs {
			_ = p.Wait()
		}
	}()
	k := env.Client
	for _, ns := range []string{"osm-system", certmanager.ClusterResourceNamespace} {
		if err := k.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}

	p.Step("starting kube-controller-manager (Deployments, ReplicaSets, EndpointSlices), a simulated node and cert-manager")
	kcm := command(ctx, dir, kcmOut, filepath.Join(assets, "kube-controller-manager"),
		"--kubeconfig="+kubeconfig, "--controllers=deployment,replicaset,endpointslice,garbagecollector",
		"--leader-elect=false", "--secure-port=0", "--use-service-account-credentials=false")
	if err := kcm.Start(); err != nil {
		return fmt.Errorf("starting kube-controller-manager: %w", err)
	}
	procs = append(procs, kcm)
	if err := simnode.Start(ctx, env.Config, env.Scheme, "10.244.0.0/16", logr.Discard()); err != nil {
		return err
	}
	if err := certmanager.Start(ctx, env.Environment); err != nil {
		return err
	}

	xdsAddr, debugAddr := freeAddr(), freeAddr()
	p.Step("starting the operator: xDS on %s, webhooks on port %d, logs in %s", xdsAddr, env.WebhookInstallOptions.LocalServingPort, opOut.Name())
	op := command(ctx, dir, opOut, operatorBin,
		"--metrics-bind-address=0", "--health-probe-bind-address=0",
		"--xds-address="+xdsAddr, "--xds-debug-address="+debugAddr,
		fmt.Sprintf("--webhook-port=%d", env.WebhookInstallOptions.LocalServingPort),
		"--webhook-cert-dir="+env.WebhookInstallOptions.LocalServingCertDir,
		"--cert-manager-namespace="+certmanager.ClusterResourceNamespace)
	op.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "POD_NAMESPACE=osm-system", "POD_NAME=osm-operator-demo")
	if err := op.Start(); err != nil {
		return fmt.Errorf("starting the operator: %w", err)
	}
	procs = append(procs, op)

	p.Step("applying the bookstore sample (config/samples/bookstore)")
	if err := applySample(ctx, k, filepath.Join(root, "config", "samples", "bookstore")); err != nil {
		return err
	}
	if err := waitForMesh(ctx, k, p); err != nil {
		return err
	}
	if err := applyRoutes(ctx, k, filepath.Join(root, "config", "samples", "gateway-api"), p); err != nil {
		return err
	}
	p.Step("connecting the bookbuyer and bookstore sidecars and the VM's proxy with the certificates cert-manager issued")
	proxies, err := connectProxies(ctx, k, xdsAddr)
	if err != nil {
		return err
	}
	defer proxies.close()
	if err := waitForProxies(ctx, k); err != nil {
		return err
	}
	p.Step("the proxies acknowledged their config: every policy says where it is enforced")
	if err := waitForEnforced(ctx, k); err != nil {
		return err
	}

	fmt.Fprintln(out)
	if err := summary.Write(ctx, k, out); err != nil {
		return err
	}
	fmt.Fprintln(out)
	proxies.show(out)
	fmt.Fprintln(out)
	if err := showPaths(ctx, k, proxies, out); err != nil {
		return fmt.Errorf("the ways in and out of the mesh: %w", err)
	}
	fmt.Fprintln(out)
	proxies.showRoutes(out)
	fmt.Fprintln(out)
	if err := proxies.checkRules(out); err != nil {
		return fmt.Errorf("a proxy's config breaks Envoy's load rules: %w", err)
	}
	fmt.Fprintln(out)
	if err := explainRequests(ctx, k, operatorBin, kubeconfig, out); err != nil {
		return err
	}
	if o.rotate {
		if err := rotateRoot(ctx, k, proxies, p, out); err != nil {
			return fmt.Errorf("rotating the mesh's root: %w", err)
		}
	}
	fmt.Fprintf(out, "\nThe mesh is running. Use it with:\n  export KUBECONFIG=%s\n  kubectl get meshinstances,meshmembers,meshvms -A\n  curl -s http://%s/debug/xds/proxies\n", kubeconfig, debugAddr)
	if o.once {
		return nil
	}
	fmt.Fprintln(out, "Ctrl-C stops it and removes everything.")
	<-ctx.Done()
	p.Step("stopping")
	return nil
}

func command(ctx context.Context, dir string, logs io.Writer, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, logs, logs
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// logFile creates (or empties) a process's log.
func logFile(dir, name string) (*os.File, error) {
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("creating the log of %s: %w", strings.TrimSuffix(name, ".log"), err)
	}
	return f, nil
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// applySample applies the sample as a user would, namespaces first.
func applySample(ctx context.Context, k client.Client, dir string) error {
	objs, err := testenv.Kustomize(dir)
	if err != nil {
		return err
	}
	apply := func(u *unstructured.Unstructured) error {
		return retry(ctx, 30*time.Second, func() error {
			return k.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("demo"), client.ForceOwnership)
		})
	}
	for _, namespaces := range []bool{true, false} {
		for _, u := range objs {
			if (u.GetKind() == "Namespace") != namespaces {
				continue
			}
			if err := apply(u); err != nil {
				return fmt.Errorf("applying %s %s: %w", u.GetKind(), u.GetName(), err)
			}
		}
	}
	return nil
}

// retry calls f until it succeeds or timeout passes (the webhooks may not
// be serving yet).
func retry(ctx context.Context, timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}
