package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	semver "github.com/blang/semver/v4"
	"github.com/operator-framework/api/pkg/lib/version"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/open-service-mesh/osm-operator/internal/manifests"
	"github.com/open-service-mesh/osm-operator/webhooks/inject"
)

// Bundle identity; bump with each release.
const (
	bundleVersion = "0.1.0"
	operatorImage = "openservicemesh/osm-operator:v" + bundleVersion
	packageName   = "osm-operator"
	channel       = "alpha"
)

// writeBundle writes bundle/manifests, bundle/metadata and the scorecard
// config. OLM runs the operator itself: it creates the service account,
// RBAC and Deployment from the ClusterServiceVersion, and issues the
// webhooks' certificates, so the cert-manager objects, the webhook Service
// and the certificate volume of config/ are left out.
func writeBundle(root string, objs []*unstructured.Unstructured) error {
	dir := filepath.Join(root, "bundle")
	for _, sub := range []string{"manifests", "metadata", filepath.Join("tests", "scorecard")} {
		if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	raw, err := os.ReadFile(filepath.Join(root, "config", "manifests", "bases", "osm-operator.clusterserviceversion.yaml"))
	if err != nil {
		return err
	}
	csv := &operatorsv1alpha1.ClusterServiceVersion{}
	if err := yaml.UnmarshalStrict(raw, csv); err != nil {
		return fmt.Errorf("the CSV base: %w", err)
	}
	csv.Name = packageName + ".v" + bundleVersion
	v, err := semver.Parse(bundleVersion)
	if err != nil {
		return err
	}
	csv.Spec.Version = version.OperatorVersion{Version: v}
	csv.Annotations["containerImage"] = operatorImage
	csv.Spec.RelatedImages = []operatorsv1alpha1.RelatedImage{
		{Name: "operator", Image: operatorImage},
		{Name: "sidecar", Image: inject.DefaultSidecarImage},
		{Name: "init", Image: inject.DefaultInitImage},
	}
	examples, err := almExamples(filepath.Join(root, "config", "samples"))
	if err != nil {
		return err
	}
	csv.Annotations["alm-examples"] = examples

	install := &csv.Spec.InstallStrategy.StrategySpec
	install.DeploymentSpecs = nil
	roles := map[string][]rbacv1.PolicyRule{} // by kind/name
	var bindings []*unstructured.Unstructured
	write := func(o *unstructured.Unstructured) error {
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			return err
		}
		name := fmt.Sprintf("%s_%s.yaml", o.GetName(), strings.ToLower(o.GetKind()))
		return os.WriteFile(filepath.Join(dir, "manifests", name), y, 0o644)
	}
	for _, o := range objs {
		switch o.GetKind() {
		case "CustomResourceDefinition", "PodDisruptionBudget":
			if isGatewayAPI(o) {
				// Not OLM's to own: a cluster has one set of Gateway API
				// CRDs, installed beside the bundle (bundle/README.md).
				continue
			}
			if err := write(o); err != nil {
				return err
			}
		case "Service":
			if o.GetName() != "osm-operator-webhook-service" { // OLM makes its own
				if err := write(o); err != nil {
					return err
				}
			}
		case "ClusterRole", "Role":
			var r rbacv1.ClusterRole
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &r); err != nil {
				return err
			}
			roles[o.GetKind()+"/"+o.GetName()] = r.Rules
			if slices.ContainsFunc(r.Rules, func(p rbacv1.PolicyRule) bool { return len(p.NonResourceURLs) > 0 }) {
				if err := write(o); err != nil { // granted to scrapers, not to the operator
					return err
				}
			}
		case "ClusterRoleBinding", "RoleBinding":
			bindings = append(bindings, o)
		case "Deployment":
			d, err := bundleDeployment(o)
			if err != nil {
				return err
			}
			install.DeploymentSpecs = append(install.DeploymentSpecs, d)
		case "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration":
			hooks, err := webhookDescriptions(o)
			if err != nil {
				return err
			}
			csv.Spec.WebhookDefinitions = append(csv.Spec.WebhookDefinitions, hooks...)
		}
	}
	install.Permissions, install.ClusterPermissions = nil, nil
	for _, b := range bindings {
		var rb rbacv1.RoleBinding
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(b.Object, &rb); err != nil {
			return err
		}
		rules, ok := roles[rb.RoleRef.Kind+"/"+rb.RoleRef.Name]
		if !ok {
			return fmt.Errorf("%s %s binds %s %s, which config/default does not have", b.GetKind(), b.GetName(), rb.RoleRef.Kind, rb.RoleRef.Name)
		}
		for _, s := range rb.Subjects {
			p := operatorsv1alpha1.StrategyDeploymentPermissions{ServiceAccountName: s.Name, Rules: rules}
			if b.GetKind() == "RoleBinding" {
				install.Permissions = append(install.Permissions, p)
			} else {
				install.ClusterPermissions = append(install.ClusterPermissions, p)
			}
		}
	}
	y, err := yaml.Marshal(csv)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "manifests", packageName+".clusterserviceversion.yaml"), y, 0o644); err != nil {
		return err
	}
	annotations := map[string]any{"annotations": map[string]string{
		"operators.operatorframework.io.bundle.mediatype.v1":       "registry+v1",
		"operators.operatorframework.io.bundle.manifests.v1":       "manifests/",
		"operators.operatorframework.io.bundle.metadata.v1":        "metadata/",
		"operators.operatorframework.io.bundle.package.v1":         packageName,
		"operators.operatorframework.io.bundle.channels.v1":        channel,
		"operators.operatorframework.io.bundle.channel.default.v1": channel,
		"operators.operatorframework.io.test.config.v1":            "tests/scorecard/",
		"operators.operatorframework.io.test.mediatype.v1":         "scorecard+v1",
	}}
	if y, err = yaml.Marshal(annotations); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "metadata", "annotations.yaml"), y, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "tests", "scorecard", "config.yaml"), []byte(scorecardConfig), 0o644)
}

// bundleDeployment is the operator's Deployment as OLM runs it: without the
// cert-manager certificate volume (OLM mounts its own certificates at the
// same path) and with the released image.
func bundleDeployment(o *unstructured.Unstructured) (operatorsv1alpha1.StrategyDeploymentSpec, error) {
	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d); err != nil {
		return operatorsv1alpha1.StrategyDeploymentSpec{}, err
	}
	spec := &d.Spec.Template.Spec
	spec.Volumes = slices.DeleteFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == "webhook-cert" })
	for i := range spec.Containers {
		c := &spec.Containers[i]
		c.VolumeMounts = slices.DeleteFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "webhook-cert" })
		if c.Name == "manager" {
			c.Image = operatorImage
		}
	}
	return operatorsv1alpha1.StrategyDeploymentSpec{Name: d.Name, Spec: d.Spec, Label: d.Labels}, nil
}

// webhookDescriptions are the CSV's webhooks. OLM cannot carry a
// namespaceSelector, so the pod injector is called for every namespace; its
// failure policy is Ignore here, so that system pods never wait on it (the
// injector itself skips namespaces in no mesh).
func webhookDescriptions(o *unstructured.Unstructured) ([]operatorsv1alpha1.WebhookDescription, error) {
	typ := operatorsv1alpha1.ValidatingAdmissionWebhook
	var hooks []admissionregistrationv1.ValidatingWebhook
	var reinvocation []*admissionregistrationv1.ReinvocationPolicyType
	if o.GetKind() == "MutatingWebhookConfiguration" {
		typ = operatorsv1alpha1.MutatingAdmissionWebhook
		var m admissionregistrationv1.MutatingWebhookConfiguration
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &m); err != nil {
			return nil, err
		}
		for _, h := range m.Webhooks {
			hooks = append(hooks, admissionregistrationv1.ValidatingWebhook{
				Name: h.Name, ClientConfig: h.ClientConfig, Rules: h.Rules, SideEffects: h.SideEffects,
				TimeoutSeconds: h.TimeoutSeconds, AdmissionReviewVersions: h.AdmissionReviewVersions,
				FailurePolicy: ptr.To(admissionregistrationv1.Ignore),
			})
			reinvocation = append(reinvocation, h.ReinvocationPolicy)
		}
	} else {
		var v admissionregistrationv1.ValidatingWebhookConfiguration
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &v); err != nil {
			return nil, err
		}
		hooks = v.Webhooks
		reinvocation = make([]*admissionregistrationv1.ReinvocationPolicyType, len(hooks))
	}
	var out []operatorsv1alpha1.WebhookDescription
	for i, h := range hooks {
		var path *string
		if h.ClientConfig.Service != nil {
			path = h.ClientConfig.Service.Path
		}
		out = append(out, operatorsv1alpha1.WebhookDescription{
			GenerateName: h.Name, Type: typ, DeploymentName: "osm-operator-controller-manager",
			ContainerPort: 443, TargetPort: ptr.To(intstr.FromInt32(9443)),
			Rules: h.Rules, FailurePolicy: h.FailurePolicy, SideEffects: h.SideEffects,
			TimeoutSeconds: h.TimeoutSeconds, AdmissionReviewVersions: h.AdmissionReviewVersions,
			ReinvocationPolicy: reinvocation[i], WebhookPath: path,
		})
	}
	return out, nil
}

// almExamples is the CSV's alm-examples: one of each kind of the mesh API
// (config/samples) and of SMI (the bookstore's policy).
func almExamples(dir string) (string, error) {
	objs, err := manifests.Kustomize(dir)
	if err != nil {
		return "", err
	}
	policy, err := manifests.Kustomize(filepath.Join(dir, "bookstore"))
	if err != nil {
		return "", err
	}
	var examples []map[string]any
	seen := map[string]bool{}
	for _, o := range append(objs, policy...) {
		group := o.GroupVersionKind().Group
		if (strings.HasSuffix(group, "openservicemesh.io") || strings.HasSuffix(group, "smi-spec.io")) && !seen[o.GetKind()] {
			seen[o.GetKind()] = true
			examples = append(examples, o.Object)
		}
	}
	raw, err := json.MarshalIndent(examples, "", "  ")
	return string(raw), err
}

const scorecardConfig = `apiVersion: scorecard.operatorframework.io/v1alpha3
kind: Configuration
metadata:
  name: config
stages:
- parallel: true
  tests:
  - entrypoint: [scorecard-test, basic-check-spec]
    image: quay.io/operator-framework/scorecard-test:v1.39.0
    labels: {suite: basic, test: basic-check-spec-test}
  - entrypoint: [scorecard-test, olm-bundle-validation]
    image: quay.io/operator-framework/scorecard-test:v1.39.0
    labels: {suite: olm, test: olm-bundle-validation-test}
  - entrypoint: [scorecard-test, olm-crds-have-validation]
    image: quay.io/operator-framework/scorecard-test:v1.39.0
    labels: {suite: olm, test: olm-crds-have-validation-test}
  - entrypoint: [scorecard-test, olm-spec-descriptors]
    image: quay.io/operator-framework/scorecard-test:v1.39.0
    labels: {suite: olm, test: olm-spec-descriptors-test}
`

// isGatewayAPI says whether o is a Gateway API CRD.
func isGatewayAPI(o *unstructured.Unstructured) bool {
	group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
	return group == "gateway.networking.k8s.io"
}
