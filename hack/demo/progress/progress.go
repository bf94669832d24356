// Package progress prints the demo's progress: one line per step, with the
// time since the demo started, so that a first run (which builds for many
// minutes) shows where it is and how long it has taken. The tools' own
// output goes to a log file the steps name, not to the terminal.
//
// It imports only the standard library: the demo's launcher uses it before
// any Go module has been downloaded.
package progress

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Line is a progress line: "[ m:ss] msg", minutes and seconds since the
// start. Line breaks in msg become spaces, so a step is always one line.
func Line(elapsed time.Duration, msg string) string {
	s := max(int(elapsed/time.Second), 0)
	return fmt.Sprintf("[%3d:%02d] %s", s/60, s%60, strings.NewReplacer("\r", " ", "\n", " ").Replace(msg))
}

// Printer prints progress lines on one clock.
type Printer struct {
	out   io.Writer
	start time.Time
}

// New returns a Printer writing to out whose clock started at start.
func New(out io.Writer, start time.Time) *Printer {
	return &Printer{out: out, start: start}
}

// Start is when the Printer's clock started.
func (p *Printer) Start() time.Time { return p.start }

// Step prints one progress line.
func (p *Printer) Step(format string, args ...any) {
	fmt.Fprintln(p.out, Line(time.Since(p.start), fmt.Sprintf(format, args...)))
}

// Relay copies another program's output to the terminal: its progress
// lines, "<prefix>m:ss] msg", become steps on this Printer's clock; any
// other line passes through unchanged.
func (p *Printer) Relay(r io.Reader, prefix string) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if msg, ok := relayed(sc.Text(), prefix); ok {
			p.Step("%s", msg)
			continue
		}
		fmt.Fprintln(p.out, sc.Text())
	}
	return sc.Err()
}

// relayed returns the message of a progress line "<prefix>m:ss] msg".
func relayed(line, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(line, prefix)
	if !ok {
		return "", false
	}
	clock, msg, ok := strings.Cut(rest, "] ")
	if !ok || clock == "" || strings.Trim(clock, "0123456789:") != "" {
		return "", false
	}
	return msg, true
}

// Failed prints that a step (what, if not empty) failed and the last lines
// of its log, indented.
func (p *Printer) Failed(what string, err error, log string) {
	if what != "" {
		what = " " + what
	}
	tail := Tail(log, TailLines)
	if len(tail) == 0 {
		p.Step("FAILED%s: %v; nothing in %s", what, err, log)
		return
	}
	p.Step("FAILED%s: %v; the last lines of %s:", what, err, log)
	for _, l := range tail {
		fmt.Fprintln(p.out, "    "+l)
	}
}

// TailLines is how many lines of a log a failure shows.
const TailLines = 20

// Tail returns the last n lines of the file at path, or none if it cannot
// be read.
func Tail(path string, n int) []string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return nil
	}
	return lines[max(len(lines)-n, 0):]
}
