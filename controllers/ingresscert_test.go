package controllers_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/controllers"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
)

// TestTheIngressGatewayGetsAClientCertificateAndNoImitationDoes: a mesh
// whose spec.certificates.ingressGateway is set has its issuer sign a
// client certificate for exactly those names into that Secret, chaining to
// the mesh's trust bundle; a Certificate or request that imitates it
// (another namespace, another Certificate, a wildcard, no usages) is
// denied, since it would pass as the ingress gateway to every
// IngressBackend naming it; and unsetting the spec takes the certificate
// and its Secret away.
func TestTheIngressGatewayGetsAClientCertificateAndNoImitationDoes(t *testing.T) {
	ctx := context.Background()
	ingressNS := newNamespace(t, nil)
	attacker := newNamespace(t, nil)
	const principal = "ingress-nginx.ingress-nginx.cluster.local"
	mi := &meshv1alpha1.MeshInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "gateway"},
		Spec: meshv1alpha1.MeshInstanceSpec{Certificates: meshv1alpha1.Certificates{IngressGateway: &meshv1alpha1.IngressGatewayCertificate{
			SubjectAltNames:  []string{principal},
			ValidityDuration: "12h",
			Secret:           meshv1alpha1.SecretReference{Name: "ingress-client", Namespace: ingressNS},
		}}},
	}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	var leaf *x509.Certificate
	testenv.Eventually(t, 60*time.Second, func() error {
		s := &corev1.Secret{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ingressNS, Name: "ingress-client"}, s); err != nil {
			return err
		}
		block, _ := pem.Decode(s.Data[corev1.TLSCertKey])
		if block == nil {
			return fmt.Errorf("the ingress Secret holds no certificate yet")
		}
		var err error
		leaf, err = x509.ParseCertificate(block.Bytes)
		return err
	})
	if !slices.Equal(leaf.DNSNames, []string{principal}) || len(leaf.URIs)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) > 0 {
		t.Errorf("the ingress certificate names DNS %v, URIs %v, IPs %v, emails %v; want exactly DNS [%s]", leaf.DNSNames, leaf.URIs, leaf.IPAddresses, leaf.EmailAddresses, principal)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || leaf.IsCA {
		t.Errorf("the ingress certificate has extended key usages %v (CA %v), want client authentication only", leaf.ExtKeyUsage, leaf.IsCA)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life > 12*time.Hour+time.Minute {
		t.Errorf("the ingress certificate lives %s, want its validityDuration 12h", life)
	}
	var bundle *corev1.Secret
	testenv.Eventually(t, 30*time.Second, func() (err error) { bundle, err = trustBundleSecret(ctx, mi.Name); return err })
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(bundle.Data[meshv1alpha1.TrustBundleKey]) {
		t.Fatal("the mesh's trust bundle holds no certificate")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the ingress certificate does not chain to the mesh's trust bundle as a client's: %v", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("the ingress certificate verifies as a server's")
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
			return err
		}
		if c := conditionOf(mi.Status.Conditions, meshv1alpha1.ConditionIngressCertificateReady); c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("IngressCertificateReady %+v, want True", c)
		}
		return nil
	})

	caIssuer := cmmeta.IssuerReference{Name: "osm-" + mi.Name + "-ca", Kind: cmapi.ClusterIssuerKind, Group: "cert-manager.io"}
	ours := "osm-" + mi.Name + "-ingress-gateway"
	for _, tc := range []struct {
		name, ns, cert string
		dnsNames       []string
		usages         []cmapi.KeyUsage
		why            string
	}{
		{"the same names in another namespace", attacker, "", []string{principal}, nil, "requested only by Certificate"},
		{"the same names and Certificate name in another namespace", attacker, ours, []string{principal}, nil, "requested only by Certificate"},
		{"the same names by another Certificate of the ingress namespace", ingressNS, "", []string{principal}, nil, "requested only by Certificate"},
		{"a wildcard over the names", attacker, "", []string{"*.ingress-nginx.cluster.local"}, nil, "requested only by Certificate"},
		{"the names in capitals", attacker, "", []string{strings.ToUpper(principal)}, nil, "requested only by Certificate"},
		{"the names as a server's", attacker, "", []string{principal}, []cmapi.KeyUsage{cmapi.UsageServerAuth}, "requested only by Certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := tc.cert
			if name == "" {
				name = fmt.Sprintf("imitation-%d", seq.Add(1))
			}
			spec := cmapi.CertificateSpec{SecretName: name, DNSNames: tc.dnsNames, Usages: tc.usages, IssuerRef: caIssuer, Duration: &metav1.Duration{Duration: time.Hour}}
			if err := k8s.Create(ctx, &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: tc.ns, Name: name}, Spec: spec}); err != nil {
				t.Fatal(err)
			}
			got := decision(t, tc.ns, name)
			if got.Type != cmapi.CertificateRequestConditionDenied || got.Reason != controllers.ApproverReason || !strings.Contains(got.Message, tc.why) {
				t.Fatalf("%s by %q: %s; want Denied, saying %q", got.Type, got.Reason, got.Message, tc.why)
			}
			neverIssued(t, tc.ns, name)
		})
	}
	// A request made by hand in the ingress namespace, as of the mesh's
	// Certificate, with no usages: the signer would make a certificate
	// good for any purpose, a server's too.
	t.Run("a request as of the mesh's Certificate with no usages", func(t *testing.T) {
		cr := createRequest(t, ingressNS, ours, caIssuer, &metav1.Duration{Duration: time.Hour}, nil, []string{principal})
		testenv.Eventually(t, 30*time.Second, func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(cr), cr); err != nil {
				return err
			}
			for _, c := range cr.Status.Conditions {
				if c.Type == cmapi.CertificateRequestConditionDenied && strings.Contains(c.Message, "client") {
					return nil
				}
				if c.Type == cmapi.CertificateRequestConditionApproved {
					t.Fatalf("approved: %s", c.Message)
				}
			}
			return fmt.Errorf("not denied yet: %+v", cr.Status.Conditions)
		})
	})

	// The mesh no longer asks for it: the certificate and its Secret go.
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
			return err
		}
		mi.Spec.Certificates.IngressGateway = nil
		return k8s.Update(ctx, mi)
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, o := range []client.Object{
			&cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: ingressNS, Name: ours}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ingressNS, Name: "ingress-client"}},
		} {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(o), o); !apierrors.IsNotFound(err) {
				return fmt.Errorf("%T %s still there (%v)", o, o.GetName(), err)
			}
		}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
			return err
		}
		if c := conditionOf(mi.Status.Conditions, meshv1alpha1.ConditionIngressCertificateReady); c != nil {
			return fmt.Errorf("IngressCertificateReady %+v, want none", c)
		}
		return nil
	})
}

// TestTheIngressGatewayCertificateTakesNoSecretOfAnother: an ingress
// gateway Secret that exists and holds something else (an application's
// TLS Secret) is left as it is: cert-manager would write over it. The mesh
// says so, and issues nothing there.
func TestTheIngressGatewayCertificateTakesNoSecretOfAnother(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t, nil)
	theirs := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop-tls"},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{"password": []byte("hunter2")},
	}
	if err := k8s.Create(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	mi := &meshv1alpha1.MeshInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "gateway-taken"},
		Spec: meshv1alpha1.MeshInstanceSpec{Certificates: meshv1alpha1.Certificates{IngressGateway: &meshv1alpha1.IngressGatewayCertificate{
			SubjectAltNames: []string{"ingress.example"},
			Secret:          meshv1alpha1.SecretReference{Name: theirs.Name, Namespace: ns},
		}}},
	}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
			return err
		}
		c := conditionOf(mi.Status.Conditions, meshv1alpha1.ConditionIngressCertificateReady)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != meshv1alpha1.ReasonInvalidSpec || !strings.Contains(c.Message, "exists and is not the ingress gateway certificate's") {
			return fmt.Errorf("IngressCertificateReady %+v, want False saying the Secret is another's", c)
		}
		return nil
	})
	time.Sleep(2 * time.Second)
	err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "osm-" + mi.Name + "-ingress-gateway"}, &cmapi.Certificate{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("a Certificate was made into another's Secret (%v)", err)
	}
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(theirs), theirs); err != nil {
		t.Fatal(err)
	}
	if string(theirs.Data["password"]) != "hunter2" || len(theirs.Data) != 1 {
		t.Errorf("the Secret was changed: %v", theirs.Data)
	}
}
