package controllers

import (
	"errors"
	"fmt"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testpki"
	"github.com/open-service-mesh/osm-operator/xds/census"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
)

func testVM() *meshv1alpha1.MeshVM {
	return &meshv1alpha1.MeshVM{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop", Generation: 3},
		Spec:       meshv1alpha1.MeshVMSpec{Mesh: "m", ServiceAccountName: "db", Addresses: []string{"192.0.2.10"}, Services: []string{"db"}},
	}
}

func issuedCertificate(ready bool, msg string) *cmapi.Certificate {
	s := cmmeta.ConditionFalse
	if ready {
		s = cmmeta.ConditionTrue
	}
	return &cmapi.Certificate{Status: cmapi.CertificateStatus{Conditions: []cmapi.CertificateCondition{{Type: cmapi.CertificateConditionReady, Status: s, Message: msg}}}}
}

// vmFactsUpTo are the facts of testVM's reconcile that went all the way:
// its identity issued, its bootstrap written, its slices published, and
// its proxy p by the census.
func vmFactsUpTo(t *testing.T, p *meshv1alpha1.ProxyStatus) vmFacts {
	t.Helper()
	ca, err := testpki.NewCA("vm identity")
	if err != nil {
		t.Fatal(err)
	}
	return vmFacts{
		addresses: addressCheck{accepted: []string{"192.0.2.10"}},
		mesh:      &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "m"}},
		identity: &vmIdentity{
			cert:   issuedCertificate(true, ""),
			secret: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "osm-identity-db"}, Data: map[string][]byte{CertKey: ca.PEM}},
			spiffe: "spiffe://cluster.local/ns/shop/sa/db",
		},
		bootstrap: &vmBootstrapFacts{bundle: client.ObjectKey{Namespace: "osm-system", Name: "osm-m-trust-bundle"}, secret: "db-bootstrap"},
		census:    &census.Census{},
		proxy:     p,
		published: true,
	}
}

func TestVMStatus(t *testing.T) {
	then := metav1.NewTime(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	connected := &meshv1alpha1.ProxyStatus{Connected: true, LastSeen: &then, Version: "envoy/1.36.2", Replica: "xds-1"}
	disconnected := &meshv1alpha1.ProxyStatus{LastSeen: &then, Version: "envoy/1.36.2", Replica: "xds-1"}
	group := mesh.VMGroup(testVM()).String()
	quota := failedWrite(fmt.Errorf("writing bootstrap Secret db-bootstrap: %w",
		apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "db-bootstrap", errors.New("exceeded quota"))))
	const (
		ready       = meshv1alpha1.ConditionReady
		reconciling = meshv1alpha1.ConditionReconciling
		stalled     = meshv1alpha1.ConditionStalled
		addresses   = meshv1alpha1.ConditionAddressesAccepted
		certificate = meshv1alpha1.ConditionCertificateReady
		boot        = meshv1alpha1.ConditionBootstrapReady
		config      = meshv1alpha1.ConditionProxyConfigReady
		connection  = meshv1alpha1.ConditionProxyConnected
	)
	for _, c := range []struct {
		name   string
		facts  func() vmFacts
		vm     func(*meshv1alpha1.MeshVM)
		want   map[string]want
		status func(t *testing.T, st meshv1alpha1.MeshVMStatus)
	}{
		{
			name:  "connected: ready",
			facts: func() vmFacts { return vmFactsUpTo(t, connected) },
			want: map[string]want{
				ready:       {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "Reconciled"},
				addresses:   {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "every address is accepted"},
				certificate: {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "identity certificate issued"},
				boot:        {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "kubectl get secret db-bootstrap -n shop"},
				config:      {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, "The proxy's config is published"},
				connection:  {metav1.ConditionTrue, "Connected", "proxy envoy/1.36.2 connected to xds-1"},
				reconciling: {}, stalled: {},
			},
			status: func(t *testing.T, st meshv1alpha1.MeshVMStatus) {
				if c := st.Certificate; c == nil || c.SecretName != "osm-identity-db" || c.Identity != "spiffe://cluster.local/ns/shop/sa/db" || c.NotAfter == nil {
					t.Errorf("status.certificate = %+v", c)
				}
				if st.BootstrapSecretName != "db-bootstrap" || !equality.Semantic.DeepEqual(st.Proxy, connected) {
					t.Errorf("bootstrap %q, proxy %+v", st.BootstrapSecretName, st.Proxy)
				}
			},
		},
		{
			name:  "never connected: waiting for a proxy",
			facts: func() vmFacts { return vmFactsUpTo(t, nil) },
			want: map[string]want{
				connection:  {metav1.ConditionFalse, "NotConnected", "run `osm-operator vm bootstrap db -n shop` and start Envoy on the VM"},
				ready:       {metav1.ConditionFalse, "AwaitingProxy", ""},
				reconciling: {metav1.ConditionTrue, "AwaitingProxy", ""},
			},
		},
		{
			name:  "a proxyless VM never connected: told to start its application",
			facts: func() vmFacts { return vmFactsUpTo(t, nil) },
			vm:    func(vm *meshv1alpha1.MeshVM) { vm.Spec.Proxy = meshv1alpha1.ProxyProxylessGRPC },
			want: map[string]want{
				connection: {metav1.ConditionFalse, "NotConnected", "GRPC_XDS_BOOTSTRAP=" + VMConfigDir + "/" + GRPCBootstrapKey},
			},
		},
		{
			name:  "disconnected: waiting, saying since when",
			facts: func() vmFacts { return vmFactsUpTo(t, disconnected) },
			want: map[string]want{
				connection:  {metav1.ConditionFalse, "Disconnected", "the VM's proxy disconnected at 2025-03-01T12:00:00Z"},
				ready:       {metav1.ConditionFalse, "ProxyDisconnected", ""},
				reconciling: {metav1.ConditionTrue, "ProxyDisconnected", ""},
			},
		},
		{
			name: "its group failed its translation: stalled, connected or not",
			facts: func() vmFacts {
				f := vmFactsUpTo(t, disconnected)
				f.census.Failing = census.Failing{"shop": {Groups: 1, Errors: map[string]string{group: "bad cluster"}}}
				return f
			},
			want: map[string]want{
				config:      {metav1.ConditionFalse, meshv1alpha1.ReasonTranslationFailed, "bad cluster"},
				connection:  {metav1.ConditionFalse, "Disconnected", ""},
				ready:       {metav1.ConditionFalse, meshv1alpha1.ReasonTranslationFailed, ""},
				stalled:     {metav1.ConditionTrue, meshv1alpha1.ReasonTranslationFailed, ""},
				reconciling: {},
			},
		},
		{
			name: "more groups failed than the census names: unknown, not the VM's Ready",
			facts: func() vmFacts {
				f := vmFactsUpTo(t, connected)
				f.census.Failing = census.Failing{"shop": {Groups: 3, Errors: map[string]string{"other": "x"}}}
				return f
			},
			want: map[string]want{
				config: {metav1.ConditionUnknown, meshv1alpha1.ReasonTranslationFailed, "may be one of the others"},
				ready:  {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, ""},
			},
		},
		{
			name: "an unsafe address: stalled, the others published",
			facts: func() vmFacts {
				f := vmFactsUpTo(t, connected)
				f.addresses.unsafe = []string{"127.0.0.1 is a loopback address"}
				return f
			},
			want: map[string]want{
				addresses: {metav1.ConditionFalse, meshv1alpha1.ReasonUnsafeAddress, "addresses left out of the VM's EndpointSlices: 127.0.0.1 is a loopback address"},
				ready:     {metav1.ConditionFalse, meshv1alpha1.ReasonUnsafeAddress, ""},
				stalled:   {metav1.ConditionTrue, meshv1alpha1.ReasonUnsafeAddress, ""},
			},
		},
		{
			name: "a pod's address: waiting",
			facts: func() vmFacts {
				f := vmFactsUpTo(t, connected)
				f.addresses.conflicts = []string{"192.0.2.11 is the IP of pod shop/web"}
				return f
			},
			want: map[string]want{
				addresses:   {metav1.ConditionFalse, meshv1alpha1.ReasonAddressConflict, "pod shop/web"},
				reconciling: {metav1.ConditionTrue, meshv1alpha1.ReasonAddressConflict, ""},
				stalled:     {},
			},
		},
		{
			name: "a Service it backs does not exist: waiting",
			facts: func() vmFacts {
				f := vmFactsUpTo(t, connected)
				f.missingServices = []string{"db"}
				return f
			},
			want: map[string]want{
				ready:       {metav1.ConditionFalse, "ServiceNotFound", "the VM backs Services that do not exist: [db]"},
				reconciling: {metav1.ConditionTrue, "ServiceNotFound", ""},
			},
		},
		{
			name:  "no mesh: waiting",
			facts: func() vmFacts { return vmFacts{addresses: addressCheck{accepted: []string{"192.0.2.10"}}} },
			want: map[string]want{
				addresses:   {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, ""},
				ready:       {metav1.ConditionFalse, meshv1alpha1.ReasonMeshNotFound, "MeshInstance m not found"},
				reconciling: {metav1.ConditionTrue, meshv1alpha1.ReasonMeshNotFound, ""},
				certificate: {},
			},
		},
		{
			name: "its identity pending: waiting",
			facts: func() vmFacts {
				f := vmFactsUpTo(t, nil)
				f.identity = &vmIdentity{cert: issuedCertificate(false, "Issuing certificate as Secret does not exist")}
				f.bootstrap, f.census, f.published = nil, nil, false
				return f
			},
			want: map[string]want{
				certificate: {metav1.ConditionFalse, meshv1alpha1.ReasonCertificatePending, "identity certificate: Issuing certificate"},
				ready:       {metav1.ConditionFalse, meshv1alpha1.ReasonCertificatePending, "identity certificate: Issuing certificate"},
				boot:        {},
			},
			status: func(t *testing.T, st meshv1alpha1.MeshVMStatus) {
				if st.Certificate != nil {
					t.Errorf("status.certificate %+v of an identity not issued", st.Certificate)
				}
			},
		},
		{
			name: "the mesh's trust bundle is unknown: waiting",
			facts: func() vmFacts {
				f := vmFactsUpTo(t, nil)
				f.bootstrap = &vmBootstrapFacts{bundle: client.ObjectKey{Namespace: "osm-system", Name: "osm-m-trust-bundle"}, bundleMissing: true}
				f.census, f.published = nil, false
				return f
			},
			want: map[string]want{
				boot:        {metav1.ConditionFalse, meshv1alpha1.ReasonTrustBundleUnknown, "waiting for mesh m's trust bundle (Secret osm-system/osm-m-trust-bundle"},
				ready:       {metav1.ConditionFalse, meshv1alpha1.ReasonTrustBundleUnknown, ""},
				reconciling: {metav1.ConditionTrue, meshv1alpha1.ReasonTrustBundleUnknown, ""},
				connection:  {},
			},
		},
		{
			name: "a mesh spec that makes no Certificate: stalled",
			facts: func() vmFacts {
				f := vmFactsUpTo(t, nil)
				f.identity, f.bootstrap, f.census, f.published = &vmIdentity{invalid: "identity x: bad"}, nil, nil, false
				return f
			},
			want: map[string]want{
				ready:   {metav1.ConditionFalse, meshv1alpha1.ReasonInvalidSpec, "identity x: bad"},
				stalled: {metav1.ConditionTrue, meshv1alpha1.ReasonInvalidSpec, ""},
			},
		},
		{
			name: "the bootstrap Secret's write failed: retried, never stalled",
			facts: func() vmFacts {
				f := vmFactsUpTo(t, nil)
				f.bootstrap.secret, f.census, f.published, f.failedWrite = "", nil, false, quota
				return f
			},
			want: map[string]want{
				boot:        {metav1.ConditionFalse, reasonWriteFailed, "exceeded quota"},
				ready:       {metav1.ConditionFalse, reasonWriteFailed, "writing bootstrap Secret db-bootstrap"},
				reconciling: {metav1.ConditionTrue, reasonWriteFailed, ""},
				stalled:     {},
			},
		},
		{
			name: "an EndpointSlice's write failed: the proxy recorded, the rest as it was",
			facts: func() vmFacts {
				f := vmFactsUpTo(t, connected)
				f.published, f.failedWrite = false, failedWrite(errors.New("writing EndpointSlice db-db-ipv4 for Service db: denied"))
				return f
			},
			want: map[string]want{
				boot:       {metav1.ConditionTrue, meshv1alpha1.ReasonSucceeded, ""},
				ready:      {metav1.ConditionFalse, reasonWriteFailed, "writing EndpointSlice db-db-ipv4"},
				connection: {},
			},
			status: func(t *testing.T, st meshv1alpha1.MeshVMStatus) {
				if !equality.Semantic.DeepEqual(st.Proxy, connected) {
					t.Errorf("status.proxy = %+v, want the census's", st.Proxy)
				}
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			vm := testVM()
			if c.vm != nil {
				c.vm(vm)
			}
			read := vm.DeepCopy()
			st := vmStatus(vm, c.facts())
			if !equality.Semantic.DeepEqual(vm, read) {
				t.Errorf("vmStatus changed the VM it was given")
			}
			if st.ObservedGeneration != 3 {
				t.Errorf("observedGeneration %d, want 3", st.ObservedGeneration)
			}
			checkConditions(t, st.Conditions, c.want)
			if c.status != nil {
				c.status(t, st)
			}
		})
	}
}

// A VM's status.proxy follows the census: connected while a replica holds
// its stream, disconnected since now once none does; never connected is
// no proxy.
func TestVMProxy(t *testing.T) {
	then := metav1.NewTime(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	now := metav1.NewTime(then.Add(time.Hour))
	key := census.VMKey("shop", "db")
	held := census.VMs{key: {Version: "envoy/1.37.0", Since: then, Replica: "xds-2"}}
	was := &meshv1alpha1.ProxyStatus{Connected: true, LastSeen: ptr.To(metav1.NewTime(then.Add(-time.Hour))), Version: "envoy/1.36.2", Replica: "xds-1"}
	gone := &meshv1alpha1.ProxyStatus{LastSeen: &then, Version: "envoy/1.36.2", Replica: "xds-1"}
	for _, c := range []struct {
		name string
		prev *meshv1alpha1.ProxyStatus
		vms  census.VMs
		want *meshv1alpha1.ProxyStatus
	}{
		{"connects", nil, held, &meshv1alpha1.ProxyStatus{Connected: true, LastSeen: &then, Version: "envoy/1.37.0", Replica: "xds-2"}},
		{"moves to another replica", was, held, &meshv1alpha1.ProxyStatus{Connected: true, LastSeen: &then, Version: "envoy/1.37.0", Replica: "xds-2"}},
		{"disconnects now", was, census.VMs{"shop/other": {}}, &meshv1alpha1.ProxyStatus{LastSeen: &now, Version: "envoy/1.36.2", Replica: "xds-1"}},
		{"stays disconnected since then", gone, nil, gone},
		{"never connected", nil, nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			read := c.prev.DeepCopy()
			got := vmProxy(c.prev, c.vms, key, now)
			if !equality.Semantic.DeepEqual(got, c.want) {
				t.Errorf("vmProxy = %+v, want %+v", got, c.want)
			}
			if !equality.Semantic.DeepEqual(c.prev, read) {
				t.Errorf("vmProxy changed the status it was given")
			}
		})
	}
}

// A VM's addresses: a pod's waits, an unsafe one stalls, the others are
// published.
func TestCheckAddresses(t *testing.T) {
	ips := mesh.PodIPs{}
	ips.Add(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}, Status: corev1.PodStatus{PodIP: "10.0.0.7"}})
	got := checkAddresses([]string{"192.0.2.10", "10.0.0.7", "127.0.0.1"}, ips)
	if fmt.Sprint(got.accepted) != "[192.0.2.10]" || len(got.conflicts) != 1 || len(got.unsafe) != 1 {
		t.Fatalf("checkAddresses = %+v", got)
	}
	cond, o := addressesAccepted(got)
	if !o.stalled || o.reason != meshv1alpha1.ReasonUnsafeAddress || cond.Status != metav1.ConditionFalse || cond.Message != o.message {
		t.Errorf("AddressesAccepted = %+v, outcome %+v", cond, o)
	}
	got.unsafe = nil
	if cond, o = addressesAccepted(got); o.stalled || o.reason != meshv1alpha1.ReasonAddressConflict || cond.Reason != meshv1alpha1.ReasonAddressConflict {
		t.Errorf("with a pod's address only: AddressesAccepted = %+v, outcome %+v", cond, o)
	}
}
