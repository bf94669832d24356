package controllers_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/controllers"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/internal/testenv/certmanager"
	"github.com/open-service-mesh/osm-operator/internal/testpki"
	"github.com/open-service-mesh/osm-operator/xds/bootstrap"
)

// readyMesh creates a mesh with a bootstrapped CA and waits until its CA
// is ready.
func readyMesh(t *testing.T, name string) *meshv1alpha1.MeshInstance {
	t.Helper()
	ctx := context.Background()
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := k8s.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
			return err
		}
		if len(mi.Status.TrustBundle) == 0 {
			return fmt.Errorf("mesh %s has no trust bundle yet", name)
		}
		return nil
	})
	return mi
}

// decision waits for the CertificateRequest of Certificate ns/name to be
// approved or denied, and returns the condition.
func decision(t *testing.T, ns, name string) cmapi.CertificateRequestCondition {
	t.Helper()
	var out cmapi.CertificateRequestCondition
	testenv.Eventually(t, 30*time.Second, func() error {
		var list cmapi.CertificateRequestList
		if err := k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, cr := range list.Items {
			if cr.Annotations[cmapi.CertificateNameKey] != name {
				continue
			}
			for _, c := range cr.Status.Conditions {
				if c.Type == cmapi.CertificateRequestConditionApproved || c.Type == cmapi.CertificateRequestConditionDenied {
					out = c
					return nil
				}
			}
		}
		return fmt.Errorf("no decided CertificateRequest for Certificate %s/%s", ns, name)
	})
	return out
}

// neverIssued checks that the Secret of Certificate ns/name holds no
// certificate, a while after its request was decided.
func neverIssued(t *testing.T, ns, secret string) {
	t.Helper()
	time.Sleep(2 * time.Second) // the CA controller would have signed by now
	s := &corev1.Secret{}
	err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: secret}, s)
	if err == nil && len(s.Data[corev1.TLSCertKey]) > 0 {
		t.Errorf("Secret %s/%s holds a certificate the mesh's issuer signed", ns, secret)
	} else if err != nil && !apierrors.IsNotFound(err) {
		t.Error(err)
	}
}

// Only the mesh's own identities are issued by the mesh's CA: the operator
// approves the CertificateRequests for its issuers itself, and denies every
// other, with a reason naming what is wrong. Before, cert-manager's default
// approver approved them all, so any namespace could obtain any identity.
func TestOnlyTheMeshsOwnIdentitiesAreIssued(t *testing.T) {
	ctx := context.Background()
	mi := readyMesh(t, "guarded")
	td := "cluster.local"
	victim := newNamespace(t, map[string]string{meshv1alpha1.MonitorLabel: mi.Name})
	attacker := newNamespace(t, map[string]string{meshv1alpha1.MonitorLabel: mi.Name})
	outsider := newNamespace(t, nil)
	for _, sa := range []struct{ ns, name string }{{attacker, "app"}, {outsider, "app"}} {
		if err := k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: sa.ns, Name: sa.name}}); err != nil {
			t.Fatal(err)
		}
	}

	// The operator's own identity for a pod of the victim namespace.
	if err := k8s.Create(ctx, meshedPod("guarded", victim, "db-1", "db")); err != nil {
		t.Fatal(err)
	}
	own := decision(t, victim, meshv1alpha1.IdentitySecretName("db"))
	if own.Type != cmapi.CertificateRequestConditionApproved || own.Reason != controllers.ApproverReason {
		t.Fatalf("the mesh's own identity: %s by %q: %s", own.Type, own.Reason, own.Message)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		s := &corev1.Secret{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: victim, Name: meshv1alpha1.IdentitySecretName("db")}, s); err != nil {
			return err
		}
		if len(s.Data[corev1.TLSCertKey]) == 0 {
			return fmt.Errorf("the identity Secret has no certificate yet")
		}
		return nil
	})

	caIssuer := cmmeta.IssuerReference{Name: "osm-" + mi.Name + "-ca", Kind: cmapi.ClusterIssuerKind, Group: "cert-manager.io"}
	spiffe := func(ns, sa string) string { return fmt.Sprintf("spiffe://%s/ns/%s/sa/%s", td, ns, sa) }
	for _, tc := range []struct {
		name, ns string
		spec     cmapi.CertificateSpec
		// why is a part of the denial's message.
		why string
	}{
		{"another namespace's identity", attacker, cmapi.CertificateSpec{URIs: []string{spiffe(victim, "db")}}, "is requested only there"},
		{"a service account that does not exist", attacker, cmapi.CertificateSpec{URIs: []string{spiffe(attacker, "ghost")}}, "does not exist"},
		{"a DNS SAN besides the identity", attacker, cmapi.CertificateSpec{URIs: []string{spiffe(attacker, "app")}, DNSNames: []string{"db." + victim + ".svc"}}, "no DNS, IP or email"},
		{"an IP SAN besides the identity", attacker, cmapi.CertificateSpec{URIs: []string{spiffe(attacker, "app")}, IPAddresses: []string{"10.0.0.1"}}, "no DNS, IP or email"},
		{"two identities", attacker, cmapi.CertificateSpec{URIs: []string{spiffe(attacker, "app"), spiffe(victim, "db")}}, "exactly one URI"},
		{"a CA", attacker, cmapi.CertificateSpec{URIs: []string{spiffe(attacker, "app")}, IsCA: true}, "no CA"},
		{"a common name", attacker, cmapi.CertificateSpec{URIs: []string{spiffe(attacker, "app")}, CommonName: "db"}, "empty subject"},
		{"a subject organization", attacker, cmapi.CertificateSpec{URIs: []string{spiffe(attacker, "app")}, Subject: &cmapi.X509Subject{Organizations: []string{"system:masters"}}}, "empty subject"},
		{"a longer life than the mesh's", attacker, cmapi.CertificateSpec{URIs: []string{spiffe(attacker, "app")}, Duration: &metav1.Duration{Duration: 1000 * time.Hour}}, "longer than the mesh's"},
		{"userinfo before the trust domain", attacker, cmapi.CertificateSpec{URIs: []string{"spiffe://x@" + td + "/ns/" + attacker + "/sa/app"}}, "is not spiffe://"},
		{"another trust domain", attacker, cmapi.CertificateSpec{URIs: []string{"spiffe://evil.example/ns/" + attacker + "/sa/app"}}, "is not spiffe://"},
		{"code signing", attacker, cmapi.CertificateSpec{URIs: []string{spiffe(attacker, "app")}, Usages: []cmapi.KeyUsage{cmapi.UsageCodeSigning}}, "usage"},
		{"an identity of a namespace outside the mesh", outsider, cmapi.CertificateSpec{URIs: []string{spiffe(outsider, "app")}}, "not in the mesh"},
		{"the xDS server's name", attacker, cmapi.CertificateSpec{DNSNames: []string{"osm-operator-xds." + operatorNamespace + ".svc"}}, "operator's namespace"},
		{"any DNS name", attacker, cmapi.CertificateSpec{DNSNames: []string{"shop.example"}}, "signs only workload identities"},
		{"the self-signed root issuer", attacker, cmapi.CertificateSpec{URIs: []string{spiffe(attacker, "app")}, IsCA: true,
			IssuerRef: cmmeta.IssuerReference{Name: "osm-" + mi.Name + "-selfsigned", Kind: cmapi.ClusterIssuerKind, Group: "cert-manager.io"}}, "only the mesh's root CA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("forged-%d", seq.Add(1))
			spec := tc.spec
			spec.SecretName = name
			if spec.Duration == nil {
				spec.Duration = &metav1.Duration{Duration: time.Hour}
			}
			if spec.IssuerRef.Name == "" {
				spec.IssuerRef = caIssuer
			}
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
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
			return err
		}
		c := conditionOf(mi.Status.Conditions, meshv1alpha1.ConditionIdentityIssuanceRestricted)
		if c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("IdentityIssuanceRestricted %+v, want True", c)
		}
		return nil
	})
}

func conditionOf(conds []metav1.Condition, typ string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

// With cert-manager's default approver running too, requests for the
// mesh's issuers are approved by it, whatever the operator would decide:
// the mesh says so, and how to turn that approver off.
func TestTheDefaultApproverIsReported(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := certmanager.StartDefaultApprover(ctx, env.Environment); err != nil {
		t.Fatal(err)
	}
	mi := readyMesh(t, "loose")
	ns := newNamespace(t, map[string]string{meshv1alpha1.MonitorLabel: mi.Name})
	for i := range 3 {
		sa := fmt.Sprintf("app-%d", i)
		if err := k8s.Create(ctx, meshedPod(mi.Name, ns, sa+"-1", sa)); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(mi), mi); err != nil {
			return err
		}
		c := conditionOf(mi.Status.Conditions, meshv1alpha1.ConditionIdentityIssuanceRestricted)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != meshv1alpha1.ReasonApprovedByAnother ||
			!strings.Contains(c.Message, "certificaterequests-approver") {
			return fmt.Errorf("IdentityIssuanceRestricted %+v, want False naming the flag", c)
		}
		return nil
	})
}

// An issuer the user names may sign for others too: the operator decides
// only the requests that claim a mesh identity or the xDS server's names,
// however they spell them, and leaves the rest to the cluster's approvers.
func TestASharedIssuerSignsOnlyTheMeshsOwnForTheMesh(t *testing.T) {
	ctx := context.Background()
	root, err := testpki.NewCA("shared root")
	if err != nil {
		t.Fatal(err)
	}
	// The mesh's ingress gateway certificate, signed by the shared issuer.
	ingressNS := newNamespace(t, nil)
	const ingressName = "ingress.sharing.example"
	for _, o := range []client.Object{
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "shared-ca", Namespace: certmanager.ClusterResourceNamespace},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{"tls.crt": root.PEM, "tls.key": root.KeyPEM()},
		},
		&cmapi.ClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: "shared-ca"}, Spec: cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{CA: &cmapi.CAIssuer{SecretName: "shared-ca"}}}},
		&meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "sharing"}, Spec: meshv1alpha1.MeshInstanceSpec{Certificates: meshv1alpha1.Certificates{
			IssuerRef: &meshv1alpha1.IssuerReference{Name: "shared-ca", Kind: "ClusterIssuer"},
			IngressGateway: &meshv1alpha1.IngressGatewayCertificate{
				SubjectAltNames: []string{ingressName}, Secret: meshv1alpha1.SecretReference{Name: "ingress-client", Namespace: ingressNS},
			},
		}}},
	} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	ns := newNamespace(t, map[string]string{meshv1alpha1.MonitorLabel: "sharing"})
	if err := k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}}); err != nil {
		t.Fatal(err)
	}
	issuer := cmmeta.IssuerReference{Name: "shared-ca", Kind: cmapi.ClusterIssuerKind, Group: "cert-manager.io"}
	create := func(spec cmapi.CertificateSpec) string {
		t.Helper()
		name := fmt.Sprintf("shared-%d", seq.Add(1))
		spec.SecretName, spec.IssuerRef, spec.Duration = name, issuer, &metav1.Duration{Duration: time.Hour}
		if err := k8s.Create(ctx, &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}); err != nil {
			t.Fatal(err)
		}
		return name
	}
	for _, tc := range []struct {
		name string
		spec cmapi.CertificateSpec
		want cmapi.CertificateRequestConditionType
	}{
		{"the mesh's own identity", cmapi.CertificateSpec{URIs: []string{"spiffe://cluster.local/ns/" + ns + "/sa/app"}}, cmapi.CertificateRequestConditionApproved},
		{"an identity behind userinfo", cmapi.CertificateSpec{URIs: []string{"spiffe://x@cluster.local/ns/" + ns + "/sa/db"}}, cmapi.CertificateRequestConditionDenied},
		{"an identity of another trust domain", cmapi.CertificateSpec{URIs: []string{"spiffe://elsewhere.example/ns/" + ns + "/sa/app"}}, cmapi.CertificateRequestConditionDenied},
		{"the xDS server's name by a wildcard", cmapi.CertificateSpec{DNSNames: []string{"*.osm-operator-xds." + operatorNamespace + ".svc"}}, cmapi.CertificateRequestConditionDenied},
		{"the xDS server's name in capitals", cmapi.CertificateSpec{DNSNames: []string{"OSM-OPERATOR-XDS." + operatorNamespace + ".svc"}}, cmapi.CertificateRequestConditionDenied},
		// Not left to the cluster's other approvers: it would pass as the
		// mesh's ingress gateway.
		{"the ingress gateway's name", cmapi.CertificateSpec{DNSNames: []string{ingressName}, Usages: []cmapi.KeyUsage{cmapi.UsageClientAuth}}, cmapi.CertificateRequestConditionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := create(tc.spec)
			if got := decision(t, ns, name); got.Type != tc.want || got.Reason != controllers.ApproverReason {
				t.Fatalf("%s by %q: %s; want %s", got.Type, got.Reason, got.Message, tc.want)
			}
		})
	}
	t.Run("the mesh's ingress gateway certificate", func(t *testing.T) {
		if got := decision(t, ingressNS, "osm-sharing-ingress-gateway"); got.Type != cmapi.CertificateRequestConditionApproved || got.Reason != controllers.ApproverReason {
			t.Fatalf("%s by %q: %s; want Approved", got.Type, got.Reason, got.Message)
		}
	})
	t.Run("a name that is not the mesh's", func(t *testing.T) {
		name := create(cmapi.CertificateSpec{DNSNames: []string{"shop.example"}})
		time.Sleep(3 * time.Second)
		var list cmapi.CertificateRequestList
		if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, cr := range list.Items {
			if cr.Annotations[cmapi.CertificateNameKey] != name {
				continue
			}
			found = true
			for _, c := range cr.Status.Conditions {
				if c.Type == cmapi.CertificateRequestConditionApproved || c.Type == cmapi.CertificateRequestConditionDenied {
					t.Errorf("the operator decided a request that is not the mesh's: %s %s", c.Type, c.Message)
				}
			}
		}
		if !found {
			t.Error("no CertificateRequest was made")
		}
	})
}

// createRequest creates a CertificateRequest for issuer in ns, as a user
// who may create them can, asking for the names given and the duration (nil:
// none), and annotated as of Certificate name, so that decision finds it.
func createRequest(t *testing.T, ns, name string, issuer cmmeta.IssuerReference, duration *metav1.Duration, uris, dnsNames []string) *cmapi.CertificateRequest {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.CertificateRequest{DNSNames: dnsNames}
	for _, u := range uris {
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	cr := &cmapi.CertificateRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{cmapi.CertificateNameKey: name}},
		Spec: cmapi.CertificateRequestSpec{
			IssuerRef: issuer, Duration: duration,
			Request: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
		},
	}
	if err := k8s.Create(context.Background(), cr); err != nil {
		t.Fatal(err)
	}
	return cr
}

// A request that names no lifetime is given the issuer's: cert-manager's
// default of 90 days for its CA signer, and whatever a Vault role or an
// external issuer defaults to for a duration of 0 ("0s" is Vault's "the
// role's default TTL"). The mesh's certificates live at most its
// spec.certificates.duration, so a request with no duration, a zero or a
// negative one is denied, even for an identity the mesh would sign.
func TestARequestMustNameItsLifetime(t *testing.T) {
	ctx := context.Background()
	mi := readyMesh(t, "lifetimes")
	ns := newNamespace(t, map[string]string{meshv1alpha1.MonitorLabel: mi.Name})
	if err := k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}}); err != nil {
		t.Fatal(err)
	}
	caIssuer := cmmeta.IssuerReference{Name: "osm-" + mi.Name + "-ca", Kind: cmapi.ClusterIssuerKind, Group: "cert-manager.io"}
	identity := []string{"spiffe://cluster.local/ns/" + ns + "/sa/app"}
	for _, tc := range []struct {
		name     string
		duration *metav1.Duration
		want     cmapi.CertificateRequestConditionType
	}{
		{"an hour", &metav1.Duration{Duration: time.Hour}, cmapi.CertificateRequestConditionApproved},
		{"no duration", nil, cmapi.CertificateRequestConditionDenied},
		{"a duration of zero", &metav1.Duration{}, cmapi.CertificateRequestConditionDenied},
		{"a negative duration", &metav1.Duration{Duration: -time.Hour}, cmapi.CertificateRequestConditionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("lifetime-%d", seq.Add(1))
			createRequest(t, ns, name, caIssuer, tc.duration, identity, nil)
			got := decision(t, ns, name)
			if got.Type != tc.want || got.Reason != controllers.ApproverReason {
				t.Fatalf("%s by %q: %s; want %s", got.Type, got.Reason, got.Message, tc.want)
			}
			if tc.want == cmapi.CertificateRequestConditionDenied && !strings.Contains(got.Message, "names no duration") {
				t.Errorf("denied saying %q; want it to say the request names no duration", got.Message)
			}
		})
	}
}

// The approver's xDS server names have the cluster's domain
// (--cluster-domain): on an issuer the mesh shares, a request naming the
// shared xDS Service's full name in the cluster's domain claims the server
// and is denied outside the operator's namespace; the same name in
// cluster.local, which is no name of this cluster's, is left to the
// cluster's other approvers, as any name not the mesh's is. The xDS serving
// certificate names no domain (bootstrap.XDSServingNames: the names proxies
// verify), so it is approved whatever the domain, and a serving request for
// the full name is not one: denied in the operator's namespace too. The
// test runs an approver of its own, for an operator namespace of its own:
// the suite's leaves these requests alone, as they are not its server's.
func TestTheApproverHasTheClusterDomain(t *testing.T) {
	ctx := context.Background()
	root, err := testpki.NewCA("domain root")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []client.Object{
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "domain-ca", Namespace: certmanager.ClusterResourceNamespace},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{"tls.crt": root.PEM, "tls.key": root.KeyPEM()},
		},
		&cmapi.ClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: "domain-ca"}, Spec: cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{CA: &cmapi.CAIssuer{SecretName: "domain-ca"}}}},
		&meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "domains"}, Spec: meshv1alpha1.MeshInstanceSpec{Certificates: meshv1alpha1.Certificates{
			IssuerRef: &meshv1alpha1.IssuerReference{Name: "domain-ca", Kind: "ClusterIssuer"},
		}}},
	} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	opNS := newNamespace(t, nil)
	other := newNamespace(t, nil)
	issuer := cmmeta.IssuerReference{Name: "domain-ca", Kind: cmapi.ClusterIssuerKind, Group: "cert-manager.io"}
	shared := func(domain string) string { return fmt.Sprintf("osm-operator-xds.%s.svc.%s", opNS, domain) }
	const none = cmapi.CertificateRequestConditionType("")
	for _, tc := range []struct {
		name, ns, domain string
		dnsNames         []string
		want             cmapi.CertificateRequestConditionType
		why              string
	}{
		{"the xDS serving certificate", opNS, "corp.example", bootstrap.XDSServingNames("domains", opNS), cmapi.CertificateRequestConditionApproved, "the xDS server's certificate"},
		{"the shared Service in the cluster's domain, elsewhere", other, "corp.example", []string{shared("corp.example")}, cmapi.CertificateRequestConditionDenied, "operator's namespace"},
		{"the shared Service in the cluster's domain, as a serving name", opNS, "corp.example", []string{shared("corp.example")}, cmapi.CertificateRequestConditionDenied, "is not one of the xDS server's"},
		{"the shared Service in cluster.local, not this cluster's", other, "corp.example", []string{shared("cluster.local")}, none, ""},
		{"the shared Service in cluster.local, the default domain", other, "", []string{shared("cluster.local")}, cmapi.CertificateRequestConditionDenied, "operator's namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			approver := &controllers.ApproverReconciler{
				Client: k8s, Reader: k8s,
				Namespace: opNS, ClusterResourceNamespace: certmanager.ClusterResourceNamespace, ClusterDomain: tc.domain,
			}
			name := fmt.Sprintf("domain-%d", seq.Add(1))
			cr := createRequest(t, tc.ns, name, issuer, &metav1.Duration{Duration: time.Hour}, nil, tc.dnsNames)
			if _, err := approver.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(cr)}); err != nil {
				t.Fatal(err)
			}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(cr), cr); err != nil {
				t.Fatal(err)
			}
			var got cmapi.CertificateRequestCondition
			for _, c := range cr.Status.Conditions {
				if c.Type == cmapi.CertificateRequestConditionApproved || c.Type == cmapi.CertificateRequestConditionDenied {
					got = c
				}
			}
			if got.Type != tc.want || !strings.Contains(got.Message, tc.why) {
				t.Errorf("%q: %s %q; want %q, saying %q", tc.dnsNames, got.Type, got.Message, tc.want, tc.why)
			}
		})
	}
}

// The approver signs a MeshVM's identity only in the mesh the model and
// the xDS server place the VM in (mesh.VMMesh): not for a VM of mesh A in
// a namespace labelled for mesh B, nor for a VM of B in a namespace in no
// mesh whose first VM is A's; the first VM's identity is signed.
func TestTheApproverSignsAVMOnlyInItsNamespacesMesh(t *testing.T) {
	ctx := context.Background()
	a, b := readyMesh(t, "vmmesh-a"), readyMesh(t, "vmmesh-b")
	issuer := func(mi *meshv1alpha1.MeshInstance) cmmeta.IssuerReference {
		return cmmeta.IssuerReference{Name: "osm-" + mi.Name + "-ca", Kind: cmapi.ClusterIssuerKind, Group: "cert-manager.io"}
	}
	labelled := newNamespace(t, map[string]string{meshv1alpha1.MonitorLabel: b.Name})
	free := newNamespace(t, nil)
	vmPorts := []meshv1alpha1.VMPort{{Name: "http", Port: 8080, Protocol: meshv1alpha1.ProtocolHTTP}}
	vmOf := func(ns, name, mesh, addr string) {
		t.Helper()
		for _, o := range []client.Object{
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-" + name}},
			&meshv1alpha1.MeshVM{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
				Spec: meshv1alpha1.MeshVMSpec{Mesh: mesh, ServiceAccountName: "app-" + name, Addresses: []string{addr}, Ports: vmPorts}},
		} {
			if err := k8s.Create(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
	}
	vmOf(labelled, "lost", a.Name, "192.0.2.61")
	// A namespace of mesh B by its MeshMember (labelled by the operator
	// soon after; either way it is B's).
	member := newNamespace(t, nil)
	if err := k8s.Create(ctx, &meshv1alpha1.MeshMember{ObjectMeta: metav1.ObjectMeta{Namespace: member, Name: "m"}, Spec: meshv1alpha1.MeshMemberSpec{Mesh: b.Name}}); err != nil {
		t.Fatal(err)
	}
	vmOf(member, "joined", a.Name, "192.0.2.64")
	vmOf(free, "first", a.Name, "192.0.2.62")
	time.Sleep(1100 * time.Millisecond) // creation timestamps have a resolution of a second
	// The later VM runs as the first one's service account.
	if err := k8s.Create(ctx, &meshv1alpha1.MeshVM{ObjectMeta: metav1.ObjectMeta{Namespace: free, Name: "later"},
		Spec: meshv1alpha1.MeshVMSpec{Mesh: b.Name, ServiceAccountName: "app-first", Addresses: []string{"192.0.2.63"}, Ports: vmPorts}}); err != nil {
		t.Fatal(err)
	}
	hour := &metav1.Duration{Duration: time.Hour}
	for _, tc := range []struct {
		name, ns, sa string
		mesh         *meshv1alpha1.MeshInstance
		want         cmapi.CertificateRequestConditionType
	}{
		{"a VM of mesh A in a namespace of mesh B", labelled, "app-lost", a, cmapi.CertificateRequestConditionDenied},
		{"a VM of mesh A in a namespace with a MeshMember of mesh B", member, "app-joined", a, cmapi.CertificateRequestConditionDenied},
		{"the first VM of a namespace in no mesh", free, "app-first", a, cmapi.CertificateRequestConditionApproved},
		{"a later VM of another mesh there", free, "app-first", b, cmapi.CertificateRequestConditionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("vmmesh-%d", seq.Add(1))
			createRequest(t, tc.ns, name, issuer(tc.mesh), hour, []string{"spiffe://cluster.local/ns/" + tc.ns + "/sa/" + tc.sa}, nil)
			if got := decision(t, tc.ns, name); got.Type != tc.want || got.Reason != controllers.ApproverReason {
				t.Fatalf("%s by %q: %s; want %s", got.Type, got.Reason, got.Message, tc.want)
			}
		})
	}
}
