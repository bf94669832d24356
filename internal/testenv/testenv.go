// Package testenv starts the real test control plane (kube-apiserver and etcd,
// through controller-runtime's envtest) with every CRD the operator works with
// installed: its own, the SMI CRDs, the Gateway API routes (GAMMA) and
// cert-manager's.
//
// The binaries are built from source by hack/build-envtest.sh (`make envtest`).
// When they are missing, Start fails and says how to build them: tests never
// skip silently.
package testenv

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/open-service-mesh/osm-operator/internal/manifests"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

// certManagerModule is the Go module whose deploy/crds/ holds cert-manager's CRDs.
const certManagerModule = "github.com/cert-manager/cert-manager"

// Env is a running test control plane.
type Env struct {
	*envtest.Environment
	Config *rest.Config
	Client client.Client
	Scheme *k8sruntime.Scheme
	// certDir holds the API server's serving certificates and its client
	// CA. It is the test's, not envtest's, so that they outlive a restart
	// and clients keep trusting the server and being trusted.
	certDir string
}

// StopAPIServer stops kube-apiserver as a kubelet would: SIGTERM, then its
// graceful shutdown. etcd keeps running.
func (e *Env) StopAPIServer() error {
	if err := e.ControlPlane.GetAPIServer().Stop(); err != nil {
		return fmt.Errorf("stopping kube-apiserver: %w", err)
	}
	return nil
}

// StartAPIServer starts kube-apiserver again after StopAPIServer, on the
// same address with the same certificates, over the same etcd. It returns
// once the server answers its health check.
func (e *Env) StartAPIServer() error {
	if err := e.ControlPlane.GetAPIServer().Start(); err != nil {
		return fmt.Errorf("starting kube-apiserver again: %w", err)
	}
	return nil
}

// Stop stops the control plane and removes its certificates.
func (e *Env) Stop() error {
	err := e.Environment.Stop()
	if rmErr := os.RemoveAll(e.certDir); rmErr != nil && err == nil {
		err = rmErr
	}
	return err
}

// Scheme returns a scheme with the Kubernetes built-in types, the SMI types,
// cert-manager's types and the mesh API.
func Scheme() *k8sruntime.Scheme {
	s := k8sruntime.NewScheme()
	utilruntime.Must(mesh.AddToScheme(s)) // Kubernetes, SMI and the mesh API
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	utilruntime.Must(cmapi.AddToScheme(s))
	return s
}

// Start starts kube-apiserver and etcd and installs the CRDs. Call Stop when done.
func Start() (*Env, error) { return start(false, Options{}) }

// Options change the test control plane.
type Options struct {
	// ServiceClusterIPRange is the API server's Service CIDR; envtest's
	// default, a /24, holds only 254 Services.
	ServiceClusterIPRange string
	// AdmissionPlugins are enabled besides the API server's defaults.
	AdmissionPlugins []string
}

// StartWith is Start with options.
func StartWith(o Options) (*Env, error) { return start(false, o) }

// StartWithWebhooks is Start with the project's admission webhook
// configurations, rendered from config/webhook as an installation renders
// them, registered to call a webhook server the test runs at
// Env.WebhookInstallOptions' LocalServingHost, LocalServingPort and
// LocalServingCertDir.
func StartWithWebhooks() (*Env, error) { return start(true, Options{}) }

func start(webhooks bool, o Options) (*Env, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	assets, err := binaryAssets(root)
	if err != nil {
		return nil, err
	}
	cmCRDs, err := certManagerCRDs()
	if err != nil {
		return nil, err
	}
	scheme := Scheme()
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths: []string{
			filepath.Join(root, "config", "crd", "bases"),
			filepath.Join(root, "config", "crd", "smi"),
			filepath.Join(root, "config", "crd", "gateway-api"),
			cmCRDs,
		},
		ErrorIfCRDPathMissing:    true,
		Scheme:                   scheme,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	api := env.ControlPlane.GetAPIServer()
	// Watches end when the server stops, as they do in a rolling restart;
	// without a grace period they hold its shutdown for a minute.
	api.Configure().Set("shutdown-watch-termination-grace-period", "2s")
	if o.ServiceClusterIPRange != "" {
		api.Configure().Set("service-cluster-ip-range", o.ServiceClusterIPRange)
	}
	if len(o.AdmissionPlugins) > 0 {
		api.Configure().Set("enable-admission-plugins", strings.Join(o.AdmissionPlugins, ","))
	}
	if webhooks {
		if env.WebhookInstallOptions, err = webhookConfigurations(root); err != nil {
			return nil, err
		}
	}
	if api.CertDir, err = os.MkdirTemp("", "envtest-apiserver-"); err != nil {
		return nil, fmt.Errorf("making the API server's certificate directory: %w", err)
	}
	e := &Env{Environment: env, Scheme: scheme, certDir: api.CertDir}
	if e.Config, err = env.Start(); err != nil {
		_ = os.RemoveAll(e.certDir)
		return nil, fmt.Errorf("starting the test control plane from %s: %w", assets, err)
	}
	if e.Client, err = client.New(e.Config, client.Options{Scheme: scheme}); err != nil {
		_ = e.Stop()
		return nil, fmt.Errorf("creating a client for the test control plane: %w", err)
	}
	return e, nil
}

// RepoRoot is the directory of the project's go.mod.
func RepoRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the testenv package source")
	}
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s", file)
		}
		dir = parent
	}
}

// binaryAssets finds kube-apiserver and etcd: in KUBEBUILDER_ASSETS when set,
// else in the setup-envtest store at the version pinned in hack/envtest-versions.env.
func binaryAssets(root string) (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		store, err := Store()
		if err != nil {
			return "", err
		}
		if dir, err = storeAssets(root, store); err != nil {
			return "", err
		}
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return "", fmt.Errorf("the test control plane is not built: %s is missing from %s; "+
				"run `make envtest` (hack/build-envtest.sh, about 15 minutes once per machine) "+
				"or set KUBEBUILDER_ASSETS to a directory holding kube-apiserver and etcd", bin, dir)
		}
	}
	return dir, nil
}

// Store is the setup-envtest store hack/build-envtest.sh builds into, found
// as the script finds it: ENVTEST_STORE, else
// $XDG_DATA_HOME/kubebuilder-envtest, else
// ~/.local/share/kubebuilder-envtest.
func Store() (string, error) {
	if store := os.Getenv("ENVTEST_STORE"); store != "" {
		return store, nil
	}
	data := os.Getenv("XDG_DATA_HOME")
	if data == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("locating the envtest store: %w", err)
		}
		data = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(data, "kubebuilder-envtest"), nil
}

// StoreAssets is the directory of store that holds the control plane of the
// version pinned in hack/envtest-versions.env, for this machine's OS and
// architecture, where hack/build-envtest.sh puts it (built or not).
func StoreAssets(store string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return storeAssets(root, store)
}

func storeAssets(root, store string) (string, error) {
	version, err := pinnedVersion(filepath.Join(root, "hack", "envtest-versions.env"), "KUBE_VERSION")
	if err != nil {
		return "", err
	}
	return filepath.Join(store, "k8s", fmt.Sprintf("%s-%s-%s", version, runtime.GOOS, runtime.GOARCH)), nil
}

func pinnedVersion(file, key string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("reading pinned versions: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), key+"="); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("%s has no %s", file, key)
}

// certManagerCRDs returns deploy/crds of the cert-manager module that go.mod requires.
func certManagerCRDs() (string, error) {
	out, err := exec.Command("go", "mod", "download", "-json", certManagerModule).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return "", fmt.Errorf("downloading %s for its CRDs: %w", certManagerModule, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil {
		return "", fmt.Errorf("reading go mod download output: %w", err)
	}
	return filepath.Join(mod.Dir, "deploy", "crds"), nil
}

// Kustomize renders a kustomization directory as `kustomize build` does.
func Kustomize(dir string) ([]*unstructured.Unstructured, error) { return manifests.Kustomize(dir) }

// webhookConfigurations renders config/webhook with kustomize.
func webhookConfigurations(root string) (envtest.WebhookInstallOptions, error) {
	var o envtest.WebhookInstallOptions
	objs, err := Kustomize(filepath.Join(root, "config", "webhook"))
	if err != nil {
		return o, err
	}
	for _, u := range objs {
		switch u.GetKind() {
		case "MutatingWebhookConfiguration":
			w := &admissionregistrationv1.MutatingWebhookConfiguration{}
			if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructured(u.Object, w); err != nil {
				return o, err
			}
			o.MutatingWebhooks = append(o.MutatingWebhooks, w)
		case "ValidatingWebhookConfiguration":
			w := &admissionregistrationv1.ValidatingWebhookConfiguration{}
			if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructured(u.Object, w); err != nil {
				return o, err
			}
			o.ValidatingWebhooks = append(o.ValidatingWebhooks, w)
		}
	}
	if len(o.MutatingWebhooks) == 0 || len(o.ValidatingWebhooks) == 0 {
		return o, fmt.Errorf("config/webhook renders no webhook configurations")
	}
	return o, nil
}
