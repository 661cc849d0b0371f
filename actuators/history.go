package actuators

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/operator-dev/operator/schemas"
)

// EventReader reads the events a stream has stored since a time, oldest
// first, and returns once it has caught up. internal/bus's ReadEvents
// satisfies it.
type EventReader interface {
	ReadEvents(ctx context.Context, stream string, since time.Time, fn func(subject string, e event.Event, err error) error) error
}

// A History is one action request with everything that followed it, as the
// actions stream tells it.
type History struct {
	ID          string
	Request     *schemas.ActionRequest
	RequestedAt time.Time
	// Awaiting is the awaiting_approval result, if the request waited.
	Awaiting *schemas.ActionResult
	// Result is the final result.
	Result       *schemas.ActionResult
	Verification *schemas.ActionVerification
	// Events are the request's events in stream order.
	Events []event.Event
}

// Outcome is the request's final outcome, awaiting_approval while it waits,
// or "pending".
func (h *History) Outcome() string {
	switch {
	case h.Result != nil:
		return h.Result.Outcome
	case h.Awaiting != nil:
		return h.Awaiting.Outcome
	}
	return "pending"
}

// Verified is "yes", "NO" or "-" (not verified, or not yet).
func (h *History) Verified() string {
	switch {
	case h.Verification == nil:
		return "-"
	case h.Verification.Verified:
		return "yes"
	}
	return "NO"
}

// Reason is the latest reason given: a failed verification's, the
// result's, or the wait for approval's.
func (h *History) Reason() string {
	switch {
	case h.Verification != nil && !h.Verification.Verified:
		return h.Verification.Reason
	case h.Result != nil:
		return h.Result.Reason
	case h.Awaiting != nil:
		return h.Awaiting.Reason
	}
	return ""
}

// RequestID returns the id of the request an action event is about: the
// request's own id, or the request_id of its result or verification.
func RequestID(e event.Event) string {
	var d struct {
		ID        string `json:"id"`
		RequestID string `json:"request_id"`
	}
	_ = json.Unmarshal(e.Data(), &d)
	if d.RequestID != "" {
		return d.RequestID
	}
	return d.ID
}

// ReadHistory reads the actions stream from since and groups its events by
// request, newest request first.
func ReadHistory(ctx context.Context, r EventReader, since time.Time) ([]*History, error) {
	byID := map[string]*History{}
	err := r.ReadEvents(ctx, schemas.StreamActions, since, func(_ string, e event.Event, err error) error {
		if err != nil {
			return nil // not an event; operator events tail shows it
		}
		id := RequestID(e)
		if id == "" {
			return nil
		}
		h := byID[id]
		if h == nil {
			h = &History{ID: id, RequestedAt: e.Time()}
			byID[id] = h
		}
		h.add(e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	list := make([]*History, 0, len(byID))
	for _, h := range byID {
		list = append(list, h)
	}
	slices.SortFunc(list, func(a, b *History) int {
		if c := b.RequestedAt.Compare(a.RequestedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return list, nil
}

// add files one event of the request.
func (h *History) add(e event.Event) {
	h.Events = append(h.Events, e)
	switch e.Type() {
	case schemas.TypeActionRequested:
		var r schemas.ActionRequest
		if json.Unmarshal(e.Data(), &r) == nil && h.Request == nil {
			h.Request, h.RequestedAt = &r, r.RequestedAt
		}
	case schemas.TypeActionCompleted:
		var r schemas.ActionResult
		if json.Unmarshal(e.Data(), &r) == nil {
			if r.Outcome == schemas.OutcomeAwaitingApproval {
				h.Awaiting = &r
			} else {
				h.Result = &r
			}
		}
	case schemas.TypeActionVerified:
		var v schemas.ActionVerification
		if json.Unmarshal(e.Data(), &v) == nil {
			h.Verification = &v
		}
	}
}

// FindHistory returns the one request whose id is id or starts with it.
func FindHistory(list []*History, id string) (*History, error) {
	var match []*History
	for _, h := range list {
		if h.ID == id {
			return h, nil
		}
		if strings.HasPrefix(h.ID, id) {
			match = append(match, h)
		}
	}
	switch len(match) {
	case 0:
		return nil, fmt.Errorf("no action request %q in %s", id, schemas.StreamActions)
	case 1:
		return match[0], nil
	}
	return nil, fmt.Errorf("%q matches %d requests; give more of the id", id, len(match))
}

// Tailer follows the events stored on matching subjects from a time until
// ctx is done. internal/bus's Tail satisfies it.
type Tailer interface {
	Tail(ctx context.Context, filter string, since time.Time, fn func(subject string, e event.Event, err error)) error
}

// WaitOutcome follows request id's events from since, calling fn with each
// one, until its verification or a final outcome that will not be verified
// (anything but succeeded). It returns the final result, or an error when
// ctx ends first without one.
func WaitOutcome(ctx context.Context, t Tailer, filter, id string, since time.Time, fn func(event.Event)) (*schemas.ActionResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var final *schemas.ActionResult
	err := t.Tail(ctx, filter, since, func(_ string, e event.Event, err error) {
		if err != nil || !strings.HasPrefix(e.Type(), "io.operator.action.") || RequestID(e) != id {
			return
		}
		if fn != nil {
			fn(e)
		}
		switch e.Type() {
		case schemas.TypeActionCompleted:
			var r schemas.ActionResult
			if json.Unmarshal(e.Data(), &r) == nil && r.Outcome != schemas.OutcomeAwaitingApproval {
				final = &r
				if r.Outcome != schemas.OutcomeSucceeded {
					cancel()
				}
			}
		case schemas.TypeActionVerified:
			cancel()
		}
	})
	if err != nil && ctx.Err() == nil {
		return nil, err
	}
	if final == nil {
		return nil, fmt.Errorf("no outcome for %s (is an actuator running for this subject?)", id)
	}
	return final, nil
}

// NewRequestID returns a random id for a request made by hand.
func NewRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return "act-" + hex.EncodeToString(b)
}
