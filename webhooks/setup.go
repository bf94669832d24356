package webhooks

import (
	"fmt"

	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	specsv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/specs/v1alpha4"
	splitv1alpha4 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha4"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
)

// Options configure the webhooks.
type Options struct {
	// Namespace is the operator's own.
	Namespace string
	// InitImage runs the redirection init container when a mesh names none.
	InitImage string
	// SidecarImage is the Envoy of the sidecars when a mesh names none.
	SidecarImage string
}

// SetupWithManager registers the pod injector and the validating webhooks on
// the manager's webhook server. They run on every replica and read the
// manager's informer cache.
func SetupWithManager(mgr ctrl.Manager, o Options) error {
	r := mgr.GetCache()
	mgr.GetWebhookServer().Register(InjectPath, &webhook.Admission{Handler: &PodInjector{Reader: r, Namespace: o.Namespace, InitImage: o.InitImage, SidecarImage: o.SidecarImage}})
	if err := ctrl.NewWebhookManagedBy(mgr, &meshv1alpha1.MeshMember{}).WithValidator(check[*meshv1alpha1.MeshMember](MeshMemberValidator{Reader: r}.Validate)).Complete(); err != nil {
		return fmt.Errorf("registering the MeshMember webhook: %w", err)
	}
	if err := ctrl.NewWebhookManagedBy(mgr, &meshv1alpha1.MeshVM{}).WithValidator(check[*meshv1alpha1.MeshVM](MeshVMValidator{Reader: r}.Validate)).Complete(); err != nil {
		return fmt.Errorf("registering the MeshVM webhook: %w", err)
	}
	if err := ctrl.NewWebhookManagedBy(mgr, &accessv1alpha3.TrafficTarget{}).WithValidator(check[*accessv1alpha3.TrafficTarget](TrafficTargetValidator{Reader: r}.Validate)).Complete(); err != nil {
		return fmt.Errorf("registering the TrafficTarget webhook: %w", err)
	}
	if err := ctrl.NewWebhookManagedBy(mgr, &splitv1alpha4.TrafficSplit{}).WithValidator(check[*splitv1alpha4.TrafficSplit](TrafficSplitValidator{Reader: r}.Validate)).Complete(); err != nil {
		return fmt.Errorf("registering the TrafficSplit webhook: %w", err)
	}
	if err := ctrl.NewWebhookManagedBy(mgr, &specsv1alpha4.HTTPRouteGroup{}).WithValidator(check[*specsv1alpha4.HTTPRouteGroup](HTTPRouteGroupValidator{}.Validate)).Complete(); err != nil {
		return fmt.Errorf("registering the HTTPRouteGroup webhook: %w", err)
	}
	return nil
}
