package translate_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/mesh/meshtest"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// TestTLSInspectorsGiveUpAndGoOn: a listener that runs the TLS inspector
// bounds its wait for the caller's first bytes and then goes on matching
// chains without them. Envoy's defaults (15 s, then close the connection)
// would cut a caller that waits for the server to speak first, on the
// inbound listener's plaintext ports and the outbound listener's https
// egress ports alike. Every golden input is checked.
func TestTLSInspectorsGiveUpAndGoOn(t *testing.T) {
	inputs, _ := filepath.Glob("testdata/in/*.yaml")
	seen := map[string]bool{}
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
			res, err := translate.Translate(m.View(g), fakeCerts(g))
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range res.Listeners {
				for _, f := range l.GetListenerFilters() {
					if f.GetName() != "envoy.filters.listener.tls_inspector" {
						continue
					}
					seen[l.GetName()] = true
					if d := l.GetListenerFiltersTimeout().AsDuration(); d <= 0 || d > 5e9 || !l.GetContinueOnListenerFiltersTimeout() {
						t.Errorf("%s, group %s, listener %s: the TLS inspector waits %v and then continues=%v; want at most 5s, then continue",
							filepath.Base(file), g, l.GetName(), l.GetListenerFiltersTimeout().AsDuration(), l.GetContinueOnListenerFiltersTimeout())
					}
				}
			}
		}
	}
	for _, name := range []string{translate.InboundListener, translate.OutboundListener} {
		if !seen[name] {
			t.Errorf("no input runs the TLS inspector on %s", name)
		}
	}
}
