package translate_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

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
	inputs, err := filepath.Glob("testdata/in/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	checked := 0
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
							filepath.Base(file), g, fc.GetName(), want, sans)
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no mesh chain found")
	}
}
