package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
)

func vmBacking(ns, name, service string) *meshv1alpha1.MeshVM {
	return &meshv1alpha1.MeshVM{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: meshv1alpha1.MeshVMSpec{
			Mesh: "writes", ServiceAccountName: "warehouse", Addresses: []string{"192.0.2.40"},
			Ports:    []meshv1alpha1.VMPort{{Name: "http", Port: 8080, Protocol: meshv1alpha1.ProtocolHTTP}},
			Services: []string{service},
		},
	}
}

func httpService(ns, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}
}

// readyOf waits for vm's Ready condition to satisfy ok.
func readyOf(t *testing.T, vm *meshv1alpha1.MeshVM, ok func(*metav1.Condition) bool) *metav1.Condition {
	t.Helper()
	var c *metav1.Condition
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(vm), vm); err != nil {
			return err
		}
		if c = meta.FindStatusCondition(vm.Status.Conditions, meshv1alpha1.ConditionReady); c == nil || !ok(c) {
			return fmt.Errorf("Ready = %+v", c)
		}
		return nil
	})
	return c
}

// TestALongVMNameFits: any valid MeshVM and Service name makes valid names
// for the VM's bootstrap Secret and EndpointSlices (cut, with a hash of the
// whole): a name of 240 characters made an EndpointSlice name the API server
// refused, and the VM showed nothing.
func TestALongVMNameFits(t *testing.T) {
	ctx := context.Background()
	if err := k8s.Create(ctx, &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "writes"}}); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	ns := newNamespace(t, nil)
	long := strings.Repeat("v", 240)
	vm := vmBacking(ns, long, "warehouse")
	for _, o := range []client.Object{httpService(ns, "warehouse"), vm} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	readyOf(t, vm, func(c *metav1.Condition) bool { return c.Reason == "AwaitingProxy" })
	var slices discoveryv1.EndpointSliceList
	if err := k8s.List(ctx, &slices, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelServiceName: "warehouse"}); err != nil {
		t.Fatal(err)
	}
	if len(slices.Items) != 1 || slices.Items[0].Endpoints[0].Addresses[0] != "192.0.2.40" {
		t.Errorf("the VM's EndpointSlices: %+v", slices.Items)
	}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: vm.Status.BootstrapSecretName}, &corev1.Secret{}); err != nil {
		t.Errorf("the bootstrap Secret %q: %v", vm.Status.BootstrapSecretName, err)
	}
}

// TestARefusedWriteShowsOnTheVM: when the API server refuses an object the
// operator writes for a VM (here an admission policy of the cluster refuses
// EndpointSlices in the VM's namespace), the VM's Ready condition and a
// Warning Event say so with the API server's message; once the policy is
// gone, the VM recovers.
func TestARefusedWriteShowsOnTheVM(t *testing.T) {
	ctx := context.Background()
	if err := k8s.Create(ctx, &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "writes"}}); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	ns := newNamespace(t, nil)
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "no-slices-in-" + ns},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{"discovery.k8s.io"}, APIVersions: []string{"v1"}, Resources: []string{"endpointslices"}},
				},
			}}},
			Validations: []admissionregistrationv1.Validation{{Expression: "false", Message: "EndpointSlices are closed here"}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: policy.Name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policy.Name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{corev1.LabelMetadataName: ns},
			}},
		},
	}
	for _, o := range []client.Object{policy, binding} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = k8s.Delete(ctx, binding); _ = k8s.Delete(ctx, policy) })
	// The policy is in force once it refuses a slice.
	testenv.Eventually(t, 30*time.Second, func() error {
		probe := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: ns}, AddressType: discoveryv1.AddressTypeIPv4}
		if err := k8s.Create(ctx, probe); err == nil {
			_ = k8s.Delete(ctx, probe)
			return fmt.Errorf("the policy is not in force yet")
		}
		return nil
	})
	vm := vmBacking(ns, "refused-vm", "warehouse")
	for _, o := range []client.Object{httpService(ns, "warehouse"), vm} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	c := readyOf(t, vm, func(c *metav1.Condition) bool { return c.Status == metav1.ConditionFalse && c.Reason == "WriteFailed" })
	if !strings.Contains(c.Message, "EndpointSlice refused-vm-warehouse-ipv4 for Service warehouse") || !strings.Contains(c.Message, "EndpointSlices are closed here") {
		t.Errorf("Ready's message %q does not give the API server's reason", c.Message)
	}
	if r := meta.FindStatusCondition(vm.Status.Conditions, meshv1alpha1.ConditionReconciling); r == nil || r.Status != metav1.ConditionTrue {
		t.Errorf("Reconciling = %+v: the operator retries", r)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		var evs eventsv1.EventList
		if err := k8s.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Regarding.Kind == "MeshVM" && e.Regarding.Name == vm.Name && e.Reason == "WriteFailed" && e.Type == corev1.EventTypeWarning && strings.Contains(e.Note, "EndpointSlices are closed here") {
				return nil
			}
		}
		return fmt.Errorf("no WriteFailed Warning for the MeshVM among %d events", len(evs.Items))
	})

	if err := k8s.Delete(ctx, binding); err != nil {
		t.Fatal(err)
	}
	readyOf(t, vm, func(c *metav1.Condition) bool { return c.Reason == "AwaitingProxy" })
}
