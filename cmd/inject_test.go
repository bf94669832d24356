package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInjectCommand runs `osm-operator inject` on a file and on standard
// input, with a MeshInstance manifest for the sidecar's settings.
func TestInjectCommand(t *testing.T) {
	dir := t.TempDir()
	mesh := filepath.Join(dir, "mesh.yaml")
	if err := os.WriteFile(mesh, []byte("apiVersion: mesh.openservicemesh.io/v1alpha1\nkind: MeshInstance\nmetadata: {name: books}\nspec:\n  sidecar: {image: envoy:test, logLevel: debug}\n  xds: {address: xds.example.internal, port: 443}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	in := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: web:v1}]\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n"
	var out, errOut bytes.Buffer
	if code := runInject([]string{"-f", "-", "--mesh-file", mesh}, strings.NewReader(in), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"image: envoy:test", "--log-level\n        - debug", `"address":"xds.example.internal","portValue":443`, "osm-xds-books.osm-system.svc", "kind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}

	out.Reset()
	errOut.Reset()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(in+"---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {openservicemesh.io/sidecar-injection: maybe}\nspec: {containers: [{name: a, image: a}]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := runInject([]string{"-f", bad}, nil, &out, &errOut); code != 1 || out.Len() != 0 || !strings.Contains(errOut.String(), "document 3 (Pod p): annotation openservicemesh.io/sidecar-injection") {
		t.Errorf("bad input: exit %d, output %d bytes, stderr %q", code, out.Len(), errOut.String())
	}

	// A mesh that names no image gets the operator's, as the webhook gives it.
	out.Reset()
	errOut.Reset()
	if code := runInject([]string{"-f", "-", "--sidecar-image", "envoy:operators"}, strings.NewReader(in), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "image: envoy:operators") {
		t.Errorf("the sidecar is not of --sidecar-image:\n%s", out.String())
	}
}
