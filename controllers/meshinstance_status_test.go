package controllers

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testpki"
	"github.com/open-service-mesh/osm-operator/xds/census"
)

func readyClusterIssuer(ready bool, msg string) *cmapi.ClusterIssuer {
	s := cmmeta.ConditionFalse
	if ready {
		s = cmmeta.ConditionTrue
	}
	return &cmapi.ClusterIssuer{Status: cmapi.IssuerStatus{Conditions: []cmapi.IssuerCondition{{Type: cmapi.IssuerConditionReady, Status: s, Message: msg}}}}
}

// meshFactsUpTo are the facts of a bootstrapped mesh "m" whose reconcile
// went all the way, its trust bundle root.
func meshFactsUpTo(root *x509.Certificate, now time.Time) meshFacts {
	return meshFacts{
		ca: caFacts{
			issuer:  &issuerFacts{ref: cmmeta.IssuerReference{Name: "osm-m-ca", Kind: cmapi.ClusterIssuerKind, Group: certManagerGroup}, clusterIssuer: readyClusterIssuer(true, "")},
			serving: issuedCertificate(true, ""),
			bundle:  &bundle{certs: []*x509.Certificate{root}, reason: meshv1alpha1.ReasonBootstrapped, message: "The trust bundle is the mesh's bootstrapped root CA"},
			written: true,
		},
		namespaces: []string{"shop", "store"},
		certificates: []cmapi.Certificate{
			{Spec: cmapi.CertificateSpec{URIs: []string{"spiffe://cluster.local/ns/shop/sa/web"}}},
			{Spec: cmapi.CertificateSpec{DNSNames: []string{"osm-m-xds.osm-system.svc"}}},
		},
		vms: []meshv1alpha1.MeshVM{
			{Status: meshv1alpha1.MeshVMStatus{Proxy: &meshv1alpha1.ProxyStatus{Connected: true}}},
			{Status: meshv1alpha1.MeshVMStatus{Proxy: &meshv1alpha1.ProxyStatus{}}},
			{},
		},
		census: census.Census{Counts: census.Counts{"shop": 2, "store": 1, "outside": 10}},
		now:    now,
	}
}

// approvedRequest is a CertificateRequest for the mesh's CA issuer that
// approver approved, created at.
func approvedRequest(name, approver string, at time.Time) cmapi.CertificateRequest {
	return cmapi.CertificateRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", CreationTimestamp: metav1.NewTime(at)},
		Spec:       cmapi.CertificateRequestSpec{IssuerRef: cmmeta.IssuerReference{Name: "osm-m-ca", Kind: cmapi.ClusterIssuerKind, Group: certManagerGroup}},
		Status: cmapi.CertificateRequestStatus{Conditions: []cmapi.CertificateRequestCondition{
			{Type: cmapi.CertificateRequestConditionApproved, Status: cmmeta.ConditionTrue, Reason: approver},
		}},
	}
}

func TestMeshStatus(t *testing.T) {
	root, err := testpki.NewCA("mesh root")
	if err != nil {
		t.Fatal(err)
	}
	// While the root is valid: the bundle's expiry is judged at now.
	now := root.Cert.NotBefore.Add(time.Hour)
	prev := meshv1alpha1.MeshInstanceStatus{
		ObservedGeneration: 1, MemberNamespaces: 9,
		Conditions: []metav1.Condition{{Type: meshv1alpha1.ConditionCertificateAuthorityReady, Status: metav1.ConditionTrue, Reason: meshv1alpha1.ReasonSucceeded}},
	}
	const (
		ready       = meshv1alpha1.ConditionReady
		reconciling = meshv1alpha1.ConditionReconciling
		stalled     = meshv1alpha1.ConditionStalled
		ca          = meshv1alpha1.ConditionCertificateAuthorityReady
		trust       = meshv1alpha1.ConditionTrustBundleKnown
		config      = meshv1alpha1.ConditionProxyConfigReady
		policies    = meshv1alpha1.ConditionPoliciesValid
		issuance    = meshv1alpha1.ConditionIdentityIssuanceRestricted
	)
	for _, c := range []struct {
		name   string
		facts  func() meshFacts
		want   map[string]want
		status func(t *testing.T, st meshv1alpha1.MeshInstanceStatus)
	}{
		{
			name:  "ready",
			facts: func() meshFacts { return meshFactsUpTo(root.Cert, now) },
			want: map[string]want{
				ready:       {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "Reconciled"},
				ca:          {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "The mesh certificate authority is ready"},
				trust:       {metav1.ConditionTrue, meshv1alpha1.ReasonBootstrapped, "bootstrapped root CA"},
				config:      {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, ""},
				policies:    {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "Every object of the mesh is in use"},
				issuance:    {metav1.ConditionTrue, meshv1alpha1.ReasonOnlyTheOperatorApproves, ""},
				reconciling: {}, stalled: {},
			},
			status: func(t *testing.T, st meshv1alpha1.MeshInstanceStatus) {
				if len(st.TrustBundle) != 1 || st.TrustBundle[0].Subject != "CN=mesh root" {
					t.Errorf("trust bundle %+v", st.TrustBundle)
				}
				// 2 + 1 sidecars of member namespaces, 1 connected VM.
				if st.MemberNamespaces != 2 || st.Identities != 1 || st.VMs != 3 || st.ConnectedProxies != 4 {
					t.Errorf("namespaces %d, identities %d, VMs %d, proxies %d; want 2, 1, 3, 4", st.MemberNamespaces, st.Identities, st.VMs, st.ConnectedProxies)
				}
			},
		},
		{
			name: "a bad trust bundle in the spec: stalled",
			facts: func() meshFacts {
				f := meshFactsUpTo(root.Cert, now)
				f.ca = caFacts{specErr: errors.New("spec.certificates.trustBundle.pem: block 1 is not PEM")}
				return f
			},
			want: map[string]want{
				trust:   {metav1.ConditionFalse, meshv1alpha1.ReasonInvalidSpec, "block 1 is not PEM"},
				ca:      {metav1.ConditionFalse, meshv1alpha1.ReasonInvalidSpec, "block 1 is not PEM"},
				stalled: {metav1.ConditionTrue, meshv1alpha1.ReasonInvalidSpec, ""},
				ready:   {metav1.ConditionFalse, meshv1alpha1.ReasonInvalidSpec, ""},
			},
		},
		{
			name: "an issuer that cannot sign for the mesh: stalled",
			facts: func() meshFacts {
				f := meshFactsUpTo(root.Cert, now)
				f.ca = caFacts{issuer: &issuerFacts{ref: cmmeta.IssuerReference{Name: "local", Kind: cmapi.IssuerKind}}}
				return f
			},
			want: map[string]want{
				ca:          {metav1.ConditionFalse, meshv1alpha1.ReasonIssuerKindUnsupported, "use a ClusterIssuer"},
				stalled:     {metav1.ConditionTrue, meshv1alpha1.ReasonIssuerKindUnsupported, ""},
				reconciling: {},
				trust:       {},
			},
		},
		{
			name: "an issuer not ready: waiting",
			facts: func() meshFacts {
				f := meshFactsUpTo(root.Cert, now)
				f.ca = caFacts{issuer: &issuerFacts{ref: cmmeta.IssuerReference{Name: "corp-ca", Kind: cmapi.ClusterIssuerKind}, clusterIssuer: readyClusterIssuer(false, "secret not found")}}
				return f
			},
			want: map[string]want{
				ca:          {metav1.ConditionFalse, meshv1alpha1.ReasonIssuerNotReady, "ClusterIssuer corp-ca is not ready: secret not found"},
				reconciling: {metav1.ConditionTrue, meshv1alpha1.ReasonIssuerNotReady, ""},
				stalled:     {},
			},
		},
		{
			name: "the serving certificate pending: waiting",
			facts: func() meshFacts {
				f := meshFactsUpTo(root.Cert, now)
				f.ca.serving, f.ca.bundle, f.ca.written = issuedCertificate(false, "Issuing"), nil, false
				return f
			},
			want: map[string]want{
				ca:          {metav1.ConditionFalse, meshv1alpha1.ReasonCertificatePending, "the xDS serving certificate: Issuing"},
				reconciling: {metav1.ConditionTrue, meshv1alpha1.ReasonCertificatePending, ""},
			},
		},
		{
			name: "the root not issued yet: TrustBundleKnown False, waiting",
			facts: func() meshFacts {
				f := meshFactsUpTo(root.Cert, now)
				f.ca.bundle, f.ca.written = &bundle{reason: meshv1alpha1.ReasonCertificatePending, message: "the mesh's root CA is not issued yet"}, false
				return f
			},
			want: map[string]want{
				trust:       {metav1.ConditionFalse, meshv1alpha1.ReasonCertificatePending, "the mesh's root CA is not issued yet"},
				ready:       {metav1.ConditionFalse, meshv1alpha1.ReasonCertificatePending, "the mesh's root CA is not issued yet"},
				reconciling: {metav1.ConditionTrue, meshv1alpha1.ReasonCertificatePending, ""},
			},
			status: func(t *testing.T, st meshv1alpha1.MeshInstanceStatus) {
				if st.TrustBundle != nil {
					t.Errorf("a trust bundle %+v while none is known", st.TrustBundle)
				}
			},
		},
		{
			name: "an issuer that publishes no CA: trust bundle unknown, waiting",
			facts: func() meshFacts {
				f := meshFactsUpTo(root.Cert, now)
				f.ca.bundle, f.ca.written = &bundle{reason: meshv1alpha1.ReasonIssuerPublishesNoCA, message: "ACME signed it with no CA"}, false
				return f
			},
			want: map[string]want{
				trust:       {metav1.ConditionFalse, meshv1alpha1.ReasonIssuerPublishesNoCA, "ACME signed it with no CA"},
				ca:          {metav1.ConditionFalse, meshv1alpha1.ReasonTrustBundleUnknown, "the trust bundle is not known: ACME signed it with no CA"},
				reconciling: {metav1.ConditionTrue, meshv1alpha1.ReasonTrustBundleUnknown, ""},
				stalled:     {},
			},
		},
		{
			name: "a failed write: retried, the other conditions as they were",
			facts: func() meshFacts {
				return meshFacts{ca: caFacts{}, failedWrite: failedWrite(errors.New("ensuring *v1.ClusterIssuer osm-m-selfsigned: denied")), now: now}
			},
			want: map[string]want{
				ready:       {metav1.ConditionFalse, reasonWriteFailed, "osm-m-selfsigned: denied"},
				reconciling: {metav1.ConditionTrue, reasonWriteFailed, ""},
				ca:          {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, ""},
				config:      {}, policies: {},
			},
			status: func(t *testing.T, st meshv1alpha1.MeshInstanceStatus) {
				if st.MemberNamespaces != 9 || st.ObservedGeneration != 2 {
					t.Errorf("member namespaces %d, observed generation %d; want 9 as read, 2", st.MemberNamespaces, st.ObservedGeneration)
				}
			},
		},
		{
			name: "groups of a member namespace failed: ProxyConfigReady False, the mesh still Ready",
			facts: func() meshFacts {
				f := meshFactsUpTo(root.Cert, now)
				f.census.Failing = census.Failing{"store": {Groups: 2, Errors: map[string]string{"a": "x", "b": "y"}}, "outside": {Groups: 5}}
				return f
			},
			want: map[string]want{
				config: {metav1.ConditionFalse, meshv1alpha1.ReasonTranslationFailed, "2 proxy groups keep their last good config, their translation failed: a: x; b: y"},
				ready:  {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, ""},
			},
		},
		{
			name: "objects left out: PoliciesValid False, the mesh still Ready",
			facts: func() meshFacts {
				f := meshFactsUpTo(root.Cert, now)
				f.leftOut = []leftOut{{object: "TrafficTarget shop/t", kind: "TrafficTarget", problems: []string{"spec.rules[0]: no route group"}}}
				return f
			},
			want: map[string]want{
				policies: {metav1.ConditionFalse, meshv1alpha1.ReasonInvalidObjects, "1 TrafficTarget left out"},
				ready:    {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, ""},
			},
		},
		{
			name: "a request approved by another approver: issuance not restricted, the newest named",
			facts: func() meshFacts {
				f := meshFactsUpTo(root.Cert, now)
				f.requests = []cmapi.CertificateRequest{
					approvedRequest("old", "cert-manager.io", now.Add(-25*time.Hour)),
					approvedRequest("web-1", "cert-manager.io", now.Add(-2*time.Hour)),
					approvedRequest("web-2", "policy-approver", now.Add(-time.Hour)),
					approvedRequest("own", ApproverReason, now),
				}
				return f
			},
			want: map[string]want{
				issuance: {metav1.ConditionFalse, meshv1alpha1.ReasonApprovedByAnother, `CertificateRequest shop/web-2 for the mesh's issuer osm-m-ca was approved by "policy-approver"`},
				ready:    {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, ""},
			},
		},
		{
			name: "only requests approved long ago by another: restricted again",
			facts: func() meshFacts {
				f := meshFactsUpTo(root.Cert, now)
				f.requests = []cmapi.CertificateRequest{approvedRequest("old", "cert-manager.io", now.Add(-25*time.Hour))}
				return f
			},
			want: map[string]want{issuance: {metav1.ConditionTrue, meshv1alpha1.ReasonOnlyTheOperatorApproves, ""}},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "m", Generation: 2}, Status: *prev.DeepCopy()}
			read := mi.DeepCopy()
			st := meshStatus(mi, c.facts())
			if !equality.Semantic.DeepEqual(mi, read) {
				t.Errorf("meshStatus changed the mesh it was given")
			}
			if st.ObservedGeneration != 2 {
				t.Errorf("observedGeneration %d, want 2", st.ObservedGeneration)
			}
			checkConditions(t, st.Conditions, c.want)
			if c.status != nil {
				c.status(t, st)
			}
		})
	}
}

// A mesh being deleted waits for what holds it, saying what, and leaves
// its observedGeneration to its spec's last status.
func TestDeletingStatus(t *testing.T) {
	mi := &meshv1alpha1.MeshInstance{
		ObjectMeta: metav1.ObjectMeta{Name: "m", Generation: 3},
		Status: meshv1alpha1.MeshInstanceStatus{ObservedGeneration: 2, Conditions: []metav1.Condition{
			{Type: meshv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: meshv1alpha1.ReasonSucceeded},
		}},
	}
	read := mi.DeepCopy()
	st := deletingStatus(mi, holders{members: []string{"shop/m"}, vms: []string{"db/vm-2", "db/vm-1"}, namespaces: []string{"legacy"}})
	checkConditions(t, st.Conditions, map[string]want{
		meshv1alpha1.ConditionReady: {metav1.ConditionFalse, meshv1alpha1.ReasonDeleting,
			"deletion waits for 1 MeshMembers (shop/m), 2 MeshVMs (db/vm-1, db/vm-2) and 1 labelled namespaces (legacy) to leave the mesh; a labelled namespace leaves when its " + meshv1alpha1.MonitorLabel + " label is removed"},
		meshv1alpha1.ConditionReconciling: {metav1.ConditionTrue, meshv1alpha1.ReasonDeleting, ""},
		meshv1alpha1.ConditionStalled:     {},
	})
	if st.ObservedGeneration != 2 {
		t.Errorf("observedGeneration %d, want 2 as it was", st.ObservedGeneration)
	}
	if !equality.Semantic.DeepEqual(mi, read) {
		t.Errorf("deletingStatus changed the mesh it was given")
	}
}

// The mesh's issuer: a kind that cannot sign for the mesh stalls; an
// issuer missing or not ready waits; one that cannot be read is judged by
// the certificates it signs.
func TestIssuerVerdict(t *testing.T) {
	external := cmmeta.IssuerReference{Name: "vault", Kind: "VaultIssuer", Group: "vault.example.com"}
	withReady := func(status, msg string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{}}
		if status != "" {
			u.Object["status"] = map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": status, "message": msg}}}
		}
		return u
	}
	for _, c := range []struct {
		name    string
		f       issuerFacts
		reason  string
		stalled bool
		msg     string
	}{
		{"an Issuer", issuerFacts{ref: cmmeta.IssuerReference{Name: "local", Kind: cmapi.IssuerKind}}, meshv1alpha1.ReasonIssuerKindUnsupported, true, "issuerRef Issuer/local"},
		{"a ClusterIssuer missing", issuerFacts{ref: cmmeta.IssuerReference{Name: "corp", Kind: cmapi.ClusterIssuerKind}}, meshv1alpha1.ReasonIssuerNotReady, false, "ClusterIssuer corp not found"},
		{"a ClusterIssuer with no Ready yet", issuerFacts{ref: cmmeta.IssuerReference{Name: "corp", Kind: cmapi.ClusterIssuerKind}, clusterIssuer: &cmapi.ClusterIssuer{}},
			meshv1alpha1.ReasonIssuerNotReady, false, "ClusterIssuer corp is not ready: no Ready condition yet"},
		{"a ClusterIssuer ready", issuerFacts{ref: cmmeta.IssuerReference{Name: "corp", Kind: cmapi.ClusterIssuerKind, Group: certManagerGroup}, clusterIssuer: readyClusterIssuer(true, "")}, "", false, ""},
		{"a kind not served", issuerFacts{ref: external}, meshv1alpha1.ReasonIssuerKindNotInstalled, false, "serves no kind VaultIssuer in group vault.example.com"},
		{"a namespaced kind", issuerFacts{ref: external, served: true, namespaced: true}, meshv1alpha1.ReasonIssuerKindUnsupported, true, "VaultIssuer.vault.example.com is a namespaced kind"},
		{"an external issuer missing", issuerFacts{ref: external, served: true}, meshv1alpha1.ReasonIssuerNotReady, false, "VaultIssuer vault not found"},
		{"an external issuer forbidden", issuerFacts{ref: external, served: true, forbidden: true}, "", false, ""},
		{"an external issuer not ready", issuerFacts{ref: external, served: true, object: withReady("False", "sealed")}, meshv1alpha1.ReasonIssuerNotReady, false, "VaultIssuer vault is not ready: sealed"},
		{"an external issuer with no Ready", issuerFacts{ref: external, served: true, object: withReady("", "")}, "", false, ""},
		{"an external issuer ready", issuerFacts{ref: external, served: true, object: withReady("True", "")}, "", false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := c.f.verdict()
			if o.reason != c.reason || o.stalled != c.stalled || o.message != "" && c.msg == "" || !strings.Contains(o.message, c.msg) {
				t.Errorf("verdict = %+v, want reason %q, stalled %v, message with %q", o, c.reason, c.stalled, c.msg)
			}
		})
	}
}
