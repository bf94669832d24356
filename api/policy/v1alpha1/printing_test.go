package v1alpha1_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	policyv1alpha1 "github.com/open-service-mesh/osm-operator/api/policy/v1alpha1"
)

// TestKubectlNames checks the names kubectl resolves: the plural and
// singular OSM users type, the short name and the categories
// (`kubectl get osm` lists the policies with the meshes).
func TestKubectlNames(t *testing.T) {
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	list, err := dc.ServerResourcesForGroupVersion(policyv1alpha1.GroupVersion.String())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]metav1.APIResource{
		"ingressbackends":         {Kind: "IngressBackend", SingularName: "ingressbackend", Namespaced: true, ShortNames: []string{"ib"}, Categories: []string{"osm", "osm-policy"}},
		"egresses":                {Kind: "Egress", SingularName: "egress", Namespaced: true, Categories: []string{"osm", "osm-policy"}},
		"upstreamtrafficsettings": {Kind: "UpstreamTrafficSetting", SingularName: "upstreamtrafficsetting", Namespaced: true, Categories: []string{"osm", "osm-policy"}},
		"retries":                 {Kind: "Retry", SingularName: "retry", Namespaced: true, Categories: []string{"osm", "osm-policy"}},
	}
	for _, r := range list.APIResources {
		w, ok := want[r.Name]
		if !ok {
			continue
		}
		delete(want, r.Name)
		if r.Kind != w.Kind || r.SingularName != w.SingularName || r.Namespaced != w.Namespaced ||
			!slices.Equal(r.ShortNames, w.ShortNames) || !slices.Equal(r.Categories, w.Categories) {
			t.Errorf("%s: kind %s, singular %s, namespaced %v, short names %v, categories %v; want %+v",
				r.Name, r.Kind, r.SingularName, r.Namespaced, r.ShortNames, r.Categories, w)
		}
	}
	for name := range want {
		t.Errorf("the API server serves no %s", name)
	}
}

// TestKubectlGetColumns asks the API server for the table `kubectl get`
// prints and checks its columns and cells.
func TestKubectlGetColumns(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	b := ingressBackend(ns)
	create(t, b)
	b.Status = policyv1alpha1.IngressBackendStatus{CurrentStatus: policyv1alpha1.IngressBackendCommitted, ObservedGeneration: b.Generation,
		Conditions: []metav1.Condition{ready(b.Generation)}}
	if err := c.Status().Update(ctx, b); err != nil {
		t.Fatal(err)
	}
	e := egress(ns, func(e *eg) { e.Spec.Hosts = []string{"httpbin.org", "*.example.com"} })
	create(t, e)
	u := upstreamTrafficSetting(ns)
	create(t, u)
	u.Status = policyv1alpha1.UpstreamTrafficSettingStatus{CurrentStatus: "committed", ObservedGeneration: u.Generation,
		Conditions: []metav1.Condition{ready(u.Generation)}}
	if err := c.Status().Update(ctx, u); err != nil {
		t.Fatal(err)
	}
	r := retry(ns, func(r *policyv1alpha1.Retry) { r.Spec.RetryPolicy.RetryOn = "5xx,reset" })
	create(t, r)

	for _, tc := range []struct {
		resource string
		want     map[string]any // column name: cell of the first row
	}{
		{"ingressbackends", map[string]any{"Name": "bookstore", "Status": "committed", "Ready": "True"}},
		{"egresses", map[string]any{"Name": "httpbin", "Hosts": `["httpbin.org","*.example.com"]`, "IP Ranges": `["203.0.113.0/24"]`, "Ready": nil}},
		{"upstreamtrafficsettings", map[string]any{"Name": "httpbin", "Host": "httpbin.httpbin.svc.cluster.local", "Status": "committed", "Ready": "True"}},
		{"retries", map[string]any{"Name": "retry", "Source": "bookbuyer", "Retry On": "5xx,reset", "Retries": float64(3), "Ready": nil}},
	} {
		t.Run(tc.resource, func(t *testing.T) {
			table := getTable(t, fmt.Sprintf("/apis/%s/namespaces/%s/%s", policyv1alpha1.GroupVersion, ns, tc.resource))
			if len(table.Rows) != 1 {
				t.Fatalf("%d rows, want 1", len(table.Rows))
			}
			got := map[string]any{}
			for i, col := range table.ColumnDefinitions {
				got[col.Name] = table.Rows[0].Cells[i]
			}
			for col, want := range tc.want {
				if cell, ok := got[col]; !ok {
					t.Errorf("no column %q (columns %v)", col, got)
				} else if cell != want {
					t.Errorf("column %q = %v, want %v", col, cell, want)
				}
			}
			if _, ok := got["Age"]; !ok {
				t.Errorf("no column Age (columns %v)", got)
			}
		})
	}
}

func getTable(t *testing.T, path string) *metav1.Table {
	t.Helper()
	hc, err := rest.HTTPClientFor(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodGet, strings.TrimSuffix(env.Config.Host, "/")+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", path, resp.Status, raw)
	}
	table := &metav1.Table{}
	if err := json.Unmarshal(raw, table); err != nil {
		t.Fatal(err)
	}
	return table
}
