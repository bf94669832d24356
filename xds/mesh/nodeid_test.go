package mesh

import "testing"

// The node IDs the injector and the VM bootstrap write are the ones the xDS
// server reads back, and nothing else parses.
func TestNodeIDs(t *testing.T) {
	for _, c := range []struct{ id, kind, ns, name string }{
		{PodNodeID("shop", "web-1"), NodeKindSidecar, "shop", "web-1"},
		{VMNodeID("shop", "ledger"), NodeKindVM, "shop", "ledger"},
	} {
		kind, ns, name, err := ParseNodeID(c.id)
		if err != nil || kind != c.kind || ns != c.ns || name != c.name {
			t.Errorf("ParseNodeID(%q) = %q, %q, %q, %v", c.id, kind, ns, name, err)
		}
	}
	for _, bad := range []string{"", "sidecar~shop", "pod~shop~web-1", "sidecar~~web-1", "sidecar~shop~", "sidecar~shop~web~1"} {
		if _, _, _, err := ParseNodeID(bad); err == nil {
			t.Errorf("ParseNodeID(%q) accepted", bad)
		}
	}
	if ServiceAccountOf("") != DefaultServiceAccount || ServiceAccountOf("web") != "web" {
		t.Error("ServiceAccountOf")
	}
}
