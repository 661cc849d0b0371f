package statuspage

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/schemas"
)

// Status is everything the page shows at one moment (GET /api/v1/status).
// Updates from Cursor on keep it current.
type Status struct {
	// Cursor is where the streams stood when the status was read.
	Cursor      string    `json:"cursor"`
	GeneratedAt time.Time `json:"generated_at"`
	// HistoryMS is how far back Episodes reach, in milliseconds, and
	// MaxEpisodes how many they are at most.
	HistoryMS   int64 `json:"history_ms"`
	MaxEpisodes int   `json:"max_episodes"`
	// TokenRequired says whether controls need the bearer token.
	TokenRequired bool    `json:"token_required"`
	Control       Control `json:"control"`
	// Alerts are the pending and firing alerts.
	Alerts    []Alert    `json:"alerts"`
	Instances []Instance `json:"instances"`
	// Episodes are the newest episodes, newest first.
	Episodes []Episode `json:"episodes"`
}

// Control is the actuators' controls: kill switches, approvals awaiting a
// decision and each subject's budget.
type Control struct {
	KillSwitches []actuators.KillSwitch `json:"kill_switches"`
	Approvals    []Approval             `json:"approvals"`
	Budgets      []Budget               `json:"budgets"`
}

// An Approval is an action request awaiting a person's decision.
type Approval struct {
	RequestID   string         `json:"request_id"`
	State       string         `json:"state"`
	Subject     string         `json:"subject"`
	Instance    string         `json:"instance"`
	Action      string         `json:"action"`
	Params      map[string]any `json:"params,omitempty"`
	Reason      string         `json:"reason,omitempty"`
	RequestedBy string         `json:"requested_by"`
	Risk        string         `json:"risk"`
	Episode     string         `json:"episode,omitempty"`
	RequestedAt time.Time      `json:"requested_at"`
	ExpiresAt   time.Time      `json:"expires_at"`
}

// A Budget is one subject's action window.
type Budget struct {
	Subject    string `json:"subject"`
	Used       int    `json:"used"`
	MaxActions int    `json:"max_actions"`
	PerMS      int64  `json:"per_ms"`
	// Cooling lists targets still in cooldown.
	Cooling []Cooldown `json:"cooling,omitempty"`
}

// A Cooldown is one action on one target that may not run again yet.
type Cooldown struct {
	Instance string    `json:"instance"`
	Action   string    `json:"action"`
	Target   string    `json:"target"`
	Until    time.Time `json:"until"`
}

// An Alert is one fingerprint's state as the evaluator keeps it. Times are
// event times (the observations' clock).
type Alert struct {
	Fingerprint string `json:"fingerprint"`
	Subject     string `json:"subject"`
	Instance    string `json:"instance"`
	Rule        string `json:"rule"`
	Key         string `json:"key"`
	// State is pending, firing, resolved or inactive (a forgotten alert).
	State    string `json:"state"`
	Severity string `json:"severity,omitempty"`
	// Summary is what the firing violation said; empty while pending.
	Summary         string     `json:"summary,omitempty"`
	Episode         string     `json:"episode,omitempty"`
	ActiveAt        *time.Time `json:"active_at,omitempty"`
	FiredAt         *time.Time `json:"fired_at,omitempty"`
	ResolvedAt      *time.Time `json:"resolved_at,omitempty"`
	KeepFiringSince *time.Time `json:"keep_firing_since,omitempty"`
	// ForMS is the rule's grace period and FiresAt, for a pending alert,
	// when it fires if its condition holds until then; both unset when the
	// rule is not among the page's rule sets.
	ForMS   *int64     `json:"for_ms,omitempty"`
	FiresAt *time.Time `json:"fires_at,omitempty"`
	// ResolvesAt is, for a firing alert whose condition turned false, when
	// it resolves unless the condition holds again.
	ResolvesAt *time.Time `json:"resolves_at,omitempty"`
	LastEvalAt time.Time  `json:"last_eval_at"`
}

// An Instance is one watched subject instance: its observer's health and
// the subject's tables of its latest observation.
type Instance struct {
	Subject  string `json:"subject"`
	Instance string `json:"instance"`
	// ObservedAt is the latest observation's time (the observer's clock).
	ObservedAt time.Time `json:"observed_at"`
	IntervalMS int64     `json:"interval_ms,omitempty"`
	DurationMS float64   `json:"duration_ms"`
	// StaleAfterMS is how long observations may stop before the
	// evaluator fires observer_stale; Stale says whether they had, when
	// this was read.
	StaleAfterMS int64                   `json:"stale_after_ms"`
	Stale        bool                    `json:"stale"`
	Errors       []schemas.ObserverError `json:"errors"`
	Tables       []Table                 `json:"tables"`
}

// An Episode is one violation episode (or one action requested by hand)
// and what followed it, as the streams tell it.
type Episode struct {
	ID          string `json:"id"`
	Subject     string `json:"subject,omitempty"`
	Instance    string `json:"instance,omitempty"`
	Rule        string `json:"rule,omitempty"`
	Key         string `json:"key,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Severity    string `json:"severity,omitempty"`
	Summary     string `json:"summary,omitempty"`
	// State is firing or resolved; empty when no violation of the
	// episode was read (an action requested by hand).
	State      string     `json:"state,omitempty"`
	ActiveAt   *time.Time `json:"active_at,omitempty"`
	FiredAt    *time.Time `json:"fired_at,omitempty"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
	// LastAt is the time of the newest step.
	LastAt    time.Time  `json:"last_at"`
	Diagnosis *Diagnosis `json:"diagnosis,omitempty"`
	// Steps are the causal timeline, oldest first.
	Steps []Step `json:"steps"`
}

// A Diagnosis is the explanation of an episode: its most credible
// hypotheses and the evidence they cite.
type Diagnosis struct {
	Mode       string       `json:"mode"`
	Model      string       `json:"model,omitempty"`
	Summary    string       `json:"summary,omitempty"`
	Error      string       `json:"error,omitempty"`
	CreatedAt  time.Time    `json:"created_at"`
	Hypotheses []Hypothesis `json:"hypotheses"`
	Evidence   []Evidence   `json:"evidence"`
}

// A Hypothesis is one possible cause with the evidence ids for and against.
type Hypothesis struct {
	ID              string                   `json:"id"`
	Cause           string                   `json:"cause"`
	Certainty       string                   `json:"certainty"`
	Supports        []string                 `json:"supports"`
	Contradicts     []string                 `json:"contradicts"`
	SuggestedAction *schemas.SuggestedAction `json:"suggested_action,omitempty"`
}

// An Evidence item is what one source said, or why it could not be read.
// Data is given by the episode endpoint only.
type Evidence struct {
	ID        string          `json:"id"`
	Source    string          `json:"source"`
	At        time.Time       `json:"at"`
	Truncated bool            `json:"truncated,omitempty"`
	Error     string          `json:"error,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
}

// Step kinds, in the order they happen in an episode.
const (
	StepObserved         = "observed"
	StepFiring           = "firing"
	StepDiagnosis        = "diagnosis"
	StepRequested        = "requested"
	StepGate             = "gate"
	StepAwaitingApproval = "awaiting_approval"
	StepResubmitted      = "resubmitted"
	StepCompleted        = "completed"
	StepVerified         = "verified"
	StepResolved         = "resolved"
)

// stepRanks order steps of equal time.
var stepRanks = map[string]int{
	StepObserved: 0, StepFiring: 1, StepDiagnosis: 2, StepRequested: 3, StepGate: 4, StepAwaitingApproval: 5,
	StepResubmitted: 6, StepCompleted: 7, StepVerified: 8, StepResolved: 9,
}

// A Step is one link of an episode's causal chain.
type Step struct {
	// ID is unique and stable: the stream's letter, the event's sequence
	// and the step's place among the event's steps.
	ID   string    `json:"id"`
	Kind string    `json:"kind"`
	At   time.Time `json:"at"`
	// Rank orders steps of equal time.
	Rank  int    `json:"rank"`
	Title string `json:"title"`
	// Detail is the reason, the summary or the cause.
	Detail string `json:"detail,omitempty"`
	// Status marks the step: ok, warn, bad or info.
	Status    string `json:"status"`
	RequestID string `json:"request_id,omitempty"`
	Gate      string `json:"gate,omitempty"`
	Decision  string `json:"decision,omitempty"`
	EventID   string `json:"event_id"`
	// CausedBy is the id of the event that caused this one.
	CausedBy string `json:"caused_by,omitempty"`
	Stream   string `json:"stream"`
	Sequence uint64 `json:"sequence"`
	// Data is what the step judged or asked: a violation's evidence, a
	// request's params.
	Data json.RawMessage `json:"data,omitempty"`
}

// merge folds an update of the same episode into e: fields the update
// knows fill or replace e's, a resolution is never undone, and steps are
// added once.
func (e *Episode) merge(u *Episode) {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&e.Subject, u.Subject)
	set(&e.Instance, u.Instance)
	set(&e.Rule, u.Rule)
	set(&e.Key, u.Key)
	set(&e.Fingerprint, u.Fingerprint)
	set(&e.Severity, u.Severity)
	set(&e.Summary, u.Summary)
	if u.State == schemas.StatusResolved || e.State == "" {
		set(&e.State, u.State)
	}
	for _, p := range []struct{ dst, src **time.Time }{{&e.ActiveAt, &u.ActiveAt}, {&e.FiredAt, &u.FiredAt}, {&e.ResolvedAt, &u.ResolvedAt}} {
		if *p.src != nil {
			*p.dst = *p.src
		}
	}
	if u.Diagnosis != nil {
		e.Diagnosis = u.Diagnosis
	}
	for _, s := range u.Steps {
		if !slices.ContainsFunc(e.Steps, func(x Step) bool { return x.ID == s.ID }) {
			e.Steps = append(e.Steps, s)
		}
		if s.At.After(e.LastAt) {
			e.LastAt = s.At
		}
	}
	slices.SortStableFunc(e.Steps, compareSteps)
}

func compareSteps(a, b Step) int {
	if c := a.At.Compare(b.At); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Rank, b.Rank); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// A change is what one message adds to the page: at most one of its
// fields is set.
type change struct {
	alert    *Alert
	episode  *Episode
	control  *Control
	instance *Instance
}

// kind names the change as an update's event.
func (c change) kind() string {
	switch {
	case c.alert != nil:
		return "alert"
	case c.episode != nil:
		return "episode"
	case c.control != nil:
		return "control"
	case c.instance != nil:
		return "instance"
	}
	return ""
}

func (c change) data() any {
	switch {
	case c.alert != nil:
		return c.alert
	case c.episode != nil:
		return c.episode
	case c.control != nil:
		return c.control
	case c.instance != nil:
		return c.instance
	}
	return nil
}

// An Update is one change to the page, as the event stream and the updates
// endpoint send it.
type Update struct {
	// Event is alert, episode, control or instance.
	Event string `json:"event"`
	// ID is the cursor just after this update.
	ID string `json:"id"`
	// Stream and Sequence say which message it came from: the letter of
	// its stream in the cursor and its sequence (revision) there. A client
	// that mixes the event stream and polling applies an update only when
	// Sequence is past what it has from that stream.
	Stream   string `json:"stream"`
	Sequence uint64 `json:"sequence"`
	Data     any    `json:"data"`
}

// model is the page's state, built by applying changes in order.
type model struct {
	alerts    map[string]Alert
	control   Control
	instances map[string]Instance
	episodes  map[string]*Episode
}

func newModel() *model {
	return &model{alerts: map[string]Alert{}, instances: map[string]Instance{}, episodes: map[string]*Episode{},
		control: Control{KillSwitches: []actuators.KillSwitch{}, Approvals: []Approval{}, Budgets: []Budget{}}}
}

func (m *model) apply(c change) {
	switch {
	case c.alert != nil:
		if c.alert.State == schemas.AlertPending || c.alert.State == schemas.AlertFiring {
			m.alerts[c.alert.Fingerprint] = *c.alert
		} else {
			delete(m.alerts, c.alert.Fingerprint)
		}
	case c.episode != nil:
		e := m.episodes[c.episode.ID]
		if e == nil {
			e = &Episode{ID: c.episode.ID, Steps: []Step{}}
			m.episodes[e.ID] = e
		}
		e.merge(c.episode)
	case c.control != nil:
		m.control = *c.control
	case c.instance != nil:
		m.instances[c.instance.Subject+"/"+c.instance.Instance] = *c.instance
	}
}

// status renders the model: alerts firing first, then by severity and
// name; instances by name; episodes newest first, at most maxEpisodes.
func (m *model) status(maxEpisodes int) Status {
	st := Status{Control: m.control, Alerts: []Alert{}, Instances: []Instance{}, Episodes: []Episode{}}
	for _, a := range m.alerts {
		st.Alerts = append(st.Alerts, a)
	}
	slices.SortFunc(st.Alerts, func(a, b Alert) int {
		if a.State != b.State {
			return cmp.Compare(stateRank(a.State), stateRank(b.State))
		}
		if c := cmp.Compare(severityRank(a.Severity), severityRank(b.Severity)); c != 0 {
			return c
		}
		return strings.Compare(a.Fingerprint, b.Fingerprint)
	})
	for _, i := range m.instances {
		st.Instances = append(st.Instances, i)
	}
	slices.SortFunc(st.Instances, func(a, b Instance) int {
		return strings.Compare(a.Subject+"/"+a.Instance, b.Subject+"/"+b.Instance)
	})
	for _, e := range m.episodes {
		st.Episodes = append(st.Episodes, *e)
	}
	slices.SortFunc(st.Episodes, func(a, b Episode) int {
		if c := b.LastAt.Compare(a.LastAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if maxEpisodes > 0 && len(st.Episodes) > maxEpisodes {
		st.Episodes = st.Episodes[:maxEpisodes]
	}
	return st
}

func stateRank(s string) int {
	if s == schemas.AlertFiring {
		return 0
	}
	return 1
}

func severityRank(s string) int {
	switch s {
	case schemas.SeverityCritical:
		return 0
	case schemas.SeverityWarning:
		return 1
	case schemas.SeverityInfo:
		return 2
	}
	return 3
}
