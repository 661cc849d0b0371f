package pdapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Sentinel errors that an [*Error] matches with errors.Is. PD reports some of
// these conditions with a 500 and a message rather than a distinct status, so
// matching is on the status or on PD's error code in the message.
var (
	// ErrNotFound: the store, region, operator or scheduler does not exist
	// (404, or a 500 carrying PD's *NotFound error code, as the store limit
	// and operator status endpoints answer).
	ErrNotFound = errors.New("pdapi: not found")
	// ErrOperatorExists: PD refused a new operator because the region
	// already has one ("failed to add operator, maybe already have one").
	ErrOperatorExists = errors.New("pdapi: region already has an operator")
	// ErrStoreRemoved: the store is Tombstone (410 ErrStoreRemoved).
	ErrStoreRemoved = errors.New("pdapi: store has been removed")
	// ErrNotBootstrapped: no TiKV has joined the cluster yet; PD answers
	// store and region endpoints with 500 ErrNotBootstrapped.
	ErrNotBootstrapped = errors.New("pdapi: cluster not bootstrapped")
	// ErrNoLeader: the PD member has no leader to proxy to (503 "redirect
	// finds no leader").
	ErrNoLeader = errors.New("pdapi: PD has no leader")
)

// Error is a failed call to PD: either no answer arrived (Status 0, Err set)
// or PD answered with a status other than 2xx.
type Error struct {
	// Method and URL of the attempt that failed (the last one, when the
	// client failed over across several PD URLs).
	Method string
	URL    string
	// Status is the HTTP status code, or 0 when no response arrived.
	Status int
	// Message is PD's message: the body decoded as a JSON string (PD's
	// usual error body), the msg of an errcode object, or the raw text
	// (the redirector answers text/plain).
	Message string
	// Err is the transport error when Status is 0.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("pdapi: %s %s: %v", e.Method, e.URL, e.Err)
	}
	status := fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))
	if e.Message == "" {
		return fmt.Sprintf("pdapi: %s %s: %s", e.Method, e.URL, status)
	}
	return fmt.Sprintf("pdapi: %s %s: %s: %s", e.Method, e.URL, status, e.Message)
}

// Unwrap returns the transport error, if any.
func (e *Error) Unwrap() error { return e.Err }

// Is matches the package's sentinel errors (see [ErrNotFound] and friends).
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound || (e.Status != 0 && isNotFoundMessage(e.Message))
	case ErrOperatorExists:
		return strings.Contains(e.Message, "failed to add operator, maybe already have one")
	case ErrStoreRemoved:
		return e.Status == http.StatusGone || strings.Contains(e.Message, "ErrStoreRemoved")
	case ErrNotBootstrapped:
		return strings.Contains(e.Message, "ErrNotBootstrapped") || strings.Contains(e.Message, "cluster not bootstrapped")
	case ErrNoLeader:
		return e.Status == http.StatusServiceUnavailable && strings.Contains(e.Message, "no leader")
	}
	return false
}

// IsTransient reports whether the same call may succeed later: true for
// transport errors (except the caller's own cancellation), 429 and 5xx;
// false for 4xx. PD also answers 500 for some requests that can never
// succeed as sent (a missing region or store, "region has no voter in store
// S", an operator with nothing to do); those are not transient either.
func (e *Error) IsTransient() bool {
	switch {
	case e.Status == 0:
		return !errors.Is(e.Err, context.Canceled)
	case e.Status == http.StatusTooManyRequests:
		return true
	case e.Status >= 500:
		return !isPermanentMessage(e.Message)
	default:
		return false
	}
}

// Transient is [Error.IsTransient] under the name Operator's actuator looks
// for (a Transient() bool method), so an executor can return a *Error as is
// and have it retried or not.
func (e *Error) Transient() bool { return e.IsTransient() }

// IsTransient reports whether err is an [*Error] that may succeed if retried
// (see [Error.IsTransient]). Any other error, such as a response PD sent
// that could not be decoded, is permanent.
func IsTransient(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.IsTransient()
}

// notFoundMarkers are PD error codes and messages that mean "no such thing".
var notFoundMarkers = []string{
	"ErrStoreNotFound", "ErrRegionNotFound", "ErrOperatorNotFound", "ErrSchedulerNotFound",
	"operator not found", "scheduler not found",
}

func isNotFoundMessage(msg string) bool {
	for _, m := range notFoundMarkers {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}

// permanentMarkers are PD 500 messages for requests that cannot succeed as
// sent (pkg/schedule/handler and the operator builder).
var permanentMarkers = []string{
	"region has no voter in store",
	"region has no peer in store",
	"no operator step is built",
	"cannot add peer",
	"cannot remove peer",
	"cannot transfer leader to", // not found / not voter; "unhealthy" is handled below
	"ErrStoreRemoved",
	"ErrStoreDestroyed",
	"invalid state",
}

func isPermanentMessage(msg string) bool {
	if isNotFoundMessage(msg) {
		return true
	}
	if strings.Contains(msg, "unhealthy") {
		// The target store may recover ("cannot transfer leader to S:
		// unhealthy", ErrStoreUnhealthy).
		return false
	}
	for _, m := range permanentMarkers {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}
