package config_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/open-service-mesh/osm-operator/internal/testenv"
)

// TestInstallManifests renders config/default as `make build-installer` does
// and has the API server accept every object (server-side apply, dry run),
// after checking that the installation has what a production operator
// needs.
func TestInstallManifests(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := testenv.Kustomize(filepath.Join(root, "config", "default"))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string][]string{}
	var deploy appsv1.Deployment
	for _, o := range objs {
		kinds[o.GetKind()] = append(kinds[o.GetKind()], o.GetName())
		if o.GetKind() == "Deployment" {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &deploy); err != nil {
				t.Fatal(err)
			}
		}
		if ns := o.GetNamespace(); ns != "" && ns != "osm-system" {
			t.Errorf("%s %s is in namespace %s, not osm-system", o.GetKind(), o.GetName(), ns)
		}
	}
	for kind, want := range map[string][]string{
		"Namespace":                      {"osm-system"},
		"Deployment":                     {"osm-operator-controller-manager"},
		"PodDisruptionBudget":            {"osm-operator-controller-manager"},
		"Service":                        {"osm-operator-metrics", "osm-operator-webhook-service", "osm-operator-xds"},
		"Issuer":                         {"osm-operator-selfsigned-issuer"},
		"Certificate":                    {"osm-operator-serving-cert"},
		"MutatingWebhookConfiguration":   {"osm-operator-mutating-webhook-configuration"},
		"ValidatingWebhookConfiguration": {"osm-operator-validating-webhook-configuration"},
		"ClusterRole":                    {"osm-operator-manager-role", "osm-operator-metrics-auth-role", "osm-operator-metrics-reader"},
	} {
		got := slices.Sorted(slices.Values(kinds[kind]))
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", kind, got, want)
		}
	}
	if n := len(kinds["CustomResourceDefinition"]); n != 15 {
		t.Errorf("%d CRDs, want 15 (4 of the mesh API, 4 of the policy API, 4 of SMI, 3 of Gateway API)", n)
	}
	for _, name := range []string{"httproutes.gateway.networking.k8s.io", "grpcroutes.gateway.networking.k8s.io", "referencegrants.gateway.networking.k8s.io"} {
		if !slices.Contains(kinds["CustomResourceDefinition"], name) {
			t.Errorf("CRD %s is not installed", name)
		}
	}

	spec := deploy.Spec.Template.Spec
	if deploy.Spec.Replicas == nil || *deploy.Spec.Replicas != 2 {
		t.Errorf("replicas %v, want 2", deploy.Spec.Replicas)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("containers %v", spec.Containers)
	}
	c := spec.Containers[0]
	sc := c.SecurityContext
	if !slices.Contains(c.Args, "--leader-elect") {
		t.Errorf("args %v: leader election is off", c.Args)
	}
	if spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot ||
		sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("security contexts: pod %+v, container %+v", spec.SecurityContext, sc)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v", c.Resources)
	}

	ctx := context.Background()
	ensureNamespace(t, "osm-system")
	for _, o := range objs {
		err := env.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.DryRunAll, client.FieldOwner("install-test"), client.ForceOwnership)
		if err != nil {
			t.Errorf("%s %s is refused: %v", o.GetKind(), o.GetName(), err)
		}
	}
}

func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// TestProxylessExampleIsAccepted sends examples/proxyless-grpc to the API
// server (namespace for real, the rest as a dry run).
func TestProxylessExampleIsAccepted(t *testing.T) {
	ctx := context.Background()
	objs := readManifests(t, filepath.Join("..", "examples", "proxyless-grpc"))
	if len(objs) < 9 {
		t.Fatalf("%d objects in the example", len(objs))
	}
	ensureNamespace(t, "shop")
	for _, o := range objs {
		if o.GetKind() == "Namespace" {
			continue
		}
		if err := env.Client.Create(ctx, o, client.DryRunAll); err != nil {
			t.Errorf("%s %s is refused: %v", o.GetKind(), o.GetName(), err)
		}
	}
}
