package controllers_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/internal/testpki"
)

// The external issuer of these tests: a CRD of another group than
// cert-manager.io, as AWS PCA, Google CAS or step-issuer install, with no
// controller. The tests play its controller.
const (
	exampleGroup = "example-issuer.example.com"
	exampleKind  = "ClusterExampleIssuer"
)

var exampleGVK = schema.GroupVersionKind{Group: exampleGroup, Version: "v1alpha1", Kind: exampleKind}

// installExampleIssuerCRD installs the external issuer's CRD, once per
// suite, with the scope given (a namespaced one under another kind).
func installExampleIssuerCRD(t *testing.T, kind string, scope apiextensionsv1.ResourceScope) {
	t.Helper()
	ctx := context.Background()
	plural := strings.ToLower(kind) + "s"
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: plural + "." + exampleGroup},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: exampleGroup,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: plural, Singular: strings.ToLower(kind), Kind: kind, ListKind: kind + "List"},
			Scope: scope,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1alpha1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr.To(true),
				}},
			}},
		},
	}
	if err := k8s.Create(ctx, crd); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(crd), crd); err != nil {
			return err
		}
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("CRD %s is not established", crd.Name)
	})
}

// exampleIssuer is a ClusterExampleIssuer whose status says Ready as given.
func exampleIssuer(name string, ready metav1.ConditionStatus, message string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(exampleGVK)
	u.SetName(name)
	u.Object["spec"] = map[string]any{"url": "https://ca.example.com"}
	u.Object["status"] = map[string]any{"conditions": []any{map[string]any{
		"type": "Ready", "status": string(ready), "reason": "Checked", "message": message,
	}}}
	return u
}

// signExternally plays the external issuer's controller until ctx ends: it
// signs each approved CertificateRequest for issuer name with ca, and
// publishes ca in status.ca when withCA is set (some issuers do not).
func signExternally(ctx context.Context, t *testing.T, name string, ca *testpki.CA, withCA bool) {
	key, err := parseECKey(ca.KeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for ctx.Err() == nil {
			var list cmapi.CertificateRequestList
			if err := k8s.List(ctx, &list); err == nil {
				for i := range list.Items {
					cr := &list.Items[i]
					if cr.Spec.IssuerRef.Group != exampleGroup || cr.Spec.IssuerRef.Name != name || !approved(cr) || len(cr.Status.Certificate) > 0 {
						continue
					}
					certPEM, err := signCSR(cr, ca, key)
					if err != nil {
						t.Errorf("signing %s/%s: %v", cr.Namespace, cr.Name, err)
						continue
					}
					cr.Status.Certificate = certPEM
					if withCA {
						cr.Status.CA = ca.PEM
					}
					cr.Status.Conditions = append(cr.Status.Conditions, cmapi.CertificateRequestCondition{
						Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionTrue,
						Reason: cmapi.CertificateRequestReasonIssued, Message: "signed by the test", LastTransitionTime: &metav1.Time{Time: time.Now()},
					})
					_ = k8s.Status().Update(ctx, cr) // a conflict is retried on the next round
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
}

func approved(cr *cmapi.CertificateRequest) bool {
	for _, c := range cr.Status.Conditions {
		if c.Type == cmapi.CertificateRequestConditionApproved && c.Status == cmmeta.ConditionTrue {
			return true
		}
	}
	return false
}

func parseECKey(data []byte) (any, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("no PEM key")
	}
	return x509.ParseECPrivateKey(block.Bytes)
}

// signCSR issues what the request asks for: its names, its duration, a leaf.
func signCSR(cr *cmapi.CertificateRequest, ca *testpki.CA, key any) ([]byte, error) {
	block, _ := pem.Decode(cr.Spec.Request)
	if block == nil {
		return nil, fmt.Errorf("no PEM request")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, err
	}
	duration := time.Hour
	if cr.Spec.Duration != nil {
		duration = cr.Spec.Duration.Duration
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: csr.Subject,
		DNSNames: csr.DNSNames, URIs: csr.URIs, IPAddresses: csr.IPAddresses, EmailAddresses: csr.EmailAddresses,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(duration),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// TestAnExternalIssuerIsReadUnstructured: a mesh may name a cluster-scoped
// issuer of any group. Its Ready condition, read from the object as it is,
// is the mesh's CA readiness until it is True; then the Certificates it
// issues are, and the mesh is Ready with the roots the issuer publishes.
func TestAnExternalIssuerIsReadUnstructured(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	installExampleIssuerCRD(t, exampleKind, apiextensionsv1.ClusterScoped)
	issuer := exampleIssuer("pca", metav1.ConditionFalse, "the private CA is still being created")
	if err := k8s.Create(ctx, issuer); err != nil {
		t.Fatal(err)
	}
	mi := &meshv1alpha1.MeshInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "external"},
		Spec: meshv1alpha1.MeshInstanceSpec{Certificates: meshv1alpha1.Certificates{
			IssuerRef: &meshv1alpha1.IssuerReference{Name: "pca", Kind: exampleKind, Group: exampleGroup},
		}},
	}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatalf("a mesh naming an external issuer: %v", err)
	}
	conds := func() []metav1.Condition { return mi.Status.Conditions }
	testenv.Eventually(t, 30*time.Second, func() error {
		c := condition(t, mi, conds, meshv1alpha1.ConditionCertificateAuthorityReady)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != meshv1alpha1.ReasonIssuerNotReady ||
			!strings.Contains(c.Message, "the private CA is still being created") || !strings.Contains(c.Message, exampleKind+" pca") {
			return fmt.Errorf("CertificateAuthorityReady = %+v", c)
		}
		return nil
	})

	root, err := testpki.NewCA("example root")
	if err != nil {
		t.Fatal(err)
	}
	signExternally(ctx, t, "pca", root, true)
	active := exampleIssuer("pca", metav1.ConditionTrue, "the private CA is active")
	active.SetResourceVersion(issuer.GetResourceVersion())
	if err := k8s.Update(ctx, active); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
			return err
		}
		if len(mi.Status.TrustBundle) != 1 || mi.Status.TrustBundle[0].Subject != "CN=example root" {
			return fmt.Errorf("trust bundle %+v; conditions %+v", mi.Status.TrustBundle, mi.Status.Conditions)
		}
		return ready(mi.Status.Conditions)
	})
}

// TestAnExternalIssuerKindThatIsNotInstalled: a mesh naming a kind no CRD
// serves says so, and is not stalled: the CRD may be installed next.
func TestAnExternalIssuerKindThatIsNotInstalled(t *testing.T) {
	ctx := context.Background()
	mi := &meshv1alpha1.MeshInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "uninstalled"},
		Spec: meshv1alpha1.MeshInstanceSpec{Certificates: meshv1alpha1.Certificates{
			IssuerRef: &meshv1alpha1.IssuerReference{Name: "pca", Kind: "AWSPCAClusterIssuer", Group: "awspca.cert-manager.io"},
		}},
	}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	conds := func() []metav1.Condition { return mi.Status.Conditions }
	testenv.Eventually(t, 30*time.Second, func() error {
		c := condition(t, mi, conds, meshv1alpha1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != meshv1alpha1.ReasonIssuerKindNotInstalled ||
			!strings.Contains(c.Message, "AWSPCAClusterIssuer") || !strings.Contains(c.Message, "CRD") {
			return fmt.Errorf("Ready = %+v", c)
		}
		return nil
	})
	if c := condition(t, mi, conds, meshv1alpha1.ConditionStalled); c != nil && c.Status == metav1.ConditionTrue {
		t.Errorf("Stalled = %+v, want not stalled", c)
	}
}

// TestANamespacedExternalIssuerIsStalled: an external issuer kind whose
// objects live in a namespace signs only there, like cert-manager's Issuer.
func TestANamespacedExternalIssuerIsStalled(t *testing.T) {
	ctx := context.Background()
	installExampleIssuerCRD(t, "ExampleIssuer", apiextensionsv1.NamespaceScoped)
	mi := &meshv1alpha1.MeshInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "namespaced-external"},
		Spec: meshv1alpha1.MeshInstanceSpec{Certificates: meshv1alpha1.Certificates{
			IssuerRef: &meshv1alpha1.IssuerReference{Name: "pca", Kind: "ExampleIssuer", Group: exampleGroup},
		}},
	}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	conds := func() []metav1.Condition { return mi.Status.Conditions }
	testenv.Eventually(t, 30*time.Second, func() error {
		c := condition(t, mi, conds, meshv1alpha1.ConditionStalled)
		if c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "namespaced") {
			return fmt.Errorf("Stalled = %+v", c)
		}
		return nil
	})
}

// trustBundleSecret reads the mesh's trust bundle Secret, as the xDS
// servers read it.
func trustBundleSecret(ctx context.Context, mesh string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	err := k8s.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: meshv1alpha1.TrustBundleSecretName(mesh)}, s)
	return s, err
}

// TestAnIssuerThatPublishesNoCAIsReported: an issuer that signs with no
// ca.crt (ACME, some Venafi setups) leaves the mesh without a trust
// bundle; the mesh says so and why, writes no bundle for proxies, and takes
// the one its spec gives.
func TestAnIssuerThatPublishesNoCAIsReported(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	installExampleIssuerCRD(t, exampleKind, apiextensionsv1.ClusterScoped)
	if err := k8s.Create(ctx, exampleIssuer("acme", metav1.ConditionTrue, "registered")); err != nil {
		t.Fatal(err)
	}
	root, err := testpki.NewCA("unpublished root")
	if err != nil {
		t.Fatal(err)
	}
	signExternally(ctx, t, "acme", root, false)
	mi := &meshv1alpha1.MeshInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "noca"},
		Spec: meshv1alpha1.MeshInstanceSpec{Certificates: meshv1alpha1.Certificates{
			IssuerRef: &meshv1alpha1.IssuerReference{Name: "acme", Kind: exampleKind, Group: exampleGroup},
		}},
	}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	conds := func() []metav1.Condition { return mi.Status.Conditions }
	testenv.Eventually(t, 60*time.Second, func() error {
		c := condition(t, mi, conds, meshv1alpha1.ConditionTrustBundleKnown)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != meshv1alpha1.ReasonIssuerPublishesNoCA ||
			!strings.Contains(c.Message, "ca.crt") || !strings.Contains(c.Message, "spec.certificates.trustBundle") {
			return fmt.Errorf("TrustBundleKnown = %+v", c)
		}
		if r := meta.FindStatusCondition(mi.Status.Conditions, meshv1alpha1.ConditionReady); r == nil || r.Reason != meshv1alpha1.ReasonTrustBundleUnknown {
			return fmt.Errorf("Ready = %+v", r)
		}
		return nil
	})
	if _, err := trustBundleSecret(ctx, "noca"); !apierrors.IsNotFound(err) {
		t.Fatalf("a trust bundle Secret for proxies while none is known: %v", err)
	}

	// The spec gives the roots: the mesh is Ready with them, and writes
	// them for the xDS servers.
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
		t.Fatal(err)
	}
	mi.Spec.Certificates.TrustBundle = &meshv1alpha1.TrustBundleSource{PEM: string(root.PEM)}
	if err := k8s.Update(ctx, mi); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		c := condition(t, mi, conds, meshv1alpha1.ConditionTrustBundleKnown)
		if c == nil || c.Status != metav1.ConditionTrue || c.Reason != meshv1alpha1.ReasonFromSpec {
			return fmt.Errorf("TrustBundleKnown = %+v", c)
		}
		if len(mi.Status.TrustBundle) != 1 || mi.Status.TrustBundle[0].Subject != "CN=unpublished root" {
			return fmt.Errorf("trust bundle %+v", mi.Status.TrustBundle)
		}
		s, err := trustBundleSecret(ctx, "noca")
		if err != nil {
			return err
		}
		if got := string(s.Data[meshv1alpha1.TrustBundleKey]); got != string(root.PEM) {
			return fmt.Errorf("the trust bundle Secret holds %q", got)
		}
		return ready(mi.Status.Conditions)
	})

	// What proxies are served is the mesh's: a bundle changed or deleted by
	// hand is written again.
	s, err := trustBundleSecret(ctx, "noca")
	if err != nil {
		t.Fatal(err)
	}
	forger, err := testpki.NewCA("forger")
	if err != nil {
		t.Fatal(err)
	}
	s.Data[meshv1alpha1.TrustBundleKey] = forger.PEM
	if err := k8s.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		s, err := trustBundleSecret(ctx, "noca")
		if err != nil {
			return err
		}
		if got := string(s.Data[meshv1alpha1.TrustBundleKey]); got != string(root.PEM) {
			return fmt.Errorf("the trust bundle Secret holds %q", got)
		}
		return nil
	})
}

// TestATrustBundleOfOtherThanCACertificatesIsRefused: what the spec gives
// proxies to trust is CA certificates only: a private key, a leaf
// certificate or text that is not PEM is refused, stalled, and never reaches
// the bundle proxies get.
func TestATrustBundleOfOtherThanCACertificatesIsRefused(t *testing.T) {
	ctx := context.Background()
	root, err := testpki.NewCA("spec root")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := root.Server([]string{"leaf.example.com"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		name, pem, want string
	}{
		{"a private key", string(root.PEM) + string(root.KeyPEM()), "EC PRIVATE KEY"},
		{"a leaf certificate", string(root.PEM) + string(leaf.CertPEM), "not a CA certificate"},
		{"text around the certificates", "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", "not PEM"},
		{"a certificate that does not parse", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "certificate 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("badbundle-%d", i)
			mi := &meshv1alpha1.MeshInstance{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec: meshv1alpha1.MeshInstanceSpec{Certificates: meshv1alpha1.Certificates{
					TrustBundle: &meshv1alpha1.TrustBundleSource{PEM: tc.pem},
				}},
			}
			if err := k8s.Create(ctx, mi); err != nil {
				t.Fatal(err)
			}
			conds := func() []metav1.Condition { return mi.Status.Conditions }
			testenv.Eventually(t, 30*time.Second, func() error {
				c := condition(t, mi, conds, meshv1alpha1.ConditionStalled)
				if c == nil || c.Status != metav1.ConditionTrue || c.Reason != meshv1alpha1.ReasonInvalidSpec ||
					!strings.Contains(c.Message, "spec.certificates.trustBundle") || !strings.Contains(c.Message, tc.want) {
					return fmt.Errorf("Stalled = %+v", c)
				}
				if k := meta.FindStatusCondition(mi.Status.Conditions, meshv1alpha1.ConditionTrustBundleKnown); k == nil || k.Status != metav1.ConditionFalse {
					return fmt.Errorf("TrustBundleKnown = %+v", k)
				}
				return nil
			})
			if strings.Contains(fmt.Sprint(mi.Status.Conditions), "PRIVATE KEY-----") {
				t.Error("the status repeats the key")
			}
			if _, err := trustBundleSecret(ctx, name); !apierrors.IsNotFound(err) {
				t.Errorf("a trust bundle Secret from an invalid spec: %v", err)
			}
		})
	}
}
