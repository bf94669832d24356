package explain

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Write prints the answer for a reader.
func (a *Answer) Write(w io.Writer) error {
	var b strings.Builder
	q := a.Query
	verdict := "DENIED"
	if a.Allowed {
		verdict = "ALLOWED"
	}
	fmt.Fprintf(&b, "%s %s %s from %s to %s port %d: %s\n", verdict, q.Method, q.Path, q.From, q.To, q.Port, a.summary())
	if a.Route != "" || a.Outcome != "" {
		fmt.Fprintf(&b, "  route: %s (%s", orNone(a.Route), a.Outcome)
		if a.Status != 0 {
			fmt.Fprintf(&b, ", answered %d by the caller's proxy", a.Status)
		}
		b.WriteString(")\n")
	}
	if be := a.Unrouted; be != nil {
		for _, d := range be.Groups {
			fmt.Fprintf(&b, "  were it to reach %s: %s at port %d would %s\n", be.Service, d.Group, d.TargetPort, verdictOf(d))
		}
	}
	for _, be := range a.Backends {
		if be.Invalid {
			fmt.Fprintf(&b, "  backend %s (%.0f%%): does not resolve, answered 500\n", be.Cluster, be.Share*100)
			continue
		}
		fmt.Fprintf(&b, "  backend %s port %d (%.0f%% of requests)\n", be.Service, be.Port, be.Share*100)
		for _, d := range be.Groups {
			fmt.Fprintf(&b, "    %s at port %d: %s\n", d.Group, d.TargetPort, verdictOf(d))
			if d.MTLS != "" {
				fmt.Fprintf(&b, "      mutual TLS: %s\n", d.MTLS)
			}
		}
	}
	if a.Outcome == "forward" {
		fmt.Fprintf(&b, "  timeout: %s\n", a.Timeout)
		if r := a.Retry; r != nil {
			fmt.Fprintf(&b, "  retries: %+v\n", *r)
		} else {
			b.WriteString("  retries: none\n")
		}
	}
	if a.Resilience != nil {
		raw, err := json.Marshal(a.Resilience)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "  resilience of the port: %s\n", raw)
	}
	for _, n := range a.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	if a.Held != nil {
		fmt.Fprintf(&b, "  %s\n", a.Held)
	} else {
		fmt.Fprintf(&b, "  the caller's config version: %s (the census was not read)\n", a.Version)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// verdictOf is a destination's decision in words.
func verdictOf(d Destination) string {
	v := "deny it"
	if d.Decision.Allowed {
		v = "allow it"
	}
	if d.Decision.Policy != "" {
		v += ", by policy " + d.Decision.Policy
	}
	return v + ": " + d.Decision.Reason
}

// summary is the verdict's reason in a few words.
func (a *Answer) summary() string {
	switch {
	case a.Outcome == "no route":
		return "the caller's proxy has no route for it"
	case a.Outcome != "forward":
		return fmt.Sprintf("the caller's proxy answers it itself (%s)", a.Outcome)
	}
	var deciders []string
	for _, be := range a.Backends {
		for _, d := range be.Groups {
			if d.Decision.Allowed != a.Allowed || be.Share == 0 {
				continue
			}
			if d.Decision.Policy != "" {
				deciders = append(deciders, d.Decision.Policy)
			} else {
				deciders = append(deciders, d.Decision.Reason)
			}
		}
	}
	if len(deciders) == 0 {
		if a.Allowed {
			return "allowed"
		}
		return "no policy allows it"
	}
	return strings.Join(dedupe(deciders), "; ")
}

func dedupe(s []string) []string {
	var out []string
	for _, x := range s {
		if len(out) == 0 || out[len(out)-1] != x {
			out = append(out, x)
		}
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
