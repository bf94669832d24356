// Package certmanager runs cert-manager's real controllers against a test API
// server, so tests get certificates issued the way a cluster issues them. It
// starts the issuer, certificate and certificate-request controllers of the
// CA and SelfSigned issuers from cert-manager's public packages.
//
// It compiles slowly (cert-manager pulls in much of its tree): only test
// suites that need issuance import it.
package certmanager

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"
	"github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	crca "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	crselfsigned "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	"github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	"github.com/cert-manager/cert-manager/pkg/controller/issuers"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

// ClusterResourceNamespace is where ClusterIssuers keep their Secrets.
const ClusterResourceNamespace = "cert-manager"

// controllers are the ones a CA or SelfSigned issuer needs, by the names
// their packages register. cert-manager's default approver, which approves
// every CertificateRequest, is not among them: the mesh's issuers sign
// only what the operator approves, and the test control plane runs
// cert-manager as the README tells users to (without it), so that the
// restriction is what is tested.
var controllers = []string{
	issuers.ControllerName, clusterissuers.ControllerName,
	trigger.ControllerName, issuing.ControllerName, keymanager.ControllerName,
	requestmanager.ControllerName, readiness.ControllerName, revisionmanager.ControllerName,
	crselfsigned.CRControllerName, crca.CRControllerName,
}

// Start runs the controllers against env until ctx ends. Stopping ctx stops
// them; it returns once their informers are synced.
func Start(ctx context.Context, env *envtest.Environment) error {
	return run(ctx, env, "cert-manager", controllers)
}

// StartDefaultApprover runs cert-manager's default approver alone, as a
// cluster whose cert-manager was installed with it would, until ctx ends.
func StartDefaultApprover(ctx context.Context, env *envtest.Environment) error {
	return run(ctx, env, "cert-manager-approver", []string{approver.ControllerName})
}

func run(ctx context.Context, env *envtest.Environment, userName string, names []string) error {
	user, err := env.AddUser(envtest.User{Name: userName, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("adding a cert-manager user to the test API server: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "cert-manager-")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(user.Config())
	if err != nil {
		return err
	}
	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ClusterResourceNamespace}}, metav1.CreateOptions{})
	if err != nil && !isAlreadyExists(err) {
		return fmt.Errorf("creating the cluster resource namespace: %w", err)
	}

	factory, err := controllerpkg.NewContextFactory(ctx, options(path))
	if err != nil {
		return fmt.Errorf("building cert-manager's controller context: %w", err)
	}
	for _, name := range names {
		construct, ok := controllerpkg.Known()[name]
		if !ok {
			return fmt.Errorf("cert-manager has no controller %q", name)
		}
		c, err := construct(factory)
		if err != nil {
			return fmt.Errorf("constructing cert-manager's %s controller: %w", name, err)
		}
		go func() { _ = c.Run(2, ctx) }()
	}
	// The controllers registered their informers on the shared factories:
	// start them once all are registered.
	shared, err := factory.Build("informers")
	if err != nil {
		return err
	}
	shared.KubeSharedInformerFactory.Start(ctx.Done())
	shared.SharedInformerFactory.Start(ctx.Done())
	shared.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())
	shared.KubeSharedInformerFactory.WaitForCacheSync(ctx.Done())
	shared.SharedInformerFactory.WaitForCacheSync(ctx.Done())
	return nil
}

// options are upstream's defaults, with failure backoff shortened for tests.
func options(kubeconfig string) controllerpkg.ContextOptions {
	return controllerpkg.ContextOptions{
		Kubeconfig:         kubeconfig,
		KubernetesAPIQPS:   100,
		KubernetesAPIBurst: 200,
		IssuerOptions:      controllerpkg.IssuerOptions{ClusterResourceNamespace: ClusterResourceNamespace},
		ACMEOptions: controllerpkg.ACMEOptions{
			HTTP01SolverResourceRequestCPU:    resource.MustParse("10m"),
			HTTP01SolverResourceRequestMemory: resource.MustParse("64Mi"),
			HTTP01SolverResourceLimitsCPU:     resource.MustParse("100m"),
			HTTP01SolverResourceLimitsMemory:  resource.MustParse("64Mi"),
			DNS01CheckRetryPeriod:             10 * time.Second,
		},
		CertificateOptions: controllerpkg.CertificateOptions{
			CertificateRequestMinimumBackoffDuration: 5 * time.Second,
			CertificateRequestMaximumBackoffDuration: 30 * time.Second,
		},
		SchedulerOptions: controllerpkg.SchedulerOptions{MaxConcurrentChallenges: 60},
	}
}

func isAlreadyExists(err error) bool { return apierrors.IsAlreadyExists(err) }
