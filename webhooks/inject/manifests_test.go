package inject

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestManifests injects a multi-document stream (testdata/manifests/in.yaml)
// and compares it with out.yaml: workloads injected, other kinds and the
// opted-out pod unchanged. `go test ./webhooks/inject -update` rewrites it.
func TestManifests(t *testing.T) {
	in, err := os.ReadFile("testdata/manifests/in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, notes, err := Manifests(in, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "Pod bookstore/debug") || !strings.Contains(notes[0], "opted out") {
		t.Errorf("notes %q, want one naming the opted-out pod", notes)
	}
	const golden = "testdata/manifests/out.yaml"
	if *update {
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, want) {
		t.Errorf("%s differs from what injection gives; run with -update and review the diff", golden)
	}
	// Injecting the output again changes nothing.
	again, _, err := Manifests(out, testConfig())
	if err != nil || !bytes.Equal(again, out) {
		t.Errorf("a second injection changed the manifests (err %v)", err)
	}
}

func TestManifestsRefuseBadInput(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"bad yaml", "kind: Pod\nmetadata: [", "document 1"},
		{"bad annotation", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {openservicemesh.io/inbound-port-exclusion-list: \"70000\"}\nspec:\n  containers: [{name: a, image: a}]\n",
			`document 1 (Pod p): annotation openservicemesh.io/inbound-port-exclusion-list: "70000" is not a port`},
		{"no template", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {}\n", "Deployment d"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := Manifests([]byte(tc.in), testConfig())
			if err == nil || !strings.Contains(err.Error(), tc.want) || out != nil {
				t.Errorf("Manifests = %q, %v; want an error containing %q and no output", out, err, tc.want)
			}
		})
	}
}
