package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/diagnosis"
	"github.com/operator-dev/operator/evaluators"
	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/observers"
	"github.com/operator-dev/operator/schemas"
	"github.com/operator-dev/operator/subjects"
)

// Config describes a whole pipeline in one process.
type Config struct {
	// Store is the directory for the embedded JetStream store; empty means
	// a temporary directory.
	Store string
	// NATSListen is where the embedded NATS listens for other processes
	// ("" for in-process only).
	NATSListen string
	// NATSURL uses an external NATS server instead of the embedded one.
	NATSURL string
	// Bus adjusts the bus configuration (prefix, replicas, credentials).
	Bus bus.Config
	// Deployments are the subject instances the pipeline watches and acts
	// on. The pipeline owns them: Close closes them.
	Deployments []*subjects.Deployment
	// Evaluator configures the rule engine.
	Evaluator evaluators.Config
	// Actuator configures the actuator; its Mode defaults to execute here,
	// since the pipeline owns its deployments.
	Actuator actuators.Config
	// Diagnosis configures the diagnoser, which explains every firing
	// violation; Reasoner, when set, replaces its deterministic reasoning
	// (an LLM), which stays the fallback.
	Diagnosis diagnosis.Config
	Reasoner  diagnosis.Reasoner
	// RuleFiles replace the deployments' shipped rule sets when given.
	RuleFiles []string
	// Registerer receives the pipeline's metrics (bus, observers,
	// evaluator, actuator); nil registers nothing.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// A Pipeline is a bus with the components that run on it.
type Pipeline struct {
	cfg Config
	log *slog.Logger
	Bus *bus.Bus
}

// Start opens the bus and declares Operator's streams and buckets. Run then
// runs the pipeline; Close releases everything, the deployments too.
func Start(ctx context.Context, cfg Config) (_ *Pipeline, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Pipeline{cfg: cfg, log: cfg.Logger}
	defer func() {
		if err != nil {
			_ = p.Close()
		}
	}()
	if len(cfg.Deployments) == 0 {
		return nil, errors.New("pipeline: no deployment to watch")
	}
	seen := map[string]bool{}
	for _, d := range cfg.Deployments {
		if err := d.Validate(); err != nil {
			return nil, err
		}
		id := d.Subject.Name + "/" + d.Instance
		if seen[id] {
			return nil, fmt.Errorf("pipeline: %s deployed twice", id)
		}
		seen[id] = true
	}

	bc := cfg.Bus
	bc.Logger = cfg.Logger
	bc.Registerer = cfg.Registerer
	bc.Name = "operator-up"
	bc.URL = cfg.NATSURL
	if cfg.NATSURL == "" {
		store := cfg.Store
		if store != "" {
			store = filepath.Join(store, "nats")
		}
		bc.Embedded = bus.EmbeddedConfig{StoreDir: store, Listen: cfg.NATSListen}
	}
	if p.Bus, err = OpenBus(ctx, bc); err != nil {
		return nil, err
	}
	return p, nil
}

// Deployments returns the deployments the pipeline watches.
func (p *Pipeline) Deployments() []*subjects.Deployment { return p.cfg.Deployments }

// RuleSets loads the configured rule files, or the shipped rule set of
// every deployed subject (once per subject).
func (p *Pipeline) RuleSets() ([]*evaluators.RuleSet, error) {
	if len(p.cfg.RuleFiles) > 0 {
		return evaluators.LoadRuleSets(evaluators.LoadOptions{}, p.cfg.RuleFiles...)
	}
	var sets []*evaluators.RuleSet
	seen := map[string]bool{}
	for _, d := range p.cfg.Deployments {
		if seen[d.Subject.Name] {
			continue
		}
		seen[d.Subject.Name] = true
		rs, err := d.Subject.RuleSet(evaluators.LoadOptions{})
		if err != nil {
			return nil, err
		}
		sets = append(sets, rs)
	}
	return sets, nil
}

// actuatorSubjects returns each deployed subject's catalog and executor.
func (p *Pipeline) actuatorSubjects() (map[string]actuators.Subject, error) {
	out := map[string]actuators.Subject{}
	for _, d := range p.cfg.Deployments {
		if _, ok := out[d.Subject.Name]; ok {
			return nil, fmt.Errorf("pipeline: one actuator cannot act on two instances of %s", d.Subject.Name)
		}
		cat, err := d.Subject.ActionCatalog()
		if err != nil {
			return nil, err
		}
		out[d.Subject.Name] = actuators.Subject{Catalog: cat, Executor: d.Executor}
	}
	return out, nil
}

// DiagnosisSubjects returns each deployed subject's playbook, catalog and
// read-only API for the diagnoser.
func (p *Pipeline) DiagnosisSubjects() (map[string]diagnosis.Subject, error) {
	out := map[string]diagnosis.Subject{}
	for _, d := range p.cfg.Deployments {
		pb, err := d.Subject.DiagnosisPlaybook()
		if err != nil {
			return nil, err
		}
		cat, err := d.Subject.ActionCatalog()
		if err != nil {
			return nil, err
		}
		out[d.Subject.Name] = diagnosis.Subject{Playbook: pb, Catalog: cat, API: d.API, Prometheus: d.Prometheus}
	}
	return out, nil
}

// Run runs an observer per deployment, the evaluator, the diagnoser and
// the actuator until ctx is done.
func (p *Pipeline) Run(ctx context.Context) error {
	sets, err := p.RuleSets()
	if err != nil {
		return err
	}
	acts, err := p.actuatorSubjects()
	if err != nil {
		return err
	}
	diags, err := p.DiagnosisSubjects()
	if err != nil {
		return err
	}
	dc := p.cfg.Diagnosis
	if dc.Logger == nil {
		dc.Logger = p.log.With("component", "diagnosis")
	}
	if dc.Registerer == nil {
		dc.Registerer = p.cfg.Registerer
	}
	dc.SubjectPrefix = p.Bus.Subjects().Prefix
	ec := p.cfg.Evaluator
	if ec.Logger == nil {
		ec.Logger = p.log.With("component", "evaluator")
	}
	if ec.Registerer == nil {
		ec.Registerer = p.cfg.Registerer
	}
	ac := p.cfg.Actuator
	if ac.Mode == "" {
		ac.Mode = schemas.ModeExecute
	}
	if ac.Logger == nil {
		ac.Logger = p.log.With("component", "actuator")
	}
	if ac.Registerer == nil {
		ac.Registerer = p.cfg.Registerer
	}
	ac.SubjectPrefix = p.Bus.Subjects().Prefix

	g, gctx := errgroup.WithContext(ctx)
	for _, d := range p.cfg.Deployments {
		oc := observers.Config{Subject: d.Subject.Name, Instance: d.Instance, Interval: d.Interval,
			Logger: p.log.With("component", "observer", "subject", d.Subject.Name), Registerer: p.observerRegisterer(d.Subject.Name)}
		g.Go(func() error { return RunObserver(gctx, p.Bus, oc, d.Source) })
	}
	g.Go(func() error { return RunEvaluator(gctx, p.Bus, sets, ec, 1) })
	g.Go(func() error { return RunActuator(gctx, p.Bus, ac, acts) })
	g.Go(func() error { return RunDiagnoser(gctx, p.Bus, dc, diags, p.cfg.Reasoner, DiagnoserWorkers) })
	err = g.Wait()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		// Stopped while a component was still starting (opening a bucket):
		// a clean stop all the same.
		return nil
	}
	return err
}

// observerRegisterer labels one observer's metrics with its subject, so the
// observers of every subject share one registry.
func (p *Pipeline) observerRegisterer(subject string) prometheus.Registerer {
	if p.cfg.Registerer == nil {
		return nil
	}
	return prometheus.WrapRegistererWith(prometheus.Labels{"observer": subject}, p.cfg.Registerer)
}

// Approve approves a request awaiting approval, as `operator approve` does.
func (p *Pipeline) Approve(ctx context.Context, requestID, by string) error {
	control, err := p.Bus.KV(ctx, schemas.BucketControl)
	if err != nil {
		return err
	}
	_, err = actuators.Decide(ctx, control, p.Bus, p.Bus.Subjects(), requestID,
		actuators.Decision{Approve: true, By: by, Reason: "approved by " + by, Source: "/cli/" + by}, time.Now())
	return err
}

// Close closes the deployments and the bus.
func (p *Pipeline) Close() error {
	var errs []error
	for _, d := range p.cfg.Deployments {
		if d.Close != nil {
			errs = append(errs, d.Close())
		}
	}
	if p.Bus != nil {
		errs = append(errs, p.Bus.Close())
	}
	return errors.Join(errs...)
}
