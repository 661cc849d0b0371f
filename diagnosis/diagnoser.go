package diagnosis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/schemas"
)

// Defaults for Config.
const (
	DefaultWorkerID = "diagnosis"
	// DefaultMaxEvidenceBytes caps the JSON of one evidence item.
	DefaultMaxEvidenceBytes = 16 << 10
	// DefaultTimeout bounds one diagnosis: gathering, then reasoning. A
	// reasoner that runs out of it leaves the deterministic answer.
	DefaultTimeout = 60 * time.Second
)

// Config configures a Diagnoser. The zero value is valid.
type Config struct {
	// WorkerID names this diagnoser in event sources.
	WorkerID string `yaml:"worker_id"`
	// SubjectPrefix is the first token of NATS subjects.
	SubjectPrefix string `yaml:"subject_prefix"`
	// MaxEvidenceBytes caps each evidence item's data.
	MaxEvidenceBytes int `yaml:"max_evidence_bytes"`
	// Timeout bounds one diagnosis.
	Timeout    time.Duration         `yaml:"timeout"`
	Logger     *slog.Logger          `yaml:"-"`
	Registerer prometheus.Registerer `yaml:"-"`
}

func (c Config) withDefaults() Config {
	if c.WorkerID == "" {
		c.WorkerID = DefaultWorkerID
	}
	if c.MaxEvidenceBytes == 0 {
		c.MaxEvidenceBytes = DefaultMaxEvidenceBytes
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.MaxEvidenceBytes < 0 || c.Timeout < 0 {
		errs = append(errs, errors.New("max evidence bytes and timeout must not be negative"))
	}
	if err := (schemas.Subjects{Prefix: c.SubjectPrefix}).Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Subject is what one subject plugs into the diagnoser.
type Subject struct {
	// Playbook is the subject's playbook; nil means the default one (the
	// instance's observations, alerts and actions, and no hypothesis).
	Playbook *Playbook
	// Catalog is the subject's action catalog, for suggestions.
	Catalog *actuators.Catalog
	// API reads the subject's API for http sources; nil: none reachable.
	API Getter
	// Prometheus runs prometheus sources; nil: none configured.
	Prometheus Querier
}

// Reader is what the diagnoser reads the streams with: observations by
// subject and the action history. internal/bus satisfies it.
type Reader interface {
	EventReader
	actuators.EventReader
}

// Deps are a Diagnoser's connections to the outside world.
type Deps struct {
	Events    Reader
	Alerts    AlertStore
	Publisher schemas.Publisher
	// Subjects by name; a violation of another subject gets the default
	// playbook.
	Subjects map[string]Subject
	// Reasoner replaces the deterministic reasoning when set; when it
	// fails the deterministic answer is published, with the error.
	Reasoner Reasoner
}

// A Diagnoser answers violations with diagnoses.
type Diagnoser struct {
	cfg      Config
	deps     Deps
	subjects schemas.Subjects
	log      *slog.Logger
	metrics  *metrics
}

// New returns a Diagnoser.
func New(cfg Config, deps Deps) (*Diagnoser, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Events == nil || deps.Alerts == nil || deps.Publisher == nil {
		return nil, errors.New("diagnosis: events, alerts and publisher are required")
	}
	cfg = cfg.withDefaults()
	return &Diagnoser{cfg: cfg, deps: deps, subjects: schemas.Subjects{Prefix: cfg.SubjectPrefix},
		log: cfg.Logger, metrics: newMetrics(cfg.Registerer)}, nil
}

// defaultPlaybook gathers what any subject has.
func defaultPlaybook(subject string) *Playbook {
	return &Playbook{File: "(default)", Subject: subject, Evidence: []*Source{
		{ID: "observations", Kind: SourceObservations, Last: 3, Within: DefaultWithin, Timeout: DefaultSourceTimeout},
		{ID: "alerts", Kind: SourceAlerts, Timeout: DefaultSourceTimeout},
		{ID: "actions", Kind: SourceActions, Within: DefaultActionsFor, Timeout: DefaultSourceTimeout},
	}}
}

// Wants reports whether e starts an episode to diagnose: a firing
// violation (the evaluator publishes one per episode).
func Wants(e event.Event) bool {
	if e.Type() != schemas.TypeViolation {
		return false
	}
	var v struct {
		Status string `json:"status"`
	}
	return json.Unmarshal(e.Data(), &v) == nil && v.Status == schemas.StatusFiring
}

// Diagnose gathers the evidence of the violation in e and reasons over it.
// It does not publish. An error means the event is not a violation it can
// read (a schemas.ErrPermanent); every other problem is part of the
// diagnosis.
func (d *Diagnoser) Diagnose(ctx context.Context, e event.Event) (schemas.Diagnosis, error) {
	start := time.Now()
	var vio schemas.Violation
	if e.Type() != schemas.TypeViolation {
		return schemas.Diagnosis{}, schemas.Permanent(fmt.Errorf("event %s is a %s, not a violation", e.ID(), e.Type()))
	}
	if err := json.Unmarshal(e.Data(), &vio); err != nil {
		return schemas.Diagnosis{}, schemas.Permanent(fmt.Errorf("violation %s: %w", e.ID(), err))
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	sub := d.deps.Subjects[vio.Subject]
	pb := sub.Playbook
	if pb == nil {
		pb = defaultPlaybook(vio.Subject)
	}
	g := &gatherer{subjects: d.subjects, events: d.deps.Events, actions: d.deps.Events, alerts: d.deps.Alerts,
		api: sub.API, prom: sub.Prometheus, maxBytes: d.cfg.MaxEvidenceBytes}
	ev := g.gather(ctx, pb, violationVar(vio), vio)
	for _, item := range ev.items {
		if item.Error != "" {
			d.metrics.evidenceFailures.WithLabelValues(vio.Subject, item.ID).Inc()
		}
	}
	in := &Input{Violation: vio, Evidence: ev.items, Playbook: pb, Catalog: sub.Catalog,
		Tools: &tools{g: g, pb: pb, vio: vio}}
	out, _ := Deterministic{}.Reason(ctx, in)
	in.Deterministic = out.Hypotheses
	var reasonErr error
	if d.deps.Reasoner != nil {
		o, err := d.deps.Reasoner.Reason(ctx, in)
		if err != nil {
			reasonErr = err
			d.log.Warn("reasoner failed; publishing the deterministic diagnosis", "subject", vio.Subject,
				"instance", vio.Instance, "rule", vio.Rule, "episode", vio.Episode, "error", err)
			// Tokens spent on a failed answer are still spent, and the
			// evidence its tools read is still real.
			out.Model, out.InputTokens, out.OutputTokens, out.CostUSD = o.Model, o.InputTokens, o.OutputTokens, o.CostUSD
			out.Evidence, out.Notes = o.Evidence, append(out.Notes, o.Notes...)
		} else {
			out = o
		}
	}
	diag := schemas.Diagnosis{
		Subject: vio.Subject, Instance: vio.Instance, Rule: vio.Rule, Key: vio.Key, Episode: vio.Episode,
		Fingerprint: vio.Fingerprint, ViolationID: e.ID(), Mode: out.Mode,
		Model: out.Model, InputTokens: out.InputTokens, OutputTokens: out.OutputTokens, CostUSD: out.CostUSD,
		Evidence: append(ev.items, out.Evidence...), Hypotheses: out.Hypotheses, Notes: out.Notes, CreatedAt: time.Now().UTC(),
	}
	if diag.Mode == "" {
		diag.Mode = schemas.DiagnosisDeterministic
	}
	if reasonErr != nil {
		diag.Error = "reasoner: " + reasonErr.Error()
	}
	if pb.File == "(default)" {
		diag.Error = strings.TrimPrefix(diag.Error+"; no playbook for "+vio.Subject, "; ")
	}
	if len(diag.Hypotheses) == 0 {
		diag.Hypotheses = []schemas.Hypothesis{{ID: schemas.HypothesisUnknown, Certainty: schemas.CertaintyPossible,
			Cause:    fmt.Sprintf("unknown: no known cause of %s fits the evidence", vio.Rule),
			Supports: []string{}, Contradicts: []string{}}}
	}
	diag.Summary = diag.Hypotheses[0].Cause
	diag.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	return diag, nil
}

// Handle diagnoses one delivered event and publishes the diagnosis; other
// events are acknowledged untouched. The diagnosis event's id derives from
// the episode and the mode, so a redelivery stores nothing twice.
func (d *Diagnoser) Handle(ctx context.Context, e event.Event) error {
	if !Wants(e) {
		return nil
	}
	diag, err := d.Diagnose(ctx, e)
	if err != nil {
		return err
	}
	subj, err := d.subjects.Diagnosis(diag.Subject, diag.Instance)
	if err != nil {
		return schemas.Permanent(err)
	}
	out, err := schemas.NewEvent(schemas.EventSpec{
		Type: schemas.TypeDiagnosis, Source: "/diagnosis/" + d.cfg.WorkerID,
		Subject: diag.Subject + "/" + diag.Instance + "/" + diag.Rule + "/" + diag.Key,
		ID:      schemas.DeriveID(diag.Episode, "diagnosis", diag.Mode), Time: diag.CreatedAt,
		CorrelationID: diag.Episode, CausationID: e.ID(),
	}, diag)
	if err != nil {
		return schemas.Permanent(err)
	}
	if err := d.deps.Publisher.Publish(ctx, subj, out); err != nil {
		return fmt.Errorf("publish diagnosis of %s: %w", diag.Episode, err)
	}
	top := diag.Top()
	d.metrics.diagnoses.WithLabelValues(diag.Subject, diag.Mode, top.ID).Inc()
	d.metrics.duration.WithLabelValues(diag.Subject, diag.Mode).Observe(diag.DurationMS / 1000)
	d.log.Info("diagnosed", "subject", diag.Subject, "instance", diag.Instance, "rule", diag.Rule, "key", diag.Key,
		"episode", diag.Episode, "hypothesis", top.ID, "certainty", top.Certainty, "mode", diag.Mode,
		"duration_ms", diag.DurationMS, "event_id", out.ID())
	return nil
}

// Violations delivers violation events to a handler until ctx is done, then
// returns after the calls in flight have finished. A handler error wrapping
// schemas.ErrPermanent is final; others ask for redelivery.
type Violations interface {
	Consume(ctx context.Context, handle func(ctx context.Context, e event.Event) error) error
}

// Run feeds every event of src to Handle until ctx is done.
func (d *Diagnoser) Run(ctx context.Context, src Violations) error {
	return src.Consume(ctx, func(ctx context.Context, e event.Event) error {
		err := d.Handle(ctx, e)
		if err != nil {
			d.log.Warn("violation not diagnosed", "event_id", e.ID(), "permanent", errors.Is(err, schemas.ErrPermanent), "error", err)
		}
		return err
	})
}
