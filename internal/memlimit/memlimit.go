// Package memlimit gives the Go runtime a soft memory limit below the
// container's: the garbage collector then runs as often as the heap needs
// rather than whenever the heap doubled, so a burst (thousands of proxies
// connecting at once) neither runs the process out of its limit nor, with
// room to spare, collects more than it must.
package memlimit

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
)

// Fraction of the container's memory limit the runtime aims to stay under:
// the rest is for what the runtime does not count (stacks in flight,
// fragmentation, cgo, the page cache of mapped files).
const Fraction = 0.9

// FS reads the files the limit comes from: the root file system, or a test's.
type FS interface {
	ReadFile(name string) ([]byte, error)
}

type osFS struct{}

func (osFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

// Set sets the runtime's soft memory limit to Fraction of the container's
// limit, unless GOMEMLIMIT is set (the operator's say wins) or there is no
// limit. It returns the limit set, 0 for none, and why.
func Set() (int64, string) {
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		return 0, "GOMEMLIMIT is set (" + v + ")"
	}
	limit, from, err := Container(osFS{})
	if err != nil {
		return 0, err.Error()
	}
	if limit == 0 {
		return 0, "the container has no memory limit"
	}
	soft := int64(float64(limit) * Fraction)
	debug.SetMemoryLimit(soft)
	return soft, fmt.Sprintf("%.0f%% of %d bytes (%s)", Fraction*100, limit, from)
}

// unlimited is what cgroup v1 reports for no limit, rounded down to pages:
// anything above it is no limit either.
const unlimited = 1 << 62

// Container is the memory limit of the process's cgroup (v2, else v1) and
// the file it was read from; 0 when there is none. A cgroup file system
// that cannot be read is not an error: outside a container there is none.
func Container(fsys FS) (int64, string, error) {
	v2, v1 := "/", "/"
	if b, err := fsys.ReadFile("/proc/self/cgroup"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			// hierarchy-ID:controllers:path
			parts := strings.SplitN(sc.Text(), ":", 3)
			if len(parts) != 3 {
				continue
			}
			switch {
			case parts[0] == "0" && parts[1] == "":
				v2 = parts[2]
			case hasController(parts[1], "memory"):
				v1 = parts[2]
			}
		}
	}
	// Inside a container's cgroup namespace the path is "/"; outside it
	// the file at the path is the process's, and the root's is the host's.
	for _, file := range []string{
		path.Join("/sys/fs/cgroup", v2, "memory.max"),
		"/sys/fs/cgroup/memory.max",
		path.Join("/sys/fs/cgroup/memory", v1, "memory.limit_in_bytes"),
		"/sys/fs/cgroup/memory/memory.limit_in_bytes",
	} {
		b, err := fsys.ReadFile(file)
		if err != nil {
			continue // not this cgroup version, or no cgroup file system
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, file, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return 0, file, fmt.Errorf("reading the memory limit from %s: %q is not a size", file, s)
		}
		if n >= unlimited {
			return 0, file, nil
		}
		return n, file, nil
	}
	return 0, "", nil
}

func hasController(list, name string) bool {
	for c := range strings.SplitSeq(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}
