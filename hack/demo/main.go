// Command demo is `make demo`: it builds the test control plane
// (hack/build-envtest.sh) and the demo (hack/demo/mesh) and the operator,
// then runs the demo, which brings up a working mesh on this machine with no
// cluster. Each step prints one progress line with the time since the start;
// the tools' output (the go command's downloads and builds) goes to the log
// the first line names, whose last lines a failure shows. The binaries, the
// log and the logs of the processes the demo starts stay in bin/demo.
//
// It imports only the standard library, so that it compiles in seconds on a
// machine with none of the project's Go modules: downloading and compiling
// them is one of its steps, not a silent wait before its first line.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/open-service-mesh/osm-operator/hack/demo/progress"
)

func main() {
	once := flag.Bool("once", false, "Exit after showing the mesh instead of running until Ctrl-C.")
	rotate := flag.Bool("rotate", false, "After showing the mesh, rotate it to a new root through the rotation's phases, and time it.")
	out := flag.String("out", "", "The directory of the build log and the demo's binaries (default bin/demo in the repository).")
	startedSec := flag.Int64("started", 0, "When the demo started, in Unix seconds (make demo passes it): the progress lines count from it (default now).")
	flag.Parse()
	started := time.Now()
	if *startedSec > 0 {
		started = time.Unix(*startedSec, 0)
	}
	p := progress.New(os.Stdout, started)
	argv, err := build(p, *out)
	if err != nil {
		// The step that failed has printed why, and its log's last lines.
		os.Exit(1)
	}
	if *once {
		argv = append(argv, "-once")
	}
	if *rotate {
		argv = append(argv, "-rotate")
	}
	// The demo takes this process's place: Ctrl-C reaches it, and it
	// cleans up before the shell prompt returns.
	err = syscall.Exec(argv[0], argv, os.Environ())
	fmt.Fprintf(os.Stderr, "demo: starting %s: %v\n", argv[0], err)
	os.Exit(1)
}

// build builds the control plane, the demo and the operator, printing a
// line per step, and returns the demo's command line.
func build(p *progress.Printer, out string) ([]string, error) {
	fail := func(what string, err error) ([]string, error) {
		p.Step("FAILED %s: %v", what, err)
		return nil, err
	}
	root, err := repoRoot()
	if err != nil {
		return fail("finding the repository", err)
	}
	if out == "" {
		out = filepath.Join(root, "bin", "demo")
	}
	if out, err = filepath.Abs(out); err != nil {
		return fail("finding the output directory", err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fail("creating the output directory", err)
	}
	logPath := filepath.Join(out, "build.log")
	shown := shownPath(root, logPath)
	// Each run rewrites the log; every writer appends, so the script's lines
	// and the go command's land in order.
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return fail("creating the build log", err)
	}
	defer log.Close()

	p.Step("building the test control plane (etcd, kube-apiserver, kube-controller-manager; the first time about 20 minutes) — log: %s", shown)
	assets, err := controlPlane(p, root, shown)
	if err != nil {
		// The script printed its failure and its log's last lines.
		return nil, err
	}
	demoBin, operatorBin := filepath.Join(out, "mesh"), filepath.Join(out, "osm-operator")
	for _, b := range []struct{ what, bin, pkg string }{
		{"compiling the demo (the first time it downloads and compiles its Go modules: about 6 minutes)", demoBin, "./hack/demo/mesh"},
		{"compiling the operator", operatorBin, "./cmd"},
	} {
		p.Step("%s — log: %s", b.what, shown)
		if err := goBuild(root, log, b.bin, b.pkg); err != nil {
			p.Failed(strings.SplitN(b.what, " (", 2)[0], err, shown)
			return nil, err
		}
	}
	return []string{demoBin, "-assets", assets, "-operator", operatorBin, "-logs", shownPath(root, out), "-started", strconv.FormatInt(p.Start().Unix(), 10)}, nil
}

// controlPlane runs hack/build-envtest.sh, relaying its progress lines, and
// returns the directory of the binaries (the script's last line). logPath
// is relative to root or absolute: the script runs in root.
func controlPlane(p *progress.Printer, root, logPath string) (string, error) {
	var stdout bytes.Buffer
	cmd := exec.Command("bash", filepath.Join(root, "hack", "build-envtest.sh"), "kube-controller-manager")
	cmd.Dir, cmd.Stdout = root, &stdout
	cmd.Env = append(os.Environ(), "BUILD_ENVTEST_LOG="+logPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", fmt.Errorf("running hack/build-envtest.sh: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("running hack/build-envtest.sh: %w", err)
	}
	relayErr := p.Relay(stderr, "[build-envtest ")
	if err := errors.Join(cmd.Wait(), relayErr); err != nil {
		return "", fmt.Errorf("hack/build-envtest.sh: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	return lines[len(lines)-1], nil
}

// goBuild builds pkg into bin, its output into log after the command line.
func goBuild(root string, log io.Writer, bin, pkg string) error {
	args := []string{"build", "-o", bin, pkg}
	fmt.Fprintf(log, "$ go %s\n", strings.Join(args, " "))
	cmd := exec.Command("go", args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, log, log
	return cmd.Run()
}

// repoRoot is the repository the working directory is in.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "hack", "build-envtest.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run it in the osm-operator repository: no hack/build-envtest.sh in the working directory or above")
		}
		dir = parent
	}
}

// shownPath is how a line names path: relative to the repository when it
// is the working directory and path is inside it.
func shownPath(root, path string) string {
	wd, err := os.Getwd()
	if err != nil || wd != root {
		return path
	}
	rel, err := filepath.Rel(root, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		return path
	}
	return rel
}
