package progress

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLine(t *testing.T) {
	for _, c := range []struct {
		elapsed time.Duration
		want    string
	}{
		{0, "[  0:00] building"},
		{3*time.Second + 999*time.Millisecond, "[  0:03] building"},
		{6*time.Minute + 12*time.Second, "[  6:12] building"},
		{59*time.Minute + 59*time.Second, "[ 59:59] building"},
		{125 * time.Minute, "[125:00] building"},
		// A clock that went backwards (the start came from another process) is not shown as negative.
		{-2 * time.Second, "[  0:00] building"},
	} {
		if got := Line(c.elapsed, "building"); got != c.want {
			t.Errorf("Line(%v) = %q, want %q", c.elapsed, got, c.want)
		}
	}
}

// A message cannot start a second line: what a step names (a path, an
// error) comes from outside, and the terminal shows one line per step.
func TestLineIsOneLine(t *testing.T) {
	got := Line(time.Second, "compiling\n[  9:99] forged step\r")
	if strings.ContainsAny(got, "\n\r") {
		t.Errorf("Line = %q, want one line", got)
	}
}

func TestPrinterStep(t *testing.T) {
	var out bytes.Buffer
	start := time.Now().Add(-(6*time.Minute + 40*time.Second))
	New(&out, start).Step("control plane up on %s", "127.0.0.1:1234")
	if got, want := out.String(), "[  6:40] control plane up on 127.0.0.1:1234\n"; got != want {
		t.Errorf("Step printed %q, want %q", got, want)
	}
}

// The script's progress lines become steps on the demo's clock; what else
// it prints (the tail of its log when it fails) passes through as it is.
func TestRelay(t *testing.T) {
	script := "[build-envtest 0:00] building etcd v3.6.6 — log: /tmp/a b/build.log\n" +
		"[build-envtest 12:07] compiling kube-apiserver (the long part)\n" +
		"    go: module lookup disabled\n" +
		"[build-envtest] not a progress line\n"
	var out bytes.Buffer
	p := New(&out, time.Now().Add(-90*time.Second))
	if err := p.Relay(strings.NewReader(script), "[build-envtest "); err != nil {
		t.Fatal(err)
	}
	want := "[  1:30] building etcd v3.6.6 — log: /tmp/a b/build.log\n" +
		"[  1:30] compiling kube-apiserver (the long part)\n" +
		"    go: module lookup disabled\n" +
		"[build-envtest] not a progress line\n"
	if out.String() != want {
		t.Errorf("Relay printed\n%s\nwant\n%s", out.String(), want)
	}
}

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "build.log")
	var log strings.Builder
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&log, "line %d\n", i)
	}
	log.WriteString("go: the last line has no newline")
	if err := os.WriteFile(path, []byte(log.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	got := Tail(path, 3)
	if want := []string{"line 29", "line 30", "go: the last line has no newline"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Tail = %q, want %q", got, want)
	}
	if got := Tail(filepath.Join(t.TempDir(), "missing.log"), 20); len(got) != 0 {
		t.Errorf("Tail of a missing log = %q, want nothing", got)
	}
}

func TestFailed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "osm-operator.log")
	if err := os.WriteFile(path, []byte("started\nthe API server refused the webhook\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	p := New(&out, time.Now().Add(-time.Minute))
	p.Failed("compiling the demo", errors.New("exit status 1"), path)
	p.Failed("", errors.New("still waiting"), path)
	want := "[  1:00] FAILED compiling the demo: exit status 1; the last lines of " + path + ":\n" +
		"    started\n    the API server refused the webhook\n" +
		"[  1:00] FAILED: still waiting; the last lines of " + path + ":\n" +
		"    started\n    the API server refused the webhook\n"
	if out.String() != want {
		t.Errorf("Failed printed\n%s\nwant\n%s", out.String(), want)
	}

	// An empty log (the step failed before its tool wrote anything) says so.
	empty := filepath.Join(t.TempDir(), "empty.log")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	p.Failed("starting", errors.New("no port"), empty)
	if want := "[  1:00] FAILED starting: no port; nothing in " + empty + "\n"; out.String() != want {
		t.Errorf("Failed printed %q, want %q", out.String(), want)
	}
}
