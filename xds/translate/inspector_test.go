package translate_test

import (
	"testing"

	"github.com/open-service-mesh/osm-operator/xds/mesh"
	"github.com/open-service-mesh/osm-operator/xds/translate"
)

// TestTLSInspectorsGiveUpAndGoOn: a listener that runs the TLS inspector
// bounds its wait for the caller's first bytes and then goes on matching
// chains without them. Envoy's defaults (15 s, then close the connection)
// would cut a caller that waits for the server to speak first, on the
// inbound listener's plaintext ports and the outbound listener's https
// egress ports alike. Every golden input is checked.
func TestTLSInspectorsGiveUpAndGoOn(t *testing.T) {
	seen := map[string]bool{}
	eachEnvoyConfig(t, func(file string, g mesh.Group, _ *mesh.View, res *translate.Resources) {
		for _, l := range res.Listeners {
			for _, f := range l.GetListenerFilters() {
				if f.GetName() != "envoy.filters.listener.tls_inspector" {
					continue
				}
				seen[l.GetName()] = true
				if d := l.GetListenerFiltersTimeout().AsDuration(); d <= 0 || d > 5e9 || !l.GetContinueOnListenerFiltersTimeout() {
					t.Errorf("%s, group %s, listener %s: the TLS inspector waits %v and then continues=%v; want at most 5s, then continue",
						file, g, l.GetName(), l.GetListenerFiltersTimeout().AsDuration(), l.GetContinueOnListenerFiltersTimeout())
				}
			}
		}
	})
	for _, name := range []string{translate.InboundListener, translate.OutboundListener} {
		if !seen[name] {
			t.Errorf("no input runs the TLS inspector on %s", name)
		}
	}
}
