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
	// Gates are the safety gates' answers, in the order they ran, up to
	// the one that stopped the request or through the ledger's claim. A
	// result decided before the gates ran (a request given up after its
	// last delivery) has none.
	Gates []GateDecision `json:"gates,omitempty"`
}

// Safety gates, in the order the actuator runs them.
const (
	GateCatalog      = "catalog"
	GateKillSwitch   = "kill_switch"
	GateMode         = "mode"
	GatePrecondition = "precondition"
	// GateBudget is the per-target cooldown and the per-subject budget.
	GateBudget   = "budget"
	GateApproval = "approval"
	// GateLedger is the idempotency ledger's claim: the request runs at
	// most once.
	GateLedger = "ledger"
)

// Decisions of a gate.
const (
	GatePassed  = "passed"
	GateRefused = "refused"
	// GateHeld: the approval gate holds the request for a person.
	GateHeld = "held"
)

// GateDecision is one safety gate's answer to an action request.
type GateDecision struct {
	// Gate is one of the Gate* names; Decision is GatePassed, GateRefused
	// or GateHeld.
	Gate     string `json:"gate"`
	Decision string `json:"decision"`
	Reason   string `json:"reason,omitempty"`
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

// Diagnosis modes.
const (
	DiagnosisDeterministic = "deterministic"
	DiagnosisLLM           = "llm"
)

// Certainties of a hypothesis, strongest first.
const (
	CertaintyCertain  = "certain"
	CertaintyLikely   = "likely"
	CertaintyPossible = "possible"
)

// HypothesisUnknown is the id of the one hypothesis a diagnosis holds when
// nothing fits.
const HypothesisUnknown = "unknown"

// Diagnosis is the data of an io.operator.diagnosis.v1 event: the
// explanation of one violation episode, with the evidence it rests on.
type Diagnosis struct {
	Subject     string `json:"subject"`
	Instance    string `json:"instance"`
	Rule        string `json:"rule"`
	Key         string `json:"key"`
	Episode     string `json:"episode"`
	Fingerprint string `json:"fingerprint"`
	ViolationID string `json:"violation_id,omitempty"`
	Mode        string `json:"mode"`
	// Model, tokens and cost are set when an LLM answered.
	Model        string  `json:"model,omitempty"`
	InputTokens  int64   `json:"input_tokens,omitempty"`
	OutputTokens int64   `json:"output_tokens,omitempty"`
	CostUSD      float64 `json:"cost_usd,omitempty"`
	// DurationMS is from receiving the violation to the answer.
	DurationMS float64 `json:"duration_ms"`
	Summary    string  `json:"summary"`
	Error      string  `json:"error,omitempty"`
	// Notes say what the reasoner corrected in its own answer.
	Notes    []string       `json:"notes,omitempty"`
	Evidence []EvidenceItem `json:"evidence"`
	// Hypotheses are ranked, most credible first; one "unknown" when
	// nothing fits.
	Hypotheses []Hypothesis `json:"hypotheses"`
	CreatedAt  time.Time    `json:"created_at"`
}

// Top returns the most credible hypothesis.
func (d Diagnosis) Top() Hypothesis {
	if len(d.Hypotheses) == 0 {
		return Hypothesis{ID: HypothesisUnknown}
	}
	return d.Hypotheses[0]
}

// EvidenceItem is one piece of evidence: what one source said, or why it
// could not be read.
type EvidenceItem struct {
	ID        string          `json:"id"`
	Source    string          `json:"source"`
	At        time.Time       `json:"at"`
	Data      json.RawMessage `json:"data,omitempty"`
	Truncated bool            `json:"truncated,omitempty"`
	Error     string          `json:"error,omitempty"`
}

// Hypothesis is one possible root cause and the evidence for and against it.
type Hypothesis struct {
	ID              string           `json:"id"`
	Cause           string           `json:"cause"`
	Certainty       string           `json:"certainty"`
	Supports        []string         `json:"supports"`
	Contradicts     []string         `json:"contradicts"`
	SuggestedAction *SuggestedAction `json:"suggested_action,omitempty"`
}

// SuggestedAction is a catalogued action a hypothesis suggests; a person or
// a rule must still request it.
type SuggestedAction struct {
	Action string         `json:"action"`
	Params map[string]any `json:"params,omitempty"`
}
