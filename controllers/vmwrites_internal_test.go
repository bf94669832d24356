package controllers

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// fitName keeps a name that fits, and makes any other a valid, distinct
// name: also when the cut falls on a dot or a dash, which a name may not
// end with nor put before the hash's dash.
func TestFitName(t *testing.T) {
	if got := fitName("web-vm-warehouse-ipv4"); got != "web-vm-warehouse-ipv4" {
		t.Errorf("a name that fits became %q", got)
	}
	cut := validation.DNS1123SubdomainMaxLength - nameHashLength - 1
	bases := []string{
		strings.Repeat("v", 240) + "-warehouse-ipv4",
		strings.Repeat("v", 240) + "-warehouse-ipv6",
		strings.Repeat("a", cut-1) + ".b" + strings.Repeat("c", 20),
		strings.Repeat("a", cut-2) + "-.b" + strings.Repeat("c", 20),
		strings.Repeat("a.", 130),
	}
	seen := map[string]string{}
	for _, b := range bases {
		got := fitName(b)
		if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
			t.Errorf("fitName(%.20s…) = %q: %v", b, got, errs)
		}
		if other, ok := seen[got]; ok {
			t.Errorf("%.20s… and %.20s… both became %q", b, other, got)
		}
		seen[got] = b
	}
}

// A failed write is reported and retried, never Stalled (a refusal of the
// API server as Invalid included: an admission policy's denial is one); a
// conflict is no news; an error of no write is not reported.
func TestWriteOutcome(t *testing.T) {
	gr := schema.GroupResource{Group: "discovery.k8s.io", Resource: "endpointslices"}
	invalid := apierrors.NewInvalid(schema.GroupKind{Group: "discovery.k8s.io", Kind: "EndpointSlice"}, "x", field.ErrorList{field.TooLong(field.NewPath("metadata", "name"), "x", 253)})
	forbidden := apierrors.NewForbidden(gr, "x", errors.New("exceeded quota"))
	for _, c := range []struct {
		err      error
		reported bool
		want     outcome
	}{
		{failedWrite(fmt.Errorf("writing EndpointSlice x: %w", invalid)), true, outcome{reason: reasonWriteFailed}},
		{failedWrite(fmt.Errorf("writing EndpointSlice x: %w", forbidden)), true, outcome{reason: reasonWriteFailed}},
		{failedWrite(fmt.Errorf("writing EndpointSlice x: %w", apierrors.NewConflict(gr, "x", errors.New("changed")))), false, outcome{}},
		{fmt.Errorf("listing pods: %w", forbidden), false, outcome{}},
	} {
		got, reported := writeOutcome(c.err)
		if reported != c.reported || got.reason != c.want.reason || got.stalled != c.want.stalled {
			t.Errorf("writeOutcome(%v) = %+v, %v; want %+v, %v", c.err, got, reported, c.want, c.reported)
		}
		if reported && got.message != c.err.Error() {
			t.Errorf("message %q, want the error %q", got.message, c.err)
		}
	}
}

// The names fitName gives are stored (a VM's bootstrap Secret, which its
// admin copies by name, and its EndpointSlices): these are the ones it gave
// when they were pinned, short and hashed.
func TestFitNamesArePinned(t *testing.T) {
	for _, c := range []struct{ base, want string }{
		{"web-vm-bootstrap", "web-vm-bootstrap"},
		{strings.Repeat("v", 253), strings.Repeat("v", 253)},
		{strings.Repeat("v", 240) + "-warehouse-ipv4", strings.Repeat("v", 240) + "-w-82bcee9cc9"},
		// The cut falls after a dot, which goes.
		{strings.Repeat("a.", 130), strings.Repeat("a.", 120) + "a-fbf4a65980"},
	} {
		if got := fitName(c.base); got != c.want {
			t.Errorf("fitName(%.20s… of %d) = %q, want %q", c.base, len(c.base), got, c.want)
		}
	}
}
