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

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// explainRequests runs `osm-operator explain` for a request the policy
// allows (the bookbuyer buying a book) and one it denies (the bookthief
// doing the same), and `explain pod` of a bookbuyer pod, and prints the
// answers.
func explainRequests(ctx context.Context, k client.Client, operatorBin, kubeconfig string, out io.Writer) error {
	var pods corev1.PodList
	if err := k.List(ctx, &pods, client.InNamespace("bookbuyer")); err != nil {
		return fmt.Errorf("listing the bookbuyer's pods: %w", err)
	}
	calls := []struct {
		args []string
		exit int
	}{
		{[]string{"explain", "--from", "bookbuyer/bookbuyer", "--to", "bookstore.bookstore:14001", "--path", "/buy-a-book/new"}, 0},
		{[]string{"explain", "--from", "bookthief/bookthief", "--to", "bookstore.bookstore:14001", "--path", "/buy-a-book/new"}, 3},
	}
	if len(pods.Items) > 0 {
		calls = append(calls, struct {
			args []string
			exit int
		}{[]string{"explain", "pod", "bookbuyer/" + pods.Items[0].Name}, 0})
	}
	for _, c := range calls {
		args := c.args
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
			return fmt.Errorf("osm-operator %s: exit %d, want %d: %s", strings.Join(args, " "), code, c.exit, stderr.String())
		}
	}
	return nil
}
