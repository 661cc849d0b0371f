package actuators

import (
	"context"
	"errors"
	"net"

	"github.com/operator-dev/operator/schemas"
)

// An Executor runs catalogued actions against one subject's API.
// Implementations must be safe for concurrent use.
//
// Execute runs req.Action with req.Params (already validated against the
// catalog) and returns what the subject answered. It must send req.ID to the
// subject as the idempotency key (the Idempotency-Key header over HTTP), pass
// ctx to every call, and do one attempt: the worker owns timeouts and
// retries. Of the result, the worker keeps Output and, when not empty,
// Reason; it sets every other field itself.
//
// A returned error is permanent unless it reports itself transient (see
// [IsTransient]): an executor marks 5xx answers, timeouts and unreachable
// endpoints transient and 4xx answers permanent.
type Executor interface {
	Execute(ctx context.Context, req schemas.ActionRequest) (schemas.ActionResult, error)
}

// ExecutorFunc adapts a function to Executor.
type ExecutorFunc func(ctx context.Context, req schemas.ActionRequest) (schemas.ActionResult, error)

// Execute calls f.
func (f ExecutorFunc) Execute(ctx context.Context, req schemas.ActionRequest) (schemas.ActionResult, error) {
	return f(ctx, req)
}

// A Subject is what a subject plugs into the actuator: its action catalog
// and the executor that runs those actions. The pipeline and `operator
// actuate` build one per subject from the subject's folder and hand them to
// [New] keyed by subject name.
type Subject struct {
	Catalog *Catalog
	// Executor runs the actions. It may be nil only for a worker in
	// observe mode, which never executes.
	Executor Executor
}

// transient is implemented by errors that know whether retrying may help.
type transient interface {
	Transient() bool
}

// IsTransient reports whether retrying the action may succeed: err, or an
// error it wraps, has a Transient() bool method that returns true, or it is
// a timeout (context.DeadlineExceeded, a net.Error timeout). Every other
// error is permanent: an executor that does not classify an error never gets
// it retried.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var t transient
	if errors.As(err, &t) {
		return t.Transient()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TransientError marks an error as transient.
type TransientError struct{ Err error }

// Transient wraps err so that IsTransient reports true.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &TransientError{Err: err}
}

// Error returns the wrapped error's message.
func (e *TransientError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *TransientError) Unwrap() error { return e.Err }

// Transient reports true.
func (e *TransientError) Transient() bool { return true }
