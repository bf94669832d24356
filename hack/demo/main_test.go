package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/open-service-mesh/osm-operator/internal/testenv"
)

// What a newcomer's terminal may show: progress lines, the indented tail of
// the build log when a step fails, and make's own error line.
var (
	demoLine    = regexp.MustCompile(`^\[ *\d+:\d\d\] \S`)
	envtestLine = regexp.MustCompile(`^\[build-envtest \d+:\d\d\] \S`)
	tailLine    = regexp.MustCompile(`^    `)
	makeError   = regexp.MustCompile(`^make(\[\d+\])?: \*\*\* .* Error \d+$`)
	// envtestFiles are what the demo runs of the test control plane.
	envtestFiles = []string{"etcd", "kube-apiserver", "kube-controller-manager"}
)

// make demo and make envtest on a machine that has none of the Go modules
// and cannot download them (an empty module cache, GOPROXY=off): each step
// prints one line, the go command's output goes only to the log the output
// names, and the failure shows that log's last lines. With no network the
// runs fail within seconds where a real first run would download and build
// for minutes; what reaches the terminal is the same until then.
func TestFirstRunPrintsOneLinePerStep(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make on this machine")
	}
	// The store and the version hack/build-envtest.sh would use here, as
	// the other tests find them (ENVTEST_STORE, XDG_DATA_HOME, the pinned
	// version, this machine's OS and architecture).
	realStore, err := testenv.Store()
	if err != nil {
		t.Fatal(err)
	}
	assets, err := testenv.StoreAssets(realStore)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range envtestFiles {
		if _, err := os.Stat(filepath.Join(assets, f)); err != nil {
			t.Skipf("the test control plane is not built (make envtest): %v", err)
		}
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		// store is where build-envtest.sh looks for the control plane:
		// the real one (built) or an empty one (a fresh machine).
		store string
		args  func(out string) []string
		line  *regexp.Regexp
		log   string
		// wantLines are what the output must show, in order.
		wantLines []string
	}{
		{
			name:      "make demo, the control plane built, the demo's modules missing",
			store:     realStore,
			args:      func(out string) []string { return []string{"demo", "DEMOFLAGS=-out '" + out + "'"} },
			line:      demoLine,
			log:       "build.log",
			wantLines: []string{"compiling the demo's launcher", "building the test control plane", "already in", "compiling the demo", "FAILED"},
		},
		{
			name:      "make demo on a fresh machine",
			args:      func(out string) []string { return []string{"demo", "DEMOFLAGS=-out '" + out + "'"} },
			line:      demoLine,
			log:       "build.log",
			wantLines: []string{"building the test control plane", "resolving go.etcd.io/etcd", "FAILED"},
		},
		{
			name: "make envtest on a fresh machine",
			args: func(out string) []string {
				return []string{"envtest", "BUILD_ENVTEST_LOG=" + filepath.Join(out, "build.log")}
			},
			line:      envtestLine,
			log:       "build.log",
			wantLines: []string{"resolving go.etcd.io/etcd", "FAILED"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			// A path with a space: the log's path is quoted everywhere it goes.
			out := filepath.Join(tmp, "demo output")
			store := c.store
			if store == "" {
				store = filepath.Join(tmp, "envtest store")
			}
			modcache := filepath.Join(tmp, "modcache")
			t.Cleanup(func() { _ = exec.Command("chmod", "-R", "u+w", modcache).Run() })
			cmd := exec.Command("make", append([]string{"--no-print-directory"}, c.args(out)...)...)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "GOMODCACHE="+modcache, "GOPROXY=off", "ENVTEST_STORE="+store)
			var term bytes.Buffer
			cmd.Stdout, cmd.Stderr = &term, &term
			if err := cmd.Run(); err == nil {
				t.Fatalf("make %v succeeded with no Go modules and no network; it printed:\n%s", c.args(out), term.String())
			}
			lines := strings.Split(strings.TrimRight(term.String(), "\n"), "\n")
			var stray []string
			for _, l := range lines {
				if !c.line.MatchString(l) && !tailLine.MatchString(l) && !makeError.MatchString(l) {
					stray = append(stray, l)
				}
			}
			if len(stray) > 0 {
				t.Errorf("the terminal shows %d lines that are not progress lines, the log's tail or make's error, the first: %q", len(stray), stray[:min(len(stray), 5)])
			}
			next := 0
			for _, l := range lines {
				if next < len(c.wantLines) && c.line.MatchString(l) && strings.Contains(l, c.wantLines[next]) {
					next++
				}
			}
			if next < len(c.wantLines) {
				t.Errorf("no progress line with %q (in this order: %q)", c.wantLines[next], c.wantLines)
			}
			logPath := filepath.Join(out, c.log)
			if !strings.Contains(term.String(), "FAILED") || !strings.Contains(term.String(), logPath+":") {
				t.Errorf("the failure does not name the log %s", logPath)
			}
			log, err := os.ReadFile(logPath)
			if err != nil {
				t.Fatalf("the log the output names: %v", err)
			}
			if !strings.Contains(string(log), "GOPROXY=off") {
				t.Errorf("the log holds no go command's error; it is:\n%s", log)
			}
			logLines := strings.Split(strings.TrimRight(string(log), "\n"), "\n")
			if last := logLines[len(logLines)-1]; !strings.Contains(term.String(), "\n    "+last+"\n") {
				t.Errorf("the failure does not show the log's last line %q", last)
			}
			if t.Failed() {
				t.Logf("the terminal showed:\n%s", term.String())
			}
		})
	}
}
