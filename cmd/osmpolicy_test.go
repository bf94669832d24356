package main

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
)

// TestOSMResiliencePoliciesWithProxylessGRPC runs OSM's Retry and
// UpstreamTrafficSetting manifests on grpc-go's own xDS client, against the
// operator, the API server and cert-manager's real controllers: a Retry
// retries its source's failed calls to its destination (counted on the
// server) and nobody else's; an UpstreamTrafficSetting's maxRequests fails
// its host's excess calls at once; each says in its status whether the
// mesh applies it, and names what it left out.
func TestOSMResiliencePoliciesWithProxylessGRPC(t *testing.T) {
	const ns = "osm-policies"
	mi := &meshv1alpha1.MeshInstance{ObjectMeta: metav1.ObjectMeta{Name: "osm-kinds"}, Spec: meshv1alpha1.MeshInstanceSpec{
		TrafficPolicy: meshv1alpha1.TrafficPolicy{Mode: meshv1alpha1.TrafficPolicyPermissive}}}
	g := newGRPCMesh(t, mi, ns, "v1")
	client1, other1, v1 := g.pod("client-1", "client"), g.pod("other-1", "other"), g.pod("v1-1", "v1")
	retry := &policyv1alpha1.Retry{ObjectMeta: metav1.ObjectMeta{Name: "client", Namespace: ns}, Spec: policyv1alpha1.RetrySpec{
		Source:       policyv1alpha1.RetrySource{Kind: policyv1alpha1.RetrySourceServiceAccount, Name: "client", Namespace: ns},
		Destinations: []policyv1alpha1.RetryDestination{{Kind: policyv1alpha1.RetryDestinationService, Name: "retried", Namespace: ns}},
		RetryPolicy:  policyv1alpha1.RetryPolicySpec{RetryOn: "5xx,unavailable", NumRetries: ptr.To[int64](3), RetryBackoffBaseInterval: "10ms"},
	}}
	// A Retry for another namespace's service account: left out.
	foreign := retry.DeepCopy()
	foreign.Name, foreign.Spec.Source.Namespace = "foreign", "default"
	setting := &policyv1alpha1.UpstreamTrafficSetting{ObjectMeta: metav1.ObjectMeta{Name: "throttled", Namespace: ns}, Spec: policyv1alpha1.UpstreamTrafficSettingSpec{
		Host:               "throttled." + ns + ".svc.cluster.local",
		ConnectionSettings: &policyv1alpha1.ConnectionSettings{HTTP: &policyv1alpha1.HTTPConnectionSettings{MaxRequests: ptr.To[int64](2), MaxRetries: ptr.To[int64](3)}},
	}}
	g.create(client1, other1, v1,
		grpcService(ns, "retried"), g.endpoints("retried", "v1", v1, "192.0.2.101"),
		grpcService(ns, "throttled"), g.endpoints("throttled", "v1", v1, "192.0.2.101"),
		retry, foreign, setting)
	g.serve("v1", v1)
	boot := g.bootstrap(client1)
	retried, throttled := g.dial(boot, "retried"), g.dial(boot, "throttled")
	otherRetried := g.dial(g.bootstrap(other1), "retried")

	// The Retry: a call failing its first 2 tries succeeds on the third;
	// failing 5, the call fails after 1 + 3 tries.
	testenv.Eventually(t, 60*time.Second, func() error {
		key := fmt.Sprintf("probe-%d", time.Now().UnixNano())
		if c, _ := g.call(unary(retried), "x-fail-key", key, "x-fail-first", "1"); c != codes.OK {
			return fmt.Errorf("a call failing its first try: %s", c)
		}
		return nil
	})
	v1svc := g.services["v1"]
	if c, _ := g.call(unary(retried), "x-fail-key", "a", "x-fail-first", "2"); c != codes.OK || v1svc.triesOf("a") != 3 {
		t.Errorf("a call failing its first 2 tries, with 3 retries: %s after %d tries, want OK after 3", c, v1svc.triesOf("a"))
	}
	if c, _ := g.call(unary(retried), "x-fail-key", "b", "x-fail-first", "9"); c != codes.Unavailable || v1svc.triesOf("b") != 4 {
		t.Errorf("a call failing every try, with 3 retries: %s after %d tries, want Unavailable after 1 + 3", c, v1svc.triesOf("b"))
	}
	// Another service account's calls are not retried.
	testenv.Eventually(t, 60*time.Second, func() error {
		if c, _ := g.call(unary(otherRetried)); c != codes.OK {
			return fmt.Errorf("other's call: %s", c)
		}
		return nil
	})
	if c, _ := g.call(unary(otherRetried), "x-fail-key", "c", "x-fail-first", "1"); c != codes.Unavailable || v1svc.triesOf("c") != 1 {
		t.Errorf("a failing call of a source no Retry names: %s after %d tries, want Unavailable after 1", c, v1svc.triesOf("c"))
	}

	// The setting's maxRequests: with 2 in flight, the excess fails at once.
	testenv.Eventually(t, 30*time.Second, func() error {
		if c, _ := g.call(unary(throttled)); c != codes.OK {
			return fmt.Errorf("throttled: %s", c)
		}
		return nil
	})
	var mu sync.Mutex
	results := map[codes.Code]int{}
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			c, _ := g.call(unary(throttled), "x-sleep", "1s")
			mu.Lock()
			results[c]++
			mu.Unlock()
		})
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	if results[codes.OK] != 2 || results[codes.Unavailable] != 4 {
		t.Errorf("6 concurrent calls with maxRequests 2: %v, want 2 OK and 4 Unavailable", results)
	}

	// Statuses: the Retry applies; the foreign one is left out, saying
	// why; the setting applies but for maxRetries, which it names.
	ready := func(obj client.Object, conds *[]metav1.Condition) (metav1.Condition, error) {
		if err := g.k.Get(g.ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return metav1.Condition{}, err
		}
		for _, c := range *conds {
			if c.Type == meshv1alpha1.ConditionReady && c.ObservedGeneration == obj.GetGeneration() {
				return c, nil
			}
		}
		return metav1.Condition{}, fmt.Errorf("%s has no Ready condition of its generation: %+v", obj.GetName(), *conds)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if c, err := ready(retry, &retry.Status.Conditions); err != nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("Retry %s: %+v %v", retry.Name, c, err)
		}
		if c, err := ready(foreign, &foreign.Status.Conditions); err != nil || c.Status != metav1.ConditionFalse ||
			c.Reason != policyv1alpha1.ReasonLeftOut || !strings.Contains(c.Message, "its own namespace") {
			return fmt.Errorf("Retry %s: %+v %v", foreign.Name, c, err)
		}
		c, err := ready(setting, &setting.Status.Conditions)
		if err != nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "spec.connectionSettings.http.maxRetries") {
			return fmt.Errorf("UpstreamTrafficSetting %s: %+v %v", setting.Name, c, err)
		}
		if setting.Status.CurrentStatus != policyv1alpha1.IngressBackendError || setting.Status.ObservedGeneration != setting.Generation {
			return fmt.Errorf("UpstreamTrafficSetting %s: OSM status %q, observed generation %d", setting.Name, setting.Status.CurrentStatus, setting.Status.ObservedGeneration)
		}
		return nil
	})
	// Without maxRetries the setting is committed.
	setting.Spec.ConnectionSettings.HTTP.MaxRetries = nil
	if err := g.k.Update(g.ctx, setting); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		c, err := ready(setting, &setting.Status.Conditions)
		if err != nil || c.Status != metav1.ConditionTrue || setting.Status.CurrentStatus != policyv1alpha1.IngressBackendCommitted {
			return fmt.Errorf("UpstreamTrafficSetting %s: %+v %q %v", setting.Name, c, setting.Status.CurrentStatus, err)
		}
		return nil
	})

	// Each says on how many proxies it is in force: the Retry on its
	// source's; the setting, of its new generation, on every proxy that
	// calls its host (in a Permissive mesh, all of them). The foreign
	// Retry configures no proxy.
	enforced := func(obj client.Object, conds *[]metav1.Condition, status metav1.ConditionStatus, msg string) error {
		if err := g.k.Get(g.ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		c := meta.FindStatusCondition(*conds, "Enforced")
		if c == nil || c.Status != status || !strings.Contains(c.Message, msg) || c.ObservedGeneration != obj.GetGeneration() {
			return fmt.Errorf("%s (generation %d): Enforced %+v", obj.GetName(), obj.GetGeneration(), c)
		}
		if r := meta.FindStatusCondition(*conds, meshv1alpha1.ConditionReady); r == nil {
			return fmt.Errorf("%s lost its Ready condition: %+v", obj.GetName(), *conds)
		}
		return nil
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		return errors.Join(
			enforced(retry, &retry.Status.Conditions, metav1.ConditionTrue, "1/1 proxies of 1 group (grpc/osm-policies/client)"),
			enforced(setting, &setting.Status.Conditions, metav1.ConditionTrue, "3/3 proxies of 3 groups"),
			enforced(foreign, &foreign.Status.Conditions, metav1.ConditionUnknown, "0/0 proxies"),
		)
	})
}
