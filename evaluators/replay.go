package evaluators

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/operator-dev/operator/schemas"
)

// ReplayStats counts what Replay did.
type ReplayStats struct {
	// Observations evaluated, and events skipped: not observations, of a
	// subject without rules, or invalid.
	Observations int
	Skipped      int
	// Emitted events.
	Emitted int
}

// Replay feeds the events next returns (io.EOF after the last) through an
// engine on an in-memory state store and a virtual clock, and hands every
// event the engine would publish to emit, in order. Time is each
// observation's ce-time; staleness comes from the gaps between
// observations. The same input gives the same output, byte for byte.
func Replay(ctx context.Context, cfg Config, sets []*RuleSet, next func() (event.Event, error), emit func(subject string, e event.Event) error) (ReplayStats, error) {
	var st ReplayStats
	pub := schemas.PublisherFunc(func(_ context.Context, subject string, e event.Event) error {
		st.Emitted++
		return emit(subject, e)
	})
	eng, err := NewEngine(cfg, sets, &MemoryStore{}, pub)
	if err != nil {
		return st, err
	}
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		ev, err := next()
		if errors.Is(err, io.EOF) {
			return st, nil
		}
		if err != nil {
			return st, err
		}
		if ev.Type() != schemas.TypeObservation {
			st.Skipped++
			continue
		}
		err = eng.Observe(ctx, ev, ev.Time())
		switch {
		case errors.Is(err, ErrNoRules):
			st.Skipped++
		case errors.Is(err, ErrInvalidObservation):
			st.Skipped++
			eng.log.Warn("replay: invalid observation skipped", "event_id", ev.ID(), "error", err)
		case err != nil:
			return st, err
		default:
			st.Observations++
		}
	}
}

// FormatEvent renders a violation or action request on one line:
//
//	<time> violation <status> <fingerprint> <severity> episode=<id> "<summary>"
//	<time> action.requested <action> <subject>/<instance> id=<id> episode=<id> params=<json>
func FormatEvent(e event.Event) string {
	ts := e.Time().UTC().Format(time.RFC3339Nano)
	switch e.Type() {
	case schemas.TypeViolation:
		var v schemas.Violation
		if err := json.Unmarshal(e.Data(), &v); err != nil {
			return fmt.Sprintf("%s violation (undecodable: %v) id=%s", ts, err, e.ID())
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s violation %s %s %s episode=%s %q", ts, v.Status, v.Fingerprint, v.Severity, v.Episode, v.Summary)
		if v.Error != "" {
			fmt.Fprintf(&b, " error=%q", v.Error)
		}
		return b.String()
	case schemas.TypeActionRequested:
		var a schemas.ActionRequest
		if err := json.Unmarshal(e.Data(), &a); err != nil {
			return fmt.Sprintf("%s action.requested (undecodable: %v) id=%s", ts, err, e.ID())
		}
		params, _ := json.Marshal(a.Params)
		episode := ""
		if a.Violation != nil {
			episode = a.Violation.Episode
		}
		return fmt.Sprintf("%s action.requested %s %s/%s id=%s episode=%s params=%s", ts, a.Action, a.Subject, a.Instance, a.ID, episode, params)
	}
	return fmt.Sprintf("%s %s id=%s", ts, e.Type(), e.ID())
}
