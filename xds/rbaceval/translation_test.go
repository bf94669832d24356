package rbaceval_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/rbaceval"
	"github.com/open-service-mesh/osm-operator/xds/routesim"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// translations caches the listeners of each translated input, by group.
var translations sync.Map // input name -> map[group]map[listener name]*listenerv3.Listener

// listeners translates testdata/in/<input>.yaml of the translator's goldens
// as TestGolden does, and gives the listeners of group.
func listeners(t *testing.T, input, group string) map[string]*listenerv3.Listener {
	t.Helper()
	if v, ok := translations.Load(input); ok {
		return v.(map[string]map[string]*listenerv3.Listener)[group]
	}
	data, err := os.ReadFile(filepath.Join("..", "translate", "testdata", "in", input+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := meshtest.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := mesh.Build(in)
	out := map[string]map[string]*listenerv3.Listener{}
	for _, g := range m.Groups {
		res, err := translate.Translate(m.View(g), &translate.Certificates{
			CertChain: []byte("cert"), PrivateKey: []byte("key"), TrustBundle: []byte("bundle"),
		})
		if err != nil {
			t.Fatalf("%s: group %s: %v", input, g, err)
		}
		ls := map[string]*listenerv3.Listener{}
		for _, l := range res.Listeners {
			ls[l.GetName()] = l
		}
		out[g.String()] = ls
	}
	translations.Store(input, out)
	if out[group] == nil {
		t.Fatalf("%s has no group %s", input, group)
	}
	return out[group]
}

// spiffe is the SPIFFE ID of a workload of the inputs' trust domain.
func spiffe(ns, sa string) string { return "spiffe://cluster.local/ns/" + ns + "/sa/" + sa }

// verdict is a connection (or request) to a translated group's listener.
type verdict struct {
	name            string
	input, group    string
	listener        string
	conn            routesim.Conn
	req             rbaceval.Request
	allow           bool
	policy, filter  string
	chain           string // the filter chain routesim.Chain picks
	reasonSubstring string
}

// meshCall is a mesh peer's mutual TLS connection from src, with the
// SPIFFE ID id, to dst, and an HTTP request on it when there are headers.
func meshCall(src, dst, id string, nameValues ...string) (routesim.Conn, rbaceval.Request) {
	c := routesim.Conn{Dst: netip.MustParseAddrPort(dst), Src: netip.MustParseAddrPort(src)}
	r := rbaceval.Request{
		TLS: true, PeerURISANs: []string{id},
		DirectRemoteIP: c.Src.Addr(), DestinationIP: c.Dst.Addr(), DestinationPort: uint32(c.Dst.Port()),
		HTTP: len(nameValues) > 0, Headers: routesim.H(nameValues...),
	}
	return c, r
}

// TestTranslations checks verdicts on the RBAC rules the translator really
// emits for its golden inputs.
func TestTranslations(t *testing.T) {
	const (
		bookstore = "10.244.1.1:14001"
		warehouse = "10.244.2.1:14001"
		mysql     = "10.244.2.2:3306"
		buyerSrc  = "10.244.0.1:40000"
		thiefSrc  = "10.244.0.3:40000"
		storeSrc  = "10.244.1.1:40000"
		whSrc     = "10.244.2.1:40000"
		ua        = "Go-http-client/1.1"
	)
	buyer, thief := spiffe("bookbuyer", "bookbuyer"), spiffe("bookthief", "bookthief")
	var cases []verdict
	add := func(v verdict, c routesim.Conn, r rbaceval.Request) {
		v.conn, v.req = c, r
		cases = append(cases, v)
	}
	bs := verdict{input: "bookstore", group: "envoy/bookstore/bookstore", listener: translate.InboundListener, chain: "in|14001"}
	allowedBS := func(name string) verdict {
		v := bs
		v.name, v.allow, v.policy, v.filter = name, true, "bookstore/bookbuyer-to-bookstore", "envoy.filters.http.rbac"
		return v
	}
	deniedBS := func(name string) verdict {
		v := bs
		v.name, v.filter = name, "envoy.filters.http.rbac"
		return v
	}
	// HTTPRouteGroup bookstore-service-routes: books-bought (GET
	// /books-bought with a user-agent of .*-http-client/.*) and buy-a-book
	// (GET .*a-book.*new), for bookbuyer only.
	c, r := meshCall(buyerSrc, bookstore, buyer, ":method", "GET", ":path", "/books-bought", ":authority", "bookstore.bookstore:14001", "user-agent", ua)
	add(allowedBS("bookbuyer GET /books-bought"), c, r)
	c, r = meshCall(buyerSrc, bookstore, buyer, ":method", "GET", ":path", "/books-bought?page=2", "user-agent", ua)
	add(allowedBS("query is not the path"), c, r)
	c, r = meshCall(buyerSrc, bookstore, buyer, ":method", "GET", ":path", "/books-bought")
	add(deniedBS("books-bought needs its user-agent"), c, r)
	c, r = meshCall(buyerSrc, bookstore, buyer, ":method", "GET", ":path", "/books-bought/1", "user-agent", ua)
	add(deniedBS("path regex is a full match"), c, r)
	c, r = meshCall(buyerSrc, bookstore, buyer, ":method", "GET", ":path", "/Books-Bought", "user-agent", ua)
	add(deniedBS("path is case-sensitive"), c, r)
	c, r = meshCall(buyerSrc, bookstore, buyer, ":method", "GET", ":path", "/buy-a-book/new")
	add(allowedBS("bookbuyer GET /buy-a-book/new"), c, r)
	c, r = meshCall(buyerSrc, bookstore, buyer, ":method", "POST", ":path", "/buy-a-book/new")
	add(deniedBS("bookbuyer POST is not a GET"), c, r)
	c, r = meshCall(thiefSrc, bookstore, thief, ":method", "GET", ":path", "/buy-a-book/new", "user-agent", ua)
	v := deniedBS("bookthief is no source")
	v.reasonSubstring = "a permission matches, no principal does"
	add(v, c, r)

	// bookwarehouse: restock-books (POST /restock-books) for bookstore.
	wh := verdict{input: "bookstore", group: "envoy/bookwarehouse/bookwarehouse", listener: translate.InboundListener, chain: "in|14001", filter: "envoy.filters.http.rbac"}
	v = wh
	v.name, v.allow, v.policy = "bookstore POST /restock-books", true, "bookwarehouse/bookstore-to-bookwarehouse"
	c, r = meshCall(storeSrc, warehouse, spiffe("bookstore", "bookstore"), ":method", "POST", ":path", "/restock-books")
	add(v, c, r)
	v = wh
	v.name = "bookbuyer POST /restock-books"
	c, r = meshCall(buyerSrc, warehouse, buyer, ":method", "POST", ":path", "/restock-books")
	add(v, c, r)

	// mysql: a TCPRoute for bookwarehouse, enforced by the network filter.
	my := verdict{input: "bookstore", group: "envoy/bookwarehouse/mysql", listener: translate.InboundListener, chain: "in|3306", filter: "envoy.filters.network.rbac"}
	v = my
	v.name, v.allow, v.policy = "bookwarehouse to mysql", true, "bookwarehouse/bookwarehouse-to-mysql"
	c, r = meshCall(whSrc, mysql, spiffe("bookwarehouse", "bookwarehouse"))
	add(v, c, r)
	v = my
	v.name = "bookbuyer to mysql"
	c, r = meshCall(buyerSrc, mysql, buyer)
	add(v, c, r)

	// smi-deny: directory lets portal make employee-lookup requests
	// (/api/v1/employees/[0-9]+(/photo)?, GET or HEAD, x-tenant-id
	// ^acme-[a-z0-9-]+$); nothing may call payroll.
	portal := spiffe("intranet", "portal")
	dir := verdict{input: "smi-deny", group: "envoy/people/directory", listener: translate.InboundListener, chain: "in|8080", filter: "envoy.filters.http.rbac"}
	v = dir
	v.name, v.allow, v.policy = "portal GET an employee", true, "people/portal-to-directory"
	c, r = meshCall("10.244.60.20:40000", "10.244.60.11:8080", portal, ":method", "GET", ":path", "/api/v1/employees/42", "X-Tenant-ID", "acme-east")
	add(v, c, r)
	v.name = "portal HEAD a photo"
	c, r = meshCall("10.244.60.20:40000", "10.244.60.11:8080", portal, ":method", "HEAD", ":path", "/api/v1/employees/42/photo", "x-tenant-id", "acme-east")
	add(v, c, r)
	v = dir
	v.name = "two tenant headers are joined with a comma"
	c, r = meshCall("10.244.60.20:40000", "10.244.60.11:8080", portal, ":method", "GET", ":path", "/api/v1/employees/42", "x-tenant-id", "acme-east", "x-tenant-id", "acme-west")
	add(v, c, r)
	v.name = "no tenant header"
	c, r = meshCall("10.244.60.20:40000", "10.244.60.11:8080", portal, ":method", "GET", ":path", "/api/v1/employees/42")
	add(v, c, r)
	v.name = "reports is no source"
	c, r = meshCall("10.244.60.21:40000", "10.244.60.11:8080", spiffe("intranet", "reports"), ":method", "GET", ":path", "/api/v1/employees/42", "x-tenant-id", "acme-east")
	add(v, c, r)
	v = verdict{name: "nothing may call payroll", input: "smi-deny", group: "envoy/people/payroll", listener: translate.InboundListener, chain: "in|8080",
		filter: "envoy.filters.http.rbac", reasonSubstring: "there is no policy"}
	c, r = meshCall("10.244.60.20:40000", "10.244.60.10:8080", portal, ":method", "GET", ":path", "/")
	add(v, c, r)

	// ingressbackend: web's plaintext chain lets in the ingress
	// controller's pods and 192.168.0.0/16 for GET /public/.*.
	plain := func(src string, nameValues ...string) (routesim.Conn, rbaceval.Request) {
		c := routesim.Conn{Dst: netip.MustParseAddrPort("10.244.3.1:8080"), Src: netip.MustParseAddrPort(src), TransportProtocol: "raw_buffer"}
		return c, rbaceval.Request{DirectRemoteIP: c.Src.Addr(), DestinationIP: c.Dst.Addr(), DestinationPort: uint32(c.Dst.Port()), HTTP: true, Headers: routesim.H(nameValues...)}
	}
	web := verdict{input: "ingressbackend", group: "envoy/shop/web", listener: translate.InboundListener, chain: "in|8080|plaintext", filter: "envoy.filters.http.rbac"}
	v = web
	v.name, v.allow, v.policy = "ingress controller GET /public/", true, "shop/web-from-nginx|web"
	c, r = plain("10.244.9.2:50000", ":method", "GET", ":path", "/public/index.html")
	add(v, c, r)
	v.name = "an IPRange address"
	c, r = plain("192.168.7.7:50000", ":method", "GET", ":path", "/public/a")
	add(v, c, r)
	v = web
	v.name = "another pod"
	c, r = plain("10.244.9.3:50000", ":method", "GET", ":path", "/public/index.html")
	add(v, c, r)
	v.name = "POST from the controller"
	c, r = plain("10.244.9.1:50000", ":method", "POST", ":path", "/public/index.html")
	add(v, c, r)
	v.name = "x-forwarded-for does not make the peer"
	c, r = plain("10.244.9.3:50000", ":method", "GET", ":path", "/public/index.html", "x-forwarded-for", "10.244.9.1")
	add(v, c, r)

	// api's ingress-tls chain: a certificate naming
	// ingress-nginx.ingress-nginx.cluster.local, server name
	// api.example.com or *.api.example.com.
	tlsCall := func(dst, sniName string, alpn []string, uris, dns []string, nameValues ...string) (routesim.Conn, rbaceval.Request) {
		c := routesim.Conn{Dst: netip.MustParseAddrPort(dst), Src: netip.MustParseAddrPort("10.244.9.1:50000"), TransportProtocol: "tls", ServerName: sniName, ALPN: alpn}
		return c, rbaceval.Request{
			TLS: true, PeerURISANs: uris, PeerDNSSANs: dns, PeerSubject: "CN=ingress-nginx",
			DirectRemoteIP: c.Src.Addr(), DestinationIP: c.Dst.Addr(), DestinationPort: uint32(c.Dst.Port()), ServerName: sniName,
			HTTP: len(nameValues) > 0, Headers: routesim.H(nameValues...),
		}
	}
	nginx := []string{"ingress-nginx.ingress-nginx.cluster.local"}
	api := verdict{input: "ingressbackend", group: "envoy/shop/api", listener: translate.InboundListener, chain: "in|8443|ingress-tls", filter: "envoy.filters.http.rbac"}
	v = api
	v.name, v.allow, v.policy = "nginx to api.example.com", true, "shop/api-mtls|api"
	c, r = tlsCall("10.244.3.2:8443", "api.example.com", []string{"h2"}, nil, nginx, ":method", "GET", ":path", "/")
	add(v, c, r)
	v.name = "nginx to a wildcard name, in upper case"
	c, r = tlsCall("10.244.3.2:8443", "V2.API.example.com", []string{"h2"}, nil, nginx, ":method", "GET", ":path", "/")
	add(v, c, r)
	v.name = "DNS SAN after a URI SAN that does not match"
	c, r = tlsCall("10.244.3.2:8443", "api.example.com", []string{"h2"}, []string{spiffe("ingress-nginx", "ingress-nginx")}, nginx, ":method", "GET", ":path", "/")
	add(v, c, r)
	v = api
	v.name = "another server name"
	c, r = tlsCall("10.244.3.2:8443", "shop.example.com", []string{"h2"}, nil, nginx, ":method", "GET", ":path", "/")
	add(v, c, r)
	v.name = "the name only in the subject's CN"
	c, r = tlsCall("10.244.3.2:8443", "api.example.com", []string{"h2"}, nil, nil, ":method", "GET", ":path", "/")
	r.PeerSubject = "CN=ingress-nginx.ingress-nginx.cluster.local"
	add(v, c, r)
	// A mesh peer offering osm-mesh lands on the mesh chain, whose rules
	// (no TrafficTarget names api) have no policy.
	v = verdict{name: "mesh peer on api's mesh chain", input: "ingressbackend", group: "envoy/shop/api", listener: translate.InboundListener,
		chain: "in|8443", filter: "envoy.filters.http.rbac", reasonSubstring: "there is no policy"}
	c, r = tlsCall("10.244.3.2:8443", "", []string{"osm-mesh"}, []string{spiffe("shop", "web")}, nil, ":method", "GET", ":path", "/")
	add(v, c, r)

	// store's ingress-tls chain: TCP, a network filter checking 10.0.0.0/8.
	store := verdict{input: "ingressbackend", group: "envoy/shop/store", listener: translate.InboundListener, chain: "in|9443|ingress-tls", filter: "envoy.filters.network.rbac"}
	v = store
	v.name, v.allow, v.policy = "store from 10/8 without a certificate", true, "shop/store-skip|store"
	c = routesim.Conn{Dst: netip.MustParseAddrPort("10.244.3.3:9443"), Src: netip.MustParseAddrPort("10.9.9.9:50000"), TransportProtocol: "tls"}
	add(v, c, rbaceval.Request{TLS: true, DirectRemoteIP: c.Src.Addr(), DestinationIP: c.Dst.Addr(), DestinationPort: uint32(c.Dst.Port())})
	v = store
	v.name = "store from elsewhere"
	c = routesim.Conn{Dst: netip.MustParseAddrPort("10.244.3.3:9443"), Src: netip.MustParseAddrPort("172.16.0.9:50000"), TransportProtocol: "tls"}
	add(v, c, rbaceval.Request{TLS: true, DirectRemoteIP: c.Src.Addr(), DestinationIP: c.Dst.Addr(), DestinationPort: uint32(c.Dst.Port())})

	// ingress-tls-mesh-peers: a proxyless client (ALPN h2) lands on the
	// ingress-tls chain, which holds its SMI policy and partner's.
	reconciler := spiffe("checkout", "reconciler")
	ledger := verdict{input: "ingress-tls-mesh-peers", group: "envoy/payments/ledger", listener: translate.InboundListener, chain: "in|50051|ingress-tls", filter: "envoy.filters.http.rbac"}
	v = ledger
	v.name, v.allow, v.policy = "proxyless reconciler Get on the ingress-tls chain", true, "payments/reconciler-to-ledger"
	c, r = tlsCall("10.244.90.10:50051", "", []string{"h2"}, []string{reconciler}, nil, ":method", "POST", ":path", "/ledger.v1.Ledger/Get", "content-type", "application/grpc")
	add(v, c, r)
	v.name, v.policy = "partner to ledger.example.com", "payments/partner|ledger"
	c, r = tlsCall("10.244.90.10:50051", "ledger.example.com", []string{"h2"}, nil, []string{"partner.example.com"}, ":method", "POST", ":path", "/ledger.v1.Ledger/Post")
	add(v, c, r)
	v = ledger
	v.name = "reconciler Post"
	c, r = tlsCall("10.244.90.10:50051", "", []string{"h2"}, []string{reconciler}, nil, ":method", "POST", ":path", "/ledger.v1.Ledger/Post")
	add(v, c, r)
	v.name = "partner without its server name"
	c, r = tlsCall("10.244.90.10:50051", "other.example.com", []string{"h2"}, nil, []string{"partner.example.com"}, ":method", "POST", ":path", "/ledger.v1.Ledger/Post")
	add(v, c, r)
	v = verdict{name: "sidecar reconciler on the mesh chain", input: "ingress-tls-mesh-peers", group: "envoy/payments/ledger", listener: translate.InboundListener,
		chain: "in|50051", filter: "envoy.filters.http.rbac", allow: true, policy: "payments/reconciler-to-ledger"}
	c, r = tlsCall("10.244.90.10:50051", "", []string{"osm-mesh", "h2"}, []string{reconciler}, nil, ":method", "POST", ":path", "/ledger.v1.Ledger/List")
	add(v, c, r)

	// grpc-proxyless-server: the server's listener holds both targets.
	grpcListener := translate.GRPCServerListenerName("0.0.0.0", 50051)
	gs := verdict{input: "grpc-proxyless-server", group: "grpc/payments/ledger", listener: grpcListener, chain: grpcListener, filter: "envoy.filters.http.rbac"}
	call := func(id, method string) (routesim.Conn, rbaceval.Request) {
		return meshCall("10.244.90.20:40000", "10.244.90.10:50051", id, ":method", "POST", ":path", method, "content-type", "application/grpc")
	}
	v = gs
	v.name, v.allow, v.policy = "checkout Post", true, "payments/checkout-to-ledger"
	c, r = call(spiffe("checkout", "checkout"), "/ledger.v1.Ledger/Post")
	add(v, c, r)
	v.name, v.policy = "reconciler List", "payments/reconciler-to-ledger"
	c, r = call(reconciler, "/ledger.v1.Ledger/List")
	add(v, c, r)
	// Both targets allow the health check, each to its own caller: the
	// policy reported is the caller's.
	v.name, v.policy = "reconciler health check", "payments/reconciler-to-ledger"
	c, r = call(reconciler, "/grpc.health.v1.Health/Check")
	add(v, c, r)
	v.name, v.policy = "checkout health check", "payments/checkout-to-ledger"
	c, r = call(spiffe("checkout", "checkout"), "/grpc.health.v1.Health/Check")
	add(v, c, r)
	v = gs
	v.name = "reconciler Post"
	c, r = call(reconciler, "/ledger.v1.Ledger/Post")
	add(v, c, r)
	v.name = "checkout List"
	c, r = call(spiffe("checkout", "checkout"), "/ledger.v1.Ledger/List")
	add(v, c, r)

	for _, c := range cases {
		t.Run(c.input+"/"+c.name, func(t *testing.T) {
			l := listeners(t, c.input, c.group)[c.listener]
			if l == nil {
				t.Fatalf("group %s has no listener %s", c.group, c.listener)
			}
			fc := routesim.Chain(l, c.conn)
			if fc == nil || fc.GetName() != c.chain {
				t.Fatalf("connection %+v reaches chain %q, want %q", c.conn, fc.GetName(), c.chain)
			}
			d, err := rbaceval.EvaluateChain(fc, c.req)
			if err != nil {
				t.Fatal(err)
			}
			t.Log(d.Reason)
			if d.Allowed != c.allow || d.Policy != c.policy || d.Filter != c.filter {
				t.Errorf("got allowed=%v policy=%q filter=%q (%s), want allowed=%v policy=%q filter=%q",
					d.Allowed, d.Policy, d.Filter, d.Reason, c.allow, c.policy, c.filter)
			}
			if !strings.Contains(d.Reason, c.reasonSubstring) {
				t.Errorf("reason %q does not say %q", d.Reason, c.reasonSubstring)
			}
		})
	}
}
