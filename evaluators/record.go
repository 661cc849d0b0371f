package evaluators

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/operator-dev/operator/schemas"
)

// Fingerprint identifies one alert: subject/instance/rule/key. It is the
// state store key of the alert's schemas.AlertRecord, the CloudEvents
// subject of its violations and the Violation.Fingerprint.
func Fingerprint(subject, instance, rule, key string) string {
	return subject + "/" + instance + "/" + rule + "/" + key
}

// instanceKeyPrefix starts the state store key of an instance record. No
// fingerprint starts with a dot: a subject name is a NATS token.
const instanceKeyPrefix = ".instances/"

func instanceKey(subject, instance string) string {
	return instanceKeyPrefix + subject + "/" + instance
}

// alertExtra is the evaluator-private part of an AlertRecord (its Extra).
type alertExtra struct {
	// What the firing violation said, repeated by the resolved one.
	Severity    string            `json:"severity,omitempty"`
	Summary     string            `json:"summary,omitempty"`
	Description string            `json:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Evidence    json.RawMessage   `json:"evidence,omitempty"`
	Error       string            `json:"error,omitempty"`
	// Outbox holds the events of the last transition until they are
	// published: it is written in the same compare-and-swap as the
	// transition, so a crash before the publish loses nothing; whoever
	// reads the record next publishes them (same ids, so JetStream drops
	// a repeat) and clears it.
	Outbox []publication `json:"outbox,omitempty"`
}

// publication is one event waiting to be published.
type publication struct {
	Subject string `json:"subject"`
	// Kind is "violation" or "action", Status the violation status; both
	// only label metrics and logs.
	Kind   string `json:"kind"`
	Status string `json:"status,omitempty"`
	// Event is the CloudEvent in structured JSON.
	Event json.RawMessage `json:"event"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func timeOf(p *time.Time) time.Time {
	if p == nil {
		return time.Time{}
	}
	return p.UTC()
}

// decodeAlert reads an AlertRecord.
func decodeAlert(b []byte) (Alert, alertExtra, error) {
	var rec schemas.AlertRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return Alert{}, alertExtra{}, fmt.Errorf("decode alert record: %w", err)
	}
	st, err := ParseState(rec.State)
	if err != nil {
		return Alert{}, alertExtra{}, fmt.Errorf("decode alert record %s: %w", rec.Fingerprint, err)
	}
	a := Alert{
		State:           st,
		Episode:         rec.Episode,
		ActiveAt:        timeOf(rec.ActiveAt),
		FiredAt:         timeOf(rec.FiredAt),
		ResolvedAt:      timeOf(rec.ResolvedAt),
		KeepFiringSince: timeOf(rec.KeepFiringSince),
		LastEvalAt:      rec.LastEvalAt.UTC(),
		LastEventID:     rec.LastEventID,
	}
	var x alertExtra
	if len(rec.Extra) > 0 {
		if err := json.Unmarshal(rec.Extra, &x); err != nil {
			return Alert{}, alertExtra{}, fmt.Errorf("decode alert record %s extra: %w", rec.Fingerprint, err)
		}
	}
	return a, x, nil
}

// encodeAlert writes an AlertRecord.
func encodeAlert(id fpID, a Alert, x alertExtra) ([]byte, error) {
	extra, err := json.Marshal(x)
	if err != nil {
		return nil, fmt.Errorf("encode alert extra: %w", err)
	}
	if string(extra) == "{}" {
		extra = nil
	}
	rec := schemas.AlertRecord{
		Fingerprint:     id.fingerprint(),
		Subject:         id.subject,
		Instance:        id.instance,
		Rule:            id.rule,
		Key:             id.key,
		State:           a.State.String(),
		Episode:         a.Episode,
		ActiveAt:        timePtr(a.ActiveAt),
		FiredAt:         timePtr(a.FiredAt),
		ResolvedAt:      timePtr(a.ResolvedAt),
		KeepFiringSince: timePtr(a.KeepFiringSince),
		LastEvalAt:      a.LastEvalAt.UTC(),
		LastEventID:     a.LastEventID,
		Extra:           extra,
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode alert record: %w", err)
	}
	return b, nil
}

// fpID names one fingerprint by its parts.
type fpID struct {
	subject, instance, rule, key string
}

func (f fpID) fingerprint() string { return Fingerprint(f.subject, f.instance, f.rule, f.key) }

// instanceRecord is the per-instance record (key instanceKey). Every
// observation advances it with a compare-and-swap before any alert is
// touched, which orders observations of one instance and makes the
// staleness clock shared by all workers.
type instanceRecord struct {
	Subject  string `json:"subject"`
	Instance string `json:"instance"`
	// LastObservationAt/ID: the newest observation admitted (event time).
	LastObservationAt time.Time `json:"last_observation_at"`
	LastObservationID string    `json:"last_observation_id"`
	// PrevObservationID is the observation before it, the cause of an
	// observer_stale episode detected from the gap between the two.
	PrevObservationID string `json:"prev_observation_id,omitempty"`
	// GapAt is when the instance went stale in the gap before
	// LastObservation (LastObservation−1 + stale_after), zero if none; a
	// redelivery of LastObservation replays the gap from it.
	GapAt time.Time `json:"gap_at,omitzero"`
	// LastReceivedAt is when a worker received LastObservation: wall time
	// in `operator evaluate`, event time in replay and tests. Staleness is
	// judged on it.
	LastReceivedAt time.Time `json:"last_received_at"`
	// IntervalMS is the observer's poll interval, from the observation.
	IntervalMS int64 `json:"interval_ms,omitempty"`
	// Active lists, per rule, the keys whose alert may be pending or
	// firing, each with the event time it was last added at. It lets an
	// item that vanished from the observation resolve through the normal
	// false path. A key is added before its alert is written and removed
	// only when its alert is inactive or resolved at or after that time.
	Active map[string]map[string]time.Time `json:"active,omitempty"`
}

func (r *instanceRecord) tracked(rule, key string) (time.Time, bool) {
	t, ok := r.Active[rule][key]
	return t, ok
}

// track adds key at t (keeping a later time) and reports whether it
// changed the record.
func (r *instanceRecord) track(rule, key string, t time.Time) bool {
	if old, ok := r.Active[rule][key]; ok && !old.Before(t) {
		return false
	}
	if r.Active == nil {
		r.Active = map[string]map[string]time.Time{}
	}
	if r.Active[rule] == nil {
		r.Active[rule] = map[string]time.Time{}
	}
	r.Active[rule][key] = t.UTC()
	return true
}

func (r *instanceRecord) untrack(rule, key string) {
	delete(r.Active[rule], key)
	if len(r.Active[rule]) == 0 {
		delete(r.Active, rule)
	}
}

func (r instanceRecord) clone() instanceRecord {
	c := r
	c.Active = make(map[string]map[string]time.Time, len(r.Active))
	for rule, keys := range r.Active {
		m := make(map[string]time.Time, len(keys))
		for k, t := range keys {
			m[k] = t
		}
		c.Active[rule] = m
	}
	return c
}

// parseInstanceKey splits an instance record key.
func parseInstanceKey(k string) (subject, instance string, ok bool) {
	rest, ok := strings.CutPrefix(k, instanceKeyPrefix)
	if !ok {
		return "", "", false
	}
	return strings.Cut(rest, "/")
}
