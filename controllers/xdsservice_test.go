package controllers_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/xds/bootstrap"
)

// TestEachMeshHasItsOwnXDSName: a mesh's xDS serving certificate names the
// mesh's own names only, never the shared xDS Service's (which every mesh's
// listed, so the server answered with whichever came first), and the mesh
// gets a Service of its own, the shared one's selector and ports, so that
// its name resolves. A Service of that name that is not the mesh's is not
// taken over.
func TestEachMeshHasItsOwnXDSName(t *testing.T) {
	ctx := context.Background()
	shared := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: bootstrap.XDSServiceName, Namespace: operatorNamespace},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app.kubernetes.io/name": "osm-operator"},
			Ports:    []corev1.ServicePort{{Name: "grpc-xds", Port: 15128, TargetPort: intstr.FromString("xds"), AppProtocol: ptr.To("grpc")}},
		},
	}
	squat := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: bootstrap.XDSMeshService("squatted"), Namespace: operatorNamespace},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "someone-else"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
	for _, o := range []client.Object{shared, squat} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"own-name", "squatted"} {
		if err := k8s.Create(ctx, &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		cert := &cmapi.Certificate{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: "osm-own-name-xds"}, cert); err != nil {
			return err
		}
		want := []string{"osm-xds-own-name." + operatorNamespace + ".svc", "own-name.osm-operator-xds." + operatorNamespace + ".svc"}
		if fmt.Sprint(cert.Spec.DNSNames) != fmt.Sprint(want) {
			return fmt.Errorf("the serving certificate names %v, want %v", cert.Spec.DNSNames, want)
		}
		svc := &corev1.Service{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: "osm-xds-own-name"}, svc); err != nil {
			return fmt.Errorf("the mesh's xDS Service: %w", err)
		}
		if !maps.Equal(svc.Spec.Selector, shared.Spec.Selector) || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 15128 ||
			svc.Spec.Ports[0].TargetPort != intstr.FromString("xds") || len(svc.OwnerReferences) != 1 || svc.OwnerReferences[0].Kind != "MeshInstance" {
			return fmt.Errorf("the mesh's xDS Service: %+v %+v", svc.Spec, svc.OwnerReferences)
		}
		return nil
	})
	// The squatted name's mesh got its certificate (the step before) and
	// left the Service as it was.
	testenv.Eventually(t, 60*time.Second, func() error {
		return k8s.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: "osm-squatted-xds"}, &cmapi.Certificate{})
	})
	time.Sleep(2 * time.Second)
	got := &corev1.Service{}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(squat), got); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got.Spec.Selector, squat.Spec.Selector) || len(got.OwnerReferences) != 0 || got.Spec.Ports[0].Port != 80 {
		t.Errorf("a mesh took over Service %s: %+v %+v", squat.Name, got.Spec, got.OwnerReferences)
	}
	// And the mesh says why it is not ready, not only the operator's log.
	testenv.Eventually(t, 30*time.Second, func() error {
		mi := &meshv1alpha1.MeshInstance{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: "squatted"}, mi); err != nil {
			return err
		}
		c := meta.FindStatusCondition(mi.Status.Conditions, meshv1alpha1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != "WriteFailed" || !strings.Contains(c.Message, squat.Name) {
			return fmt.Errorf("Ready = %+v", c)
		}
		return nil
	})
}
