package controllers

import (
	"context"
	"errors"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/open-service-mesh/osm-operator/internal/objname"
)

// reasonWriteFailed is the reason of a MeshVM or MeshInstance whose object
// the operator could not write: the API server refused it (an admission policy or webhook, a
// quota, RBAC) or could not be reached. The operator retries with backoff:
// what fixes it (a policy, a quota, a Service in the way) is no object it
// watches, so the resource is never Stalled for it.
const reasonWriteFailed = "WriteFailed"

// writeError is a write the operator made on a resource's behalf that
// failed: the resource's status says so, with the API server's message.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// failedWrite marks err, the wrapped error of a write for the VM, as one to
// report on the VM. A conflict is not: it is the next reconcile's to redo.
func failedWrite(err error) error {
	if err == nil || apierrors.IsConflict(err) {
		return err
	}
	return &writeError{err: err}
}

// writeOutcome is the outcome of a reconcile that failed with err, and
// whether err is a failed write to report on the resource.
func writeOutcome(err error) (outcome, bool) {
	var w *writeError
	if !errors.As(err, &w) {
		return outcome{}, false
	}
	return outcome{reason: reasonWriteFailed, message: err.Error()}, true
}

// nameHashLength is the length of the hash fitName appends.
const nameHashLength = 10

// fitName is base when it is short enough for an object's name (a DNS
// subdomain), else base cut short with a hash of the whole of it appended,
// so that two bases too long still get distinct names. Names derived from a
// VM's and a Service's (each valid) then always fit.
func fitName(base string) string {
	if len(base) <= validation.DNS1123SubdomainMaxLength {
		return base
	}
	return objname.Cut(base, base, validation.DNS1123SubdomainMaxLength, nameHashLength)
}

// reportable says whether a reconcile whose gathering ended with err
// writes a status: when it ended well, or with a failed write, which the
// status shows. Any other error (a read, a conflict) leaves the status as
// it is, for a retry with backoff.
func reportable(err error) bool {
	_, failed := writeOutcome(err)
	return err == nil || failed
}

// reportFailedWrite ends a reconcile of obj, whose status function was
// given err, the failed write that ended the gathering (nil when none
// did), through reportStatus; err is returned for a retry with backoff.
func reportFailedWrite(ctx context.Context, c client.Client, rec events.EventRecorder, obj, before statusObject, err error) (ctrl.Result, error) {
	res, serr := reportStatus(ctx, c, rec, obj, before)
	if err != nil {
		return ctrl.Result{}, errors.Join(err, serr)
	}
	return res, serr
}
