package runner_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/open-service-mesh/osm-operator/xds/server"
	"github.com/open-service-mesh/osm-operator/xds/xdstest"
)

// TestDebugEndpointShowsAProxysConfigWithoutKeys: the debug endpoint returns
// the configuration a connected proxy receives, and never a private key.
func TestDebugEndpointShowsAProxysConfigWithoutKeys(t *testing.T) {
	forEachOrder(t, testDebugEndpointShowsAProxysConfigWithoutKeys)
}

func testDebugEndpointShowsAProxysConfigWithoutKeys(t *testing.T, o order) {
	ctx := testContext(t)
	ns, buyer, _ := shopIn(t, o)
	s, err := xdstest.OpenStream(ctx, connect(t, &buyer), nodeID(ns, "buyer-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Subscribe(resourcev3.ClusterType, nil); err != nil {
		t.Fatal(err)
	}
	awaitSotW(t, s, func(r *discoveryv3.DiscoveryResponse) bool { return len(r.GetResources()) == 3 }) // blackhole, store, admin

	d := &server.Debug{Server: xds, Cache: snapshots}
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	get := func(path string) string {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	cfg := get("/debug/xds/config?node=" + nodeID(ns, "buyer-1"))
	for _, want := range []string{`"out|` + ns + `/store|80"`, `"identity"`, `"trust-bundle"`, `"group": "envoy/` + ns + `/buyer"`} {
		if !strings.Contains(cfg, want) {
			t.Errorf("the config dump lacks %s:\n%.2000s", want, cfg)
		}
	}
	if strings.Contains(cfg, "PRIVATE KEY") || strings.Contains(cfg, strings.TrimSpace(string(buyer.KeyPEM))[40:80]) {
		t.Error("the config dump holds a private key")
	}
	if proxies := get("/debug/xds/proxies"); !strings.Contains(proxies, nodeID(ns, "buyer-1")) {
		t.Errorf("the proxy list lacks the connected proxy: %s", proxies)
	}

	// It refuses to listen anywhere but loopback.
	bad := &server.Debug{Address: "0.0.0.0:0", Server: xds, Cache: snapshots}
	if err := bad.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("a debug endpoint on 0.0.0.0 was allowed: %v", err)
	}
}
