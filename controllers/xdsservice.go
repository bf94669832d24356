package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/xds/bootstrap"
)

// +kubebuilder:rbac:groups="",resources=services,verbs=create;patch

// ensureXDSMeshService gives mesh mi its own xDS Service,
// bootstrap.XDSMeshService, in the operator's namespace: the shared xDS
// Service's selector and ports under a name of the mesh's, so that the
// mesh's own server name (bootstrap.XDSServerName), which a proxyless gRPC
// application dials and verifies, resolves. Without the shared Service (an
// operator run outside the cluster) there is nothing to mirror. A Service of
// that name that is not the mesh's is left alone: a MeshInstance's name must
// not take over a Service of the operator's namespace.
func ensureXDSMeshService(ctx context.Context, c client.Client, mi *meshv1alpha1.MeshInstance, namespace string) error {
	shared := &corev1.Service{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: bootstrap.XDSServiceName}, shared); apierrors.IsNotFound(err) {
		logf.FromContext(ctx).V(1).Info("Found no shared xDS Service to give the mesh a Service of its own", "service", bootstrap.XDSServiceName)
		return nil
	} else if err != nil {
		return fmt.Errorf("reading the xDS Service %s/%s: %w", namespace, bootstrap.XDSServiceName, err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: bootstrap.XDSMeshService(mi.Name), Namespace: namespace}}
	_, err := controllerutil.CreateOrPatch(ctx, c, svc, func() error {
		if !svc.CreationTimestamp.IsZero() && !metav1.IsControlledBy(svc, mi) {
			return fmt.Errorf("Service %s/%s exists and is not mesh %s's: remove it or rename the mesh", namespace, svc.Name, mi.Name)
		}
		svc.Labels = MeshObjectLabels(mi.Name)
		svc.Spec.Selector = shared.Spec.Selector
		svc.Spec.Ports = nil
		for _, p := range shared.Spec.Ports {
			svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: p.Name, Port: p.Port, TargetPort: p.TargetPort, Protocol: p.Protocol, AppProtocol: p.AppProtocol})
		}
		return controllerutil.SetControllerReference(mi, svc, c.Scheme())
	})
	if err != nil {
		return fmt.Errorf("ensuring the mesh's xDS Service %s/%s: %w", namespace, svc.Name, err)
	}
	return nil
}
