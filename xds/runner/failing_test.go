package runner_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	dto "github.com/prometheus/client_model/go"
	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
	"github.com/open-service-mesh/osm-operator/internal/testpki"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/translate"
	"github.com/open-service-mesh/osm-operator/xds/xdstest"
)

// A group whose translation fails (here: its identity Secret holds a key
// that does not match its certificate, which every one of its proxies would
// reject) keeps its last good snapshot, and its proxies are served it; the
// other groups of the mesh go on getting changes; the failure is counted
// in the metrics and reported for the census (Failing, which the replica's
// Lease carries into status). Once the Secret is right again, the group
// gets the changes it missed.
func TestAFailingGroupKeepsItsLastGoodSnapshot(t *testing.T) {
	forEachOrder(t, testAFailingGroupKeepsItsLastGoodSnapshot)
}

func testAFailingGroupKeepsItsLastGoodSnapshot(t *testing.T, o order) {
	ctx := testContext(t)
	ns, _, es := shopIn(t, o)
	storeKey := mesh.Group{Kind: mesh.ProxyEnvoy, Identity: mesh.Identity{Namespace: ns, ServiceAccount: "store"}}.String()
	buyerKey := mesh.Group{Kind: mesh.ProxyEnvoy, Identity: mesh.Identity{Namespace: ns, ServiceAccount: "buyer"}}.String()
	published := func() (store, buyer [types.UnknownType]string) {
		v := snapshots.Versions()
		return v[storeKey], v[buyerKey]
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if s, b := published(); s[types.Secret] == "" || b[types.Endpoint] == "" {
			return fmt.Errorf("store %v, buyer %v: not published with secrets yet", s, b)
		}
		return nil
	})
	goodStore, goodBuyer := published()
	errorsBefore := counter(t, "osm_xds_translation_errors_total")

	// Someone writes a foreign key into the store's identity Secret.
	sec := &corev1.Secret{}
	key := client.ObjectKey{Namespace: ns, Name: meshv1alpha1.IdentitySecretName("store")}
	if err := k8s.Get(ctx, key, sec); err != nil {
		t.Fatal(err)
	}
	goodKey := sec.Data["tls.key"]
	other, err := ca.Workload(mesh.Identity{Namespace: ns, ServiceAccount: "intruder"}.SPIFFE("cluster.local"))
	if err != nil {
		t.Fatal(err)
	}
	sec.Data["tls.key"] = other.KeyPEM
	if err := k8s.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	// Then the store moves, a change for the buyer's group.
	es.Endpoints[0].Addresses = []string{"10.1.0.9"}
	if err := k8s.Update(ctx, es); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if _, b := published(); b[types.Endpoint] == goodBuyer[types.Endpoint] {
			return fmt.Errorf("the buyer's endpoints are still at %s", b[types.Endpoint])
		}
		return nil
	})
	testenv.Eventually(t, 20*time.Second, func() error {
		f := xdsRunner.Failing()[ns]
		if f.Groups != 1 || !strings.Contains(f.Errors[storeKey], "private key does not match public key") {
			return fmt.Errorf("Failing = %+v, want the store's group and its key error", f)
		}
		return nil
	})
	// Once that failed, an auditor is allowed to call the store: a change
	// for the store's group alone, which fails again.
	failures := counter(t, "osm_xds_translation_errors_total")
	mustCreate(t, &accessv1alpha3.TrafficTarget{
		ObjectMeta: metav1.ObjectMeta{Name: "auditor-to-store", Namespace: ns},
		Spec: accessv1alpha3.TrafficTargetSpec{
			Destination: accessv1alpha3.IdentityBindingSubject{Kind: "ServiceAccount", Name: "store", Namespace: ns},
			Sources:     []accessv1alpha3.IdentityBindingSubject{{Kind: "ServiceAccount", Name: "auditor", Namespace: ns}},
			Rules:       []accessv1alpha3.TrafficTargetRule{{Kind: "HTTPRouteGroup", Name: "store-all"}},
		},
	})
	testenv.Eventually(t, 20*time.Second, func() error {
		if n := counter(t, "osm_xds_translation_errors_total"); n == failures {
			return fmt.Errorf("the store's group was not translated again")
		}
		return nil
	})
	if s, _ := published(); s != goodStore {
		t.Errorf("the failing group's snapshot moved: %v, was %v", s, goodStore)
	}
	if n := counter(t, "osm_xds_translation_errors_total"); n <= errorsBefore {
		t.Errorf("osm_xds_translation_errors_total = %v, was %v", n, errorsBefore)
	}
	if n := gauge(t, "osm_xds_groups_failing"); n < 1 {
		t.Errorf("osm_xds_groups_failing = %v", n)
	}

	// A store proxy is served the last good config: its own certificate
	// with the key that matches it, never the foreign key.
	storeKP := testpki.KeyPair{CertPEM: sec.Data["tls.crt"], KeyPEM: goodKey}
	s, err := xdstest.OpenStream(ctx, connect(t, &storeKP), nodeID(ns, "store-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Subscribe(resourcev3.SecretType, []string{translate.IdentitySecret}); err != nil {
		t.Fatal(err)
	}
	r := awaitSotW(t, s, func(r *discoveryv3.DiscoveryResponse) bool { return len(r.GetResources()) > 0 })
	got := &tlsv3.Secret{}
	if err := r.GetResources()[0].UnmarshalTo(got); err != nil {
		t.Fatal(err)
	}
	if k := got.GetTlsCertificate().GetPrivateKey().GetInlineBytes(); !bytes.Equal(k, goodKey) {
		t.Errorf("the store proxy was served another key than its last good one")
	}

	// The Secret is put right: the group gets the policy change it missed.
	if err := k8s.Get(ctx, key, sec); err != nil {
		t.Fatal(err)
	}
	sec.Data["tls.key"] = goodKey
	if err := k8s.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if f, ok := xdsRunner.Failing()[ns]; ok {
			return fmt.Errorf("still failing: %+v", f)
		}
		if s, _ := published(); s[types.Listener] == goodStore[types.Listener] {
			return fmt.Errorf("the store's listeners are still at their old version")
		}
		return nil
	})
}

// counter and gauge read a metric of the controller-runtime registry.
func counter(t *testing.T, name string) float64 {
	return metric(t, name, func(m *dto.Metric) float64 { return m.GetCounter().GetValue() })
}

func gauge(t *testing.T, name string) float64 {
	return metric(t, name, func(m *dto.Metric) float64 { return m.GetGauge().GetValue() })
}

func metric(t *testing.T, name string, value func(*dto.Metric) float64) float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			var sum float64
			for _, m := range f.GetMetric() {
				sum += value(m)
			}
			return sum
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
