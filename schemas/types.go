package schemas

import (
	"encoding/json"
	"time"
)

// CloudEvents type names of every event on the bus.
const (
	TypeObservation     = "io.operator.observation.v1"
	TypeViolation       = "io.operator.violation.v1"
	TypeActionRequested = "io.operator.action.requested.v1"
	TypeActionCompleted = "io.operator.action.completed.v1"
	TypeActionVerified  = "io.operator.action.verified.v1"
	TypeDiagnosis       = "io.operator.diagnosis.v1"
)

// Extension attribute names carried on every event downstream of an
// observation, so a chain observation → violation → action → result can be
// followed.
const (
	// ExtCorrelationID is the violation episode an event belongs to.
	ExtCorrelationID = "correlationid"
	// ExtCausationID is the id of the event that caused this one.
	ExtCausationID = "causationid"
)

// ContentTypeJSON is the data content type of every event Operator emits.
const ContentTypeJSON = "application/json"

// Observation is the data of an io.operator.observation.v1 event: what an
// observer measured about one subject instance at one time. Observers publish
// numbers and facts, never verdicts.
type Observation struct {
	Subject    string       `json:"subject"`
	Instance   string       `json:"instance"`
	ObservedAt time.Time    `json:"observed_at"`
	Observer   ObserverInfo `json:"observer"`
	// State is subject-specific and validated against
	// <subject>.state.v1.json when that schema exists.
	State json.RawMessage `json:"state"`
}

// ObserverInfo describes how an observation was made.
type ObserverInfo struct {
	// DurationMS is how long the observation took, in milliseconds.
	DurationMS float64 `json:"duration_ms"`
	// IntervalMS is the observer's poll interval in milliseconds; evaluators
	// derive their staleness threshold from it. Zero when unknown.
	IntervalMS int64 `json:"interval_ms,omitempty"`
	// Errors lists the sources that could not be read. A partial observation
	// carries them instead of being dropped.
	Errors []ObserverError `json:"errors"`
}

// ObserverError is one source an observer failed to read.
type ObserverError struct {
	Source  string `json:"source"`
	Message string `json:"message"`
}

// Severity of a rule.
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// Alert states as they appear in violation events.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Violation is the data of an io.operator.violation.v1 event, published when
// a rule's alert for one fingerprint starts firing or resolves.
type Violation struct {
	Subject  string `json:"subject"`
	Instance string `json:"instance"`
	Rule     string `json:"rule"`
	Key      string `json:"key"`
	// Fingerprint is subject/instance/rule/key.
	Fingerprint string `json:"fingerprint"`
	// Status is "firing" or "resolved".
	Status      string            `json:"status"`
	Severity    string            `json:"severity"`
	Summary     string            `json:"summary"`
	Description string            `json:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	// Evidence is what the expression judged: the `item` for per-item rules,
	// or the fields of the observation the expression read.
	Evidence json.RawMessage `json:"evidence,omitempty"`
	// Episode identifies one firing episode; it is the correlationid of
	// every event downstream.
	Episode    string     `json:"episode"`
	ActiveAt   time.Time  `json:"active_at"`
	FiredAt    *time.Time `json:"fired_at,omitempty"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
	// Error is set for the built-in rule_error rule: the runtime error of the
	// rule named in Labels["rule"].
	Error string `json:"error,omitempty"`
}

// Outcome of an action request.
const (
	OutcomeSucceeded        = "succeeded"
	OutcomeFailed           = "failed"
	OutcomeRejected         = "rejected"
	OutcomeSkipped          = "skipped"
	OutcomeAwaitingApproval = "awaiting_approval"
)

// Actuator modes.
const (
	ModeObserve = "observe"
	ModeExecute = "execute"
)

// ActionRequest is the data of an io.operator.action.requested.v1 event.
type ActionRequest struct {
	// ID is the request id: the CloudEvent id, the idempotency ledger key and
	// the Idempotency-Key sent to the subject's API.
	ID       string `json:"id"`
	Subject  string `json:"subject"`
	Instance string `json:"instance"`
	Action   string `json:"action"`
	// Params are validated against the action catalog's JSON Schema.
	Params      map[string]any `json:"params"`
	Reason      string         `json:"reason,omitempty"`
	RequestedBy string         `json:"requested_by"`
	RequestedAt time.Time      `json:"requested_at"`
	// Violation is the violation that caused the request, if any; actuators
	// refuse to act when it is no longer firing.
	Violation *ViolationRef `json:"violation,omitempty"`
}

// ViolationRef points at the alert that caused an action request.
type ViolationRef struct {
	Fingerprint string `json:"fingerprint"`
	Episode     string `json:"episode"`
	Rule        string `json:"rule"`
	Key         string `json:"key"`
}

// ActionResult is the data of an io.operator.action.completed.v1 event.
type ActionResult struct {
	RequestID string `json:"request_id"`
	Subject   string `json:"subject"`
	Instance  string `json:"instance"`
	Action    string `json:"action"`
	// Outcome is one of the Outcome* constants; Reason says why.
	Outcome    string         `json:"outcome"`
	Reason     string         `json:"reason"`
	Mode       string         `json:"mode"`
	Attempts   int            `json:"attempts"`
	Params     map[string]any `json:"params,omitempty"`
	StartedAt  time.Time      `json:"started_at"`
	FinishedAt time.Time      `json:"finished_at"`
	// Output is what the subject's API answered, when useful.
	Output json.RawMessage `json:"output,omitempty"`
}

// ActionVerification is the data of an io.operator.action.verified.v1 event:
// whether the action's verify expression held on the subject's observations
// within the catalog's verify_within.
type ActionVerification struct {
	RequestID string `json:"request_id"`
	Subject   string `json:"subject"`
	Instance  string `json:"instance"`
	Action    string `json:"action"`
	Verified  bool   `json:"verified"`
	Expr      string `json:"expr"`
	Reason    string `json:"reason"`
	// Observations is how many observations were evaluated.
	Observations int             `json:"observations"`
	Evidence     json.RawMessage `json:"evidence,omitempty"`
	CheckedAt    time.Time       `json:"checked_at"`
}

// Diagnosis is the data of an io.operator.diagnosis.v1 event: an explanation
// of a violation episode by a person or a diagnosis tool.
type Diagnosis struct {
	Subject   string    `json:"subject"`
	Instance  string    `json:"instance"`
	Episode   string    `json:"episode"`
	Summary   string    `json:"summary"`
	Findings  []Finding `json:"findings"`
	Suggested []string  `json:"suggested_actions,omitempty"`
	Author    string    `json:"author"`
	CreatedAt time.Time `json:"created_at"`
}

// Finding is one fact in a diagnosis.
type Finding struct {
	Title    string          `json:"title"`
	Detail   string          `json:"detail,omitempty"`
	Evidence json.RawMessage `json:"evidence,omitempty"`
}
