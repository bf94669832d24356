package controllers_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/controllers"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/internal/testpki"
)

// A VM trusts the mesh's trust bundle, not the ca.crt of its identity
// Secret: anyone who may write Secrets in the VM's namespace may write that,
// and an issuer may leave it empty. Before, the bootstrap Secret copied the
// identity Secret's ca.crt, so a root written there by hand reached the VM.
func TestAVMTrustsTheMeshsBundle(t *testing.T) {
	ctx := context.Background()
	if err := k8s.Create(ctx, &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "vmtrust"}}); err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, nil)
	vm := &meshv1alpha1.MeshVM{
		ObjectMeta: metav1.ObjectMeta{Name: "ledger-vm", Namespace: ns},
		Spec: meshv1alpha1.MeshVMSpec{
			Mesh: "vmtrust", ServiceAccountName: "ledger", Addresses: []string{"192.0.2.20"},
			Ports: []meshv1alpha1.VMPort{{Name: "http", Port: 8080, Protocol: meshv1alpha1.ProtocolHTTP}},
		},
	}
	if err := k8s.Create(ctx, vm); err != nil {
		t.Fatal(err)
	}
	bootstrapCA := func() ([]byte, error) {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(vm), vm); err != nil {
			return nil, err
		}
		if vm.Status.BootstrapSecretName == "" {
			return nil, fmt.Errorf("no bootstrap Secret yet")
		}
		boot := &corev1.Secret{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: vm.Status.BootstrapSecretName}, boot); err != nil {
			return nil, err
		}
		return boot.Data[controllers.CAKey], nil
	}
	bundle := &corev1.Secret{}
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: meshv1alpha1.TrustBundleSecretName("vmtrust")}, bundle); err != nil {
			return err
		}
		ca, err := bootstrapCA()
		if err != nil {
			return err
		}
		if len(ca) == 0 || !bytes.Equal(ca, bundle.Data[meshv1alpha1.TrustBundleKey]) {
			return fmt.Errorf("the VM's ca.crt is not the mesh's bundle")
		}
		return nil
	})

	// A namespace's user writes another root into the identity Secret.
	foreign, err := testpki.NewCA("foreign root")
	if err != nil {
		t.Fatal(err)
	}
	identity := &corev1.Secret{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: meshv1alpha1.IdentitySecretName("ledger")}, identity); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(identity.DeepCopy())
	identity.Data[controllers.CAKey] = foreign.PEM
	if err := k8s.Patch(ctx, identity, patch); err != nil {
		t.Fatal(err)
	}
	// The VM is looked at again (it waits for its proxy, every few seconds)
	// and keeps the mesh's bundle.
	time.Sleep(15 * time.Second)
	ca, err := bootstrapCA()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ca, foreign.PEM) || !bytes.Equal(ca, bundle.Data[meshv1alpha1.TrustBundleKey]) {
		t.Errorf("the VM's ca.crt follows its identity Secret's, not the mesh's bundle:\n%s", ca)
	}
}
