package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
)

// However verbose the flags, the operator's logger never enables the
// levels at which client-go logs request and response bodies (Secrets
// with their keys among them), through names and values too.
func TestTheLoggerNeverLogsBodies(t *testing.T) {
	var out bytes.Buffer
	l := withoutBodies(funcr.New(func(prefix, args string) { out.WriteString(args + "\n") }, funcr.Options{Verbosity: 10}))
	l = l.WithName("client").WithValues("k", "v")
	l.V(7).Info("kept")
	l.V(8).Info("request body", "body", "-----BEGIN EC PRIVATE KEY-----")
	if got := out.String(); !strings.Contains(got, "kept") || strings.Contains(got, "PRIVATE KEY") {
		t.Errorf("logged:\n%s", got)
	}
	if l.V(8).Enabled() {
		t.Error("level 8 is enabled")
	}
}
