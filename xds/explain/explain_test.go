package explain_test

import (
	"strings"
	"testing"

	"github.com/open-service-mesh/osm-operator/xds/explain"
	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/routesim"
)

func bookstore(t *testing.T) *mesh.Mesh {
	t.Helper()
	in, err := meshtest.ReadFile("../translate/testdata/in/bookstore.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := mesh.Build(in)
	return m
}

func group(kind mesh.ProxyKind, ns, sa string) mesh.Group {
	return mesh.Group{Kind: kind, Identity: mesh.Identity{Namespace: ns, ServiceAccount: sa}}
}

// TestExplainBookstore: the bookstore golden's mesh, request by request:
// the verdict, and what it rests on.
func TestExplainBookstore(t *testing.T) {
	m := bookstore(t)
	ua := routesim.Headers{{Name: "user-agent", Value: "bookbuyer-http-client/1.0"}}
	for _, c := range []struct {
		name    string
		q       explain.Query
		allowed bool
		says    []string
	}{
		{"the bookbuyer lists books bought", explain.Query{From: group(mesh.ProxyEnvoy, "bookbuyer", "bookbuyer"), To: mesh.ServiceKey{Namespace: "bookstore", Name: "bookstore"}, Port: 14001, Path: "/books-bought", Headers: ua},
			true, []string{"by policy bookstore/bookbuyer-to-bookstore", "mutual TLS: required"}},
		{"without the user agent the route matches and the policy does not", explain.Query{From: group(mesh.ProxyEnvoy, "bookbuyer", "bookbuyer"), To: mesh.ServiceKey{Namespace: "bookstore", Name: "bookstore"}, Port: 14001, Path: "/books-bought"},
			false, []string{"no policy matches", "(forward)"}},
		{"a POST is not a route of the policy", explain.Query{From: group(mesh.ProxyEnvoy, "bookbuyer", "bookbuyer"), To: mesh.ServiceKey{Namespace: "bookstore", Name: "bookstore"}, Port: 14001, Method: "POST", Path: "/buy-a-book/new"},
			false, []string{"deny it"}},
		{"the bookthief has no route", explain.Query{From: group(mesh.ProxyEnvoy, "bookthief", "bookthief"), To: mesh.ServiceKey{Namespace: "bookstore", Name: "bookstore"}, Port: 14001, Path: "/buy-a-book/new"},
			false, []string{"no route", "would deny it"}},
		{"the bookwarehouse reaches mysql over TCP", explain.Query{From: group(mesh.ProxyEnvoy, "bookwarehouse", "bookwarehouse"), To: mesh.ServiceKey{Namespace: "bookwarehouse", Name: "mysql"}, Port: 3306},
			true, []string{"network filter", "allow it"}},
		{"the bookbuyer may not reach mysql", explain.Query{From: group(mesh.ProxyEnvoy, "bookbuyer", "bookbuyer"), To: mesh.ServiceKey{Namespace: "bookwarehouse", Name: "mysql"}, Port: 3306},
			false, nil},
		{"the proxyless bookbuyer buys a book", explain.Query{From: group(mesh.ProxyGRPC, "bookbuyer", "bookbuyer"), To: mesh.ServiceKey{Namespace: "bookstore", Name: "bookstore"}, Port: 14001, Path: "/buy-a-book/new"},
			true, []string{"ALLOWED"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := explain.Explain(m, c.q)
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			if err := a.Write(&out); err != nil {
				t.Fatal(err)
			}
			if a.Allowed != c.allowed {
				t.Errorf("allowed %v, want %v:\n%s", a.Allowed, c.allowed, out.String())
			}
			for _, s := range c.says {
				if !strings.Contains(out.String(), s) {
					t.Errorf("the answer does not say %q:\n%s", s, out.String())
				}
			}
		})
	}
}
