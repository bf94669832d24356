// Command testlog reads the output of `go test -v ./...` on standard input,
// prints what a plain `go test` would (each package's result line, and the
// whole output of a package that failed), or everything with -all, and scans
// every line for private keys and tokens: an operator log, Event, status
// or metric that carried one would show here. It exits 1 when it found one.
//
// make test runs every test with -v through it, so that the scan sees every
// line the tests and the operators they run wrote.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// secrets are what a private key or a token looks like in text: a PEM
// private key header, as it is and in base64 at each of its three
// alignments (how a []byte appears in JSON), the DER of ECDSA and RSA keys
// in base64 (a PEM body, or a Secret's data; an RSA key's lengths vary, so
// its pattern skips them), and a JWT.
var secrets = []struct {
	what    string
	pattern *regexp.Regexp
}{
	{"a PEM private key", regexp.MustCompile(`PRIVATE KEY-----`)},
	{"a base64 PEM private key", regexp.MustCompile(`UFJJVkFURSBLRVkt|BSSVZBVEUgS0VZL|QUklWQVRFIEtFWS0`)},
	{"an ECDSA private key (SEC 1)", regexp.MustCompile(`MHcCAQEEI`)},
	{"an ECDSA private key (PKCS #8)", regexp.MustCompile(`MIGHAgEAMBMGByqGSM49AgEG`)},
	{"an RSA private key (PKCS #1)", regexp.MustCompile(`MII[A-Za-z0-9+/]{5}AAKCA[QYg]EA`)},
	{"an RSA private key (PKCS #8)", regexp.MustCompile(`MII[A-Za-z0-9+/]{5}ADANBgkqhkiG9w0BAQEFAASC`)},
	{"a JSON Web Token", regexp.MustCompile(`eyJhbGciOi`)},
}

// Finding is a line that holds a secret.
type Finding struct {
	Line int
	What string
}

// Scan returns the secrets in line, numbered n.
func Scan(n int, line string) []Finding {
	var out []Finding
	for _, s := range secrets {
		if s.pattern.MatchString(line) {
			out = append(out, Finding{n, s.what})
		}
	}
	return out
}

// packageEnd says whether line ends a package's output in go test's.
func packageEnd(line string) bool {
	for _, p := range []string{"ok  \t", "FAIL\t", "?   \t"} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

func run(in io.Reader, out io.Writer, all bool) (findings []Finding, err error) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var block []string
	failed := false
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		findings = append(findings, Scan(n, line)...)
		if all {
			fmt.Fprintln(out, line)
			continue
		}
		block = append(block, line)
		if strings.HasPrefix(line, "--- FAIL") || strings.HasPrefix(line, "panic:") || strings.HasPrefix(line, "FAIL") {
			failed = true
		}
		if !packageEnd(line) {
			continue
		}
		if failed {
			fmt.Fprintln(out, strings.Join(block, "\n"))
		} else {
			fmt.Fprintln(out, line)
		}
		block, failed = block[:0], false
	}
	// What follows the last package (a build failure, a message of go
	// test's own) is printed whole.
	if len(block) > 0 {
		fmt.Fprintln(out, strings.Join(block, "\n"))
	}
	return findings, sc.Err()
}

func main() {
	all := flag.Bool("all", false, "print every line, as go test -v does")
	flag.Parse()
	findings, err := run(os.Stdin, os.Stdout, *all)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testlog: reading the test output:", err)
		os.Exit(1)
	}
	if len(findings) > 0 {
		fmt.Fprintf(os.Stderr, "testlog: the test output holds %d secrets (the full output is in bin/test-output.log):\n", len(findings))
		for _, f := range findings {
			fmt.Fprintf(os.Stderr, "  line %d: %s\n", f.Line, f.What)
		}
		os.Exit(1)
	}
}
