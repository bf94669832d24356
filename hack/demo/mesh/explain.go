package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// explainRequests runs `osm-operator explain` for a request the policy
// allows (the bookbuyer buying a book) and one it denies (the bookthief
// doing the same), and prints both answers.
func explainRequests(ctx context.Context, operatorBin, kubeconfig string, out io.Writer) error {
	for _, c := range []struct {
		from string
		exit int
	}{{"bookbuyer/bookbuyer", 0}, {"bookthief/bookthief", 3}} {
		args := []string{"explain", "--from", c.from, "--to", "bookstore.bookstore:14001", "--path", "/buy-a-book/new"}
		fmt.Fprintf(out, "$ osm-operator %s\n", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, operatorBin, args...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			return fmt.Errorf("running explain: %w", err)
		}
		if _, err := out.Write(stdout.Bytes()); err != nil {
			return err
		}
		if code != c.exit {
			return fmt.Errorf("explain --from %s: exit %d, want %d: %s", c.from, code, c.exit, stderr.String())
		}
	}
	return nil
}
