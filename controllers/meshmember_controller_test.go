package controllers_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/xds/bootstrap"
	"github.com/open-service-mesh/osm-operator/xds/server"
)

// pod is a pod running as sa; it creates the service account if need be,
// as a cluster's pods have theirs (the operator approves identities only
// for service accounts that exist).
func pod(ns, name, sa string) *corev1.Pod {
	err := k8s.Create(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		panic(err)
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{Name: "app", Image: "app"}}},
	}
}

func ready(conds []metav1.Condition) error {
	c := meta.FindStatusCondition(conds, meshv1alpha1.ConditionReady)
	if c == nil || c.Status != metav1.ConditionTrue {
		return fmt.Errorf("not Ready: %+v", c)
	}
	return nil
}

// kstatusOf computes the kstatus of obj as Flux and cli-utils do.
func kstatusOf(t *testing.T, obj client.Object, kind string) status.Status {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(meshv1alpha1.GroupVersion.WithKind(kind))
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), u); err != nil {
		t.Fatal(err)
	}
	res, err := status.Compute(u)
	if err != nil {
		t.Fatal(err)
	}
	return res.Status
}

// TestMemberJoinsTheMeshWithRealCertificates: a MeshInstance bootstraps its CA
// through cert-manager; a MeshMember labels its namespace and gets one
// certificate per service account its pods run as, issued by cert-manager's
// own controllers with the SPIFFE ID as URI SAN; deleting the member takes
// back exactly the label the operator set.
func TestMemberJoinsTheMeshWithRealCertificates(t *testing.T) {
	ctx := context.Background()
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "books"}}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
			return err
		}
		if len(mi.Status.TrustBundle) != 1 {
			return fmt.Errorf("trust bundle %+v", mi.Status.TrustBundle)
		}
		return ready(mi.Status.Conditions)
	})
	if s := kstatusOf(t, mi, "MeshInstance"); s != status.CurrentStatus {
		t.Errorf("MeshInstance kstatus %s, want Current", s)
	}
	// The xDS server answers this mesh's proxies with a certificate its issuer signed.
	name := bootstrap.XDSServerName("books", operatorNamespace)
	cert, pool, err := server.SecretTLS(k8s, operatorNamespace)(&tls.ClientHelloInfo{ServerName: name})
	if err != nil {
		t.Fatal(err)
	}
	if cert.Leaf == nil || cert.Leaf.VerifyHostname(name) != nil {
		t.Errorf("the xDS serving certificate is not for %s", name)
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
		t.Errorf("the xDS serving certificate does not chain to the mesh's roots: %v", err)
	}

	ns := newNamespace(t, nil)
	for _, p := range []*corev1.Pod{meshedPod("books", ns, "buyer-1", "buyer"), meshedPod("books", ns, "buyer-2", "buyer"), meshedPod("books", ns, "store-1", "store")} {
		if err := k8s.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	mm := &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "books", Namespace: ns}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "books"}}
	if err := k8s.Create(ctx, mm); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mm), mm); err != nil {
			return err
		}
		if mm.Status.Identities != 2 || mm.Status.IdentitiesReady != 2 {
			return fmt.Errorf("identities %d, ready %d", mm.Status.Identities, mm.Status.IdentitiesReady)
		}
		return ready(mm.Status.Conditions)
	})
	if s := kstatusOf(t, mm, "MeshMember"); s != status.CurrentStatus {
		t.Errorf("MeshMember kstatus %s, want Current", s)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		var evs eventsv1.EventList
		if err := k8s.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Regarding.Kind == "MeshMember" && e.Regarding.Name == mm.Name && e.Reason == meshv1alpha1.ReasonSucceeded {
				return nil
			}
		}
		return fmt.Errorf("no Succeeded event for the MeshMember among %d events", len(evs.Items))
	})
	nsObj := &corev1.Namespace{}
	if err := k8s.Get(ctx, client.ObjectKey{Name: ns}, nsObj); err != nil {
		t.Fatal(err)
	}
	if nsObj.Labels[meshv1alpha1.MonitorLabel] != "books" {
		t.Errorf("namespace labels %v", nsObj.Labels)
	}

	for _, sa := range []string{"buyer", "store"} {
		sec := &corev1.Secret{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: meshv1alpha1.IdentitySecretName(sa)}, sec); err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(sec.Data["tls.crt"])
		if block == nil {
			t.Fatalf("Secret of %s holds no certificate", sa)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("spiffe://cluster.local/ns/%s/sa/%s", ns, sa)
		if len(cert.URIs) != 1 || cert.URIs[0].String() != want {
			t.Errorf("certificate of %s has URIs %v, want %s", sa, cert.URIs, want)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(sec.Data["ca.crt"])
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("certificate of %s does not chain to the mesh CA: %v", sa, err)
		}
	}

	// A namespace a user labelled (the seed's way) before its MeshMember came:
	// deleting the member must leave the user's label alone.
	other := newNamespace(t, map[string]string{meshv1alpha1.MonitorLabel: "books", "team": "books"})
	if err := k8s.Create(ctx, pod(other, "app-1", "app")); err != nil {
		t.Fatal(err)
	}
	member2 := &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Name: "books", Namespace: other}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: "books"}}
	if err := k8s.Create(ctx, member2); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		n := &corev1.Namespace{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: other}, n); err != nil {
			return err
		}
		if n.Labels[meshv1alpha1.MonitorLabel] != "books" {
			return errors.New("not labelled yet")
		}
		return nil
	})
	for _, m := range []*meshv1alpha1.MeshMember{mm, member2} {
		if err := k8s.Delete(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		a, b := &corev1.Namespace{}, &corev1.Namespace{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: ns}, a); err != nil {
			return err
		}
		if err := k8s.Get(ctx, client.ObjectKey{Name: other}, b); err != nil {
			return err
		}
		if _, ok := a.Labels[meshv1alpha1.MonitorLabel]; ok {
			return fmt.Errorf("the operator's label is still on %s: %v", ns, a.Labels)
		}
		if b.Labels[meshv1alpha1.MonitorLabel] != "books" || b.Labels["team"] != "books" {
			return fmt.Errorf("the user's labels on %s were touched: %v", other, b.Labels)
		}
		return nil
	})
	// cert-manager keeps Secrets of deleted Certificates: the operator deletes them.
	testenv.Eventually(t, 30*time.Second, func() error {
		var secrets corev1.SecretList
		if err := k8s.List(ctx, &secrets, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, s := range secrets.Items {
			if strings.HasPrefix(s.Name, meshv1alpha1.IdentitySecretPrefix) {
				return fmt.Errorf("identity Secret %s is left", s.Name)
			}
		}
		return nil
	})
	var certs cmapi.CertificateList
	if err := k8s.List(ctx, &certs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(certs.Items) != 0 {
		t.Errorf("%d identity Certificates are left after the member went", len(certs.Items))
	}
}
