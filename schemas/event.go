package schemas

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// EventSpec names the attributes of an event to build.
type EventSpec struct {
	// Type is one of the Type* constants.
	Type string
	// Source is /observers/<subject>/<instance>, /evaluators/<worker> or
	// /actuators/<worker>.
	Source string
	// Subject is the CloudEvents subject attribute (not the NATS subject).
	Subject string
	// ID must be deterministic for events that may be re-emitted (see
	// DeriveID): it becomes Nats-Msg-Id, so JetStream drops the repeat.
	ID string
	// Time is when the event happened; for derived events it is the time of
	// the observation that caused them, never the wall clock.
	Time time.Time
	// CorrelationID and CausationID become the correlationid and
	// causationid extensions when set.
	CorrelationID string
	CausationID   string
}

// NewEvent builds a CloudEvent with JSON data and checks it against the
// CloudEvents spec. It does not validate data against its schema; see
// Validator.Validate.
func NewEvent(spec EventSpec, data any) (event.Event, error) {
	e := event.New()
	e.SetType(spec.Type)
	e.SetSource(spec.Source)
	e.SetID(spec.ID)
	e.SetTime(spec.Time.UTC())
	if spec.Subject != "" {
		e.SetSubject(spec.Subject)
	}
	if spec.CorrelationID != "" {
		e.SetExtension(ExtCorrelationID, spec.CorrelationID)
	}
	if spec.CausationID != "" {
		e.SetExtension(ExtCausationID, spec.CausationID)
	}
	b, ok := data.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(data); err != nil {
			return event.Event{}, fmt.Errorf("encode %s data: %w", spec.Type, err)
		}
	}
	if err := e.SetData(ContentTypeJSON, b); err != nil {
		return event.Event{}, fmt.Errorf("set %s data: %w", spec.Type, err)
	}
	if err := e.Validate(); err != nil {
		return event.Event{}, fmt.Errorf("build %s event: %w", spec.Type, err)
	}
	return e, nil
}

// Extension returns a string extension attribute of e, or "".
func Extension(e event.Event, name string) string {
	v, ok := e.Extensions()[name]
	if !ok {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// Alert states kept in the evaluator's state bucket.
const (
	AlertInactive = "inactive"
	AlertPending  = "pending"
	AlertFiring   = "firing"
	AlertResolved = "resolved"
)

// AlertRecord is the per-fingerprint record the evaluator keeps in
// BucketEvaluatorState under the fingerprint as key. Actuators read it to
// check that the violation behind a request is still firing. Times are event
// times (observation ce-time), never wall-clock times.
type AlertRecord struct {
	Fingerprint string `json:"fingerprint"`
	Subject     string `json:"subject"`
	Instance    string `json:"instance"`
	Rule        string `json:"rule"`
	Key         string `json:"key"`
	// State is one of the Alert* constants.
	State string `json:"state"`
	// Episode identifies the current (or last) pending/firing episode.
	Episode         string     `json:"episode,omitempty"`
	ActiveAt        *time.Time `json:"active_at,omitempty"`
	FiredAt         *time.Time `json:"fired_at,omitempty"`
	ResolvedAt      *time.Time `json:"resolved_at,omitempty"`
	KeepFiringSince *time.Time `json:"keep_firing_since,omitempty"`
	// LastEvalAt is the time of the newest observation applied; older
	// observations are ignored.
	LastEvalAt time.Time `json:"last_eval_at"`
	// LastEventID is the id of that observation.
	LastEventID string `json:"last_event_id,omitempty"`
	// Extra holds evaluator-private fields the actuator does not need.
	Extra json.RawMessage `json:"extra,omitempty"`
}
