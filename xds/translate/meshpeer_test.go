package translate_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbacnetv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// TestMeshChainsAcceptOnlyMeshIdentities: the trust bundle may be a
// corporate CA that signs far more than the mesh's workloads, and the
// mesh's own issuer signs the ingress gateway's client certificate too. A
// mesh chain (mutual TLS with a required client certificate) therefore
// also requires a SPIFFE ID of the mesh's trust domain; otherwise, where no
// RBAC filter names identities (a Permissive mesh), any certificate the CA
// ever signed would be let in as a mesh peer. Every inbound listener of
// every golden input is checked.
func TestMeshChainsAcceptOnlyMeshIdentities(t *testing.T) {
	checked := 0
	eachEnvoyConfig(t, func(file string, g mesh.Group, v *mesh.View, res *translate.Resources) {
		want := "spiffe://" + v.Mesh.TrustDomain + "/ns/"
		for _, l := range res.Listeners {
			if l.GetName() != translate.InboundListener {
				continue
			}
			for _, fc := range l.GetFilterChains() {
				if fc.GetTransportSocket() == nil {
					continue
				}
				ctx := &tlsv3.DownstreamTlsContext{}
				if err := fc.GetTransportSocket().GetTypedConfig().UnmarshalTo(ctx); err != nil {
					t.Fatal(err)
				}
				if !ctx.GetRequireClientCertificate().GetValue() || strings.HasSuffix(fc.GetName(), "|ingress-tls") {
					continue
				}
				checked++
				sans := ctx.GetCommonTlsContext().GetCombinedValidationContext().GetDefaultValidationContext().GetMatchTypedSubjectAltNames()
				if len(sans) != 1 || sans[0].GetSanType() != tlsv3.SubjectAltNameMatcher_URI || sans[0].GetMatcher().GetPrefix() != want {
					t.Errorf("%s, group %s, chain %s: client certificates must carry a URI SAN starting %q, got %v",
						file, g, fc.GetName(), want, sans)
				}
			}
		}
	})
	if checked == 0 {
		t.Fatal("no mesh chain found")
	}
}

// TestIngressTLSChainsLetInMeshPeersOnlyWithValidatedCertificates: a mesh
// peer that offers no osm-mesh ALPN (a proxyless gRPC client) lands on an
// https IngressBackend's chain. Where that chain validates client
// certificates with the mesh trust bundle, it lets in every policy of the
// port's mesh chain; where it validates none (skipClientCertValidation
// alone), it names no mesh identity at all, since any caller could present
// a certificate claiming one. Every golden input is checked.
func TestIngressTLSChainsLetInMeshPeersOnlyWithValidatedCertificates(t *testing.T) {
	validated, unvalidated := 0, 0
	eachEnvoyConfig(t, func(file string, g mesh.Group, v *mesh.View, res *translate.Resources) {
		chains := map[string]*listenerv3.FilterChain{}
		for _, l := range res.Listeners {
			if l.GetName() == translate.InboundListener {
				for _, fc := range l.GetFilterChains() {
					chains[fc.GetName()] = fc
				}
			}
		}
		for name, fc := range chains {
			meshName, ok := strings.CutSuffix(name, "|ingress-tls")
			if !ok {
				continue
			}
			ctx := &tlsv3.DownstreamTlsContext{}
			if err := fc.GetTransportSocket().GetTypedConfig().UnmarshalTo(ctx); err != nil {
				t.Fatal(err)
			}
			rules := chainRBAC(t, fc)
			where := file + ", group " + g.String() + ", chain " + name
			if ctx.GetCommonTlsContext().GetValidationContextType() == nil {
				unvalidated++
				js, _ := protojson.Marshal(rules)
				if strings.Contains(string(js), "spiffe://") || rules.GetPolicies()["mesh-peers"] != nil {
					t.Errorf("%s validates no client certificate, yet names mesh identities: %s", where, js)
				}
				continue
			}
			validated++
			peers := chainRBAC(t, chains[meshName])
			if peers == nil {
				ps := rules.GetPolicies()["mesh-peers"].GetPrincipals()
				if len(ps) != 1 || ps[0].GetAuthenticated().GetPrincipalName().GetPrefix() != "spiffe://"+v.Mesh.TrustDomain+"/ns/" {
					t.Errorf("%s: the mesh chain lets every mesh peer in, this chain does not: %v", where, rules)
				}
				continue
			}
			for k, p := range peers.GetPolicies() {
				if !proto.Equal(p, rules.GetPolicies()[k]) {
					t.Errorf("%s lacks the mesh chain's policy %s", where, k)
				}
			}
		}
	})
	if validated == 0 || unvalidated == 0 {
		t.Fatalf("checked %d validating and %d non-validating ingress-tls chains; the inputs should hold both", validated, unvalidated)
	}
}

// chainRBAC is the RBAC rules of a chain's HTTP or network RBAC filter, or
// nil when it has none.
func chainRBAC(t *testing.T, fc *listenerv3.FilterChain) *rbacv3.RBAC {
	t.Helper()
	for _, f := range fc.GetFilters() {
		switch f.GetName() {
		case "envoy.filters.network.rbac":
			r := &rbacnetv3.RBAC{}
			if err := f.GetTypedConfig().UnmarshalTo(r); err != nil {
				t.Fatal(err)
			}
			return r.GetRules()
		case "envoy.filters.network.http_connection_manager":
			hcm := &hcmv3.HttpConnectionManager{}
			if err := f.GetTypedConfig().UnmarshalTo(hcm); err != nil {
				t.Fatal(err)
			}
			for _, hf := range hcm.GetHttpFilters() {
				if hf.GetName() == "envoy.filters.http.rbac" {
					r := &rbachttpv3.RBAC{}
					if err := hf.GetTypedConfig().UnmarshalTo(r); err != nil {
						t.Fatal(err)
					}
					return r.GetRules()
				}
			}
		}
	}
	return nil
}

// eachEnvoyConfig translates every Envoy group of every golden input and
// calls check with each result.
func eachEnvoyConfig(t *testing.T, check func(file string, g mesh.Group, v *mesh.View, res *translate.Resources)) {
	t.Helper()
	inputs, err := filepath.Glob("testdata/in/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, file := range inputs {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		in, err := meshtest.Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := mesh.Build(in)
		for _, g := range m.Groups {
			if g.Kind != mesh.ProxyEnvoy {
				continue
			}
			v := m.View(g)
			res, err := translate.Translate(v, fakeCerts(g))
			if err != nil {
				t.Fatal(err)
			}
			check(filepath.Base(file), g, v, res)
		}
	}
}
