package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	accessv1alpha3 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/access/v1alpha3"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/open-service-mesh/osm-operator/api/v1alpha1"
	"github.com/open-service-mesh/osm-operator/internal/testenv"
)

// TestPlanAgainstALiveCluster runs `osm-operator plan` (and status and
// explain) against the API
// server holding the bookstore sample, with pods and endpoints of the
// bookbuyer, the bookthief and the bookstore: re-applying the sample's
// policy changes nothing (0); a TrafficTarget letting the bookthief buy
// books changes exactly the bookstore's and the bookthief's config (2); a
// TrafficTarget naming routes that do not exist is a problem (2); an object
// the API server refuses is an error (1); nothing is ever written.
func TestPlanAgainstALiveCluster(t *testing.T) {
	o := startCluster(t)
	ctx, k := o.ctx, o.k
	objs, err := testenv.Kustomize(filepath.Join("..", "config", "samples", "bookstore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range objs {
		if err := k.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	// What the Deployments would run (no controller makes pods here).
	for _, p := range []struct{ ns, sa, addr string }{
		{"bookbuyer", "bookbuyer", "10.244.0.11"}, {"bookthief", "bookthief", "10.244.0.12"}, {"bookstore", "bookstore", "10.244.0.13"},
	} {
		if err := k.Create(ctx, testPod(p.ns, p.sa+"-1", p.sa)); err != nil {
			t.Fatal(err)
		}
	}
	// The bookstore pod backs the root Service and both of its split's.
	for _, svc := range []string{"bookstore", "bookstore-v1", "bookstore-v2"} {
		es := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: svc + "-1", Namespace: "bookstore", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](14001)}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.13"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "bookstore-1", Namespace: "bookstore"}}},
		}
		if err := k.Create(ctx, es); err != nil {
			t.Fatal(err)
		}
	}
	config := func() (*rest.Config, error) { return o.env.Config, nil }
	plan := func(manifest string) (int, string, string) {
		t.Helper()
		f := filepath.Join(t.TempDir(), "change.yaml")
		if err := os.WriteFile(f, []byte(manifest), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		code := runPlan([]string{"-f", f}, nil, &out, &errOut, config)
		return code, out.String(), errOut.String()
	}

	policy, err := os.ReadFile(filepath.Join("..", "config", "samples", "bookstore", "03-policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := plan(string(policy)); code != planNoChange || !strings.Contains(out, "mesh osm: no change") {
		t.Errorf("plan of the applied policy: exit %d\n%s%s", code, out, errOut)
	}

	code, out, errOut := plan(`
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: bookthief-to-bookstore, namespace: bookstore}
spec:
  destination: {kind: ServiceAccount, name: bookstore, namespace: bookstore}
  rules: [{kind: HTTPRouteGroup, name: bookstore-service-routes, matches: [buy-a-book]}]
  sources: [{kind: ServiceAccount, name: bookthief, namespace: bookthief}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: extra, namespace: bookthief}
spec:
  selector: {matchLabels: {app: extra}}
  template:
    metadata: {labels: {app: extra}}
    spec: {containers: [{name: app, image: app}]}
`)
	t.Logf("plan of a new TrafficTarget (exit %d):\n%s", code, out)
	if code != planChanges || !strings.Contains(out, "mesh osm: 2 of ") {
		t.Errorf("plan of a new TrafficTarget: exit %d, want 2 groups changing\n%s%s", code, out, errOut)
	}
	for _, g := range []string{"envoy/bookstore/bookstore", "envoy/bookthief/bookthief"} {
		if !strings.Contains(out, g) {
			t.Errorf("the plan does not name %s:\n%s", g, out)
		}
	}
	if strings.Contains(out, "envoy/bookbuyer/bookbuyer") {
		t.Errorf("the plan changes the bookbuyer, which the TrafficTarget does not name:\n%s", out)
	}
	if !strings.Contains(errOut, "Deployment bookthief/extra is not read by the mesh") {
		t.Errorf("the Deployment is not noted: %s", errOut)
	}

	code, out, _ = plan(`
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: broken, namespace: bookstore}
spec:
  destination: {kind: ServiceAccount, name: bookstore, namespace: bookstore}
  rules: [{kind: HTTPRouteGroup, name: no-such-routes}]
  sources: [{kind: ServiceAccount, name: bookthief, namespace: bookthief}]
`)
	if code != planChanges || !strings.Contains(out, "! new problem: TrafficTarget bookstore/broken") {
		t.Errorf("plan of a TrafficTarget naming no routes: exit %d\n%s", code, out)
	}

	code, out, _ = plan(`
apiVersion: policy.openservicemesh.io/v1alpha1
kind: Retry
metadata: {name: sloppy, namespace: bookbuyer}
spec:
  source: {kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}
  destinations: [{kind: Service, name: bookstore, namespace: bookstore}]
  retryPolicy: {retryOn: "5xx, reset"}
`)
	if code != planError || !strings.Contains(out, "refused by the API server: Retry bookbuyer/sloppy") {
		t.Errorf("plan of an object the API server refuses: exit %d\n%s", code, out)
	}

	// status prints what the statuses say: the mesh's, as a leader would
	// write it, and each sample object, which no operator judged here.
	mi := &meshv1alpha1.MeshInstance{}
	if err := k.Get(ctx, client.ObjectKey{Name: "osm"}, mi); err != nil {
		t.Fatal(err)
	}
	mi.Status.ConnectedProxies, mi.Status.Identities = 3, 4
	meta.SetStatusCondition(&mi.Status.Conditions, metav1.Condition{Type: meshv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: meshv1alpha1.ReasonSucceeded, Message: "ready"})
	if err := k.Status().Update(ctx, mi); err != nil {
		t.Fatal(err)
	}
	var out2, errOut2 bytes.Buffer
	if code := runStatus(nil, &out2, &errOut2, config); code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut2.String())
	}
	t.Logf("status:\n%s", out2.String())
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`MeshInstance +osm +True +Succeeded +.*4 identities, .*3 proxies connected`),
		regexp.MustCompile(`MeshMember +bookstore/osm +Unknown`),
		regexp.MustCompile(`MeshVM +bookwarehouse/bookwarehouse-vm +Unknown +192\.0\.2\.20, no proxy connected`),
		regexp.MustCompile(`Egress +bookbuyer/`),
	} {
		if !want.MatchString(out2.String()) {
			t.Errorf("status prints no line matching %s:\n%s", want, out2.String())
		}
	}

	// explain: the bookbuyer may buy a book (0), the bookthief may not (3).
	explainOut := func(from string, want int, says ...string) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := runExplain([]string{"--from", from, "--to", "bookstore.bookstore:14001", "--path", "/buy-a-book/new"}, &out, &errOut, config)
		t.Logf("explain --from %s (exit %d):\n%s%s", from, code, out.String(), errOut.String())
		if code != want {
			t.Errorf("explain --from %s: exit %d, want %d", from, code, want)
		}
		for _, s := range says {
			if !strings.Contains(out.String(), s) {
				t.Errorf("explain --from %s does not say %q", from, s)
			}
		}
	}
	explainOut("bookbuyer/bookbuyer-1", 0, "ALLOWED GET /buy-a-book/new from envoy/bookbuyer/bookbuyer", "bookstore/bookbuyer-to-bookstore", "mutual TLS: required")
	explainOut("bookthief/bookthief", explainDenied, "DENIED", "no route")

	// Nothing was written.
	for _, name := range []string{"bookthief-to-bookstore", "broken"} {
		if err := k.Get(ctx, client.ObjectKey{Namespace: "bookstore", Name: name}, &accessv1alpha3.TrafficTarget{}); !apierrors.IsNotFound(err) {
			t.Errorf("TrafficTarget %s exists after plan: %v", name, err)
		}
	}
}
