package observers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/operator-dev/operator/schemas"
)

// Defaults for Config.
const (
	DefaultInterval = time.Second
	// DefaultJitter spreads polls of many observers by up to ±10 % of the
	// interval so they do not hit a subject in lockstep.
	DefaultJitter = 0.1
)

// State is what one poll of a subject found.
type State struct {
	// Value is the subject-specific state, published as the observation's
	// state. It must marshal to a JSON object.
	Value any
	// Errors lists the sources that could not be read. The observation is
	// still published, with what could be read.
	Errors []schemas.ObserverError
}

// A Source observes one subject instance. Observe is called from one
// goroutine at a time, with a ctx that ends at the poll timeout. It should
// return a partial State with Errors rather than an error; an error means
// nothing at all could be measured, and no observation is published for that
// poll (the evaluators' observer_stale rule then fires if it persists).
type Source interface {
	Observe(ctx context.Context) (State, error)
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context) (State, error)

// Observe calls f.
func (f SourceFunc) Observe(ctx context.Context) (State, error) { return f(ctx) }

// Publisher publishes an event without waiting for the server's ack.
type Publisher interface {
	PublishAsync(subject string, e event.Event) error
}

// Config configures a Runner.
type Config struct {
	Subject  string `yaml:"subject"`
	Instance string `yaml:"instance"`
	// Interval between polls (default 1s).
	Interval time.Duration `yaml:"interval"`
	// Jitter is the fraction of Interval by which each wait varies.
	Jitter float64 `yaml:"jitter"`
	// Timeout bounds one poll (default 80 % of Interval).
	Timeout time.Duration `yaml:"timeout"`
	// Subjects builds NATS subjects (zero value: prefix "operator").
	Subjects   schemas.Subjects      `yaml:"-"`
	Logger     *slog.Logger          `yaml:"-"`
	Registerer prometheus.Registerer `yaml:"-"`
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if err := schemas.ValidToken(c.Subject); err != nil {
		errs = append(errs, fmt.Errorf("subject: %w", err))
	}
	if err := schemas.ValidToken(c.Instance); err != nil {
		errs = append(errs, fmt.Errorf("instance: %w", err))
	}
	if c.Interval < 0 || c.Timeout < 0 {
		errs = append(errs, errors.New("interval and timeout must not be negative"))
	}
	if c.Jitter < 0 || c.Jitter >= 1 {
		errs = append(errs, fmt.Errorf("jitter must be in [0, 1), got %v", c.Jitter))
	}
	return errors.Join(errs...)
}

// A Runner polls one Source and publishes its observations.
type Runner struct {
	cfg     Config
	src     Source
	pub     Publisher
	log     *slog.Logger
	subject string
	source  string
	metrics *metrics
}

// New returns a Runner; it validates cfg and fills defaults.
func New(cfg Config, src Source, pub Publisher) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Jitter == 0 {
		cfg.Jitter = DefaultJitter
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = cfg.Interval * 8 / 10
	}
	subj, err := cfg.Subjects.Observation(cfg.Subject, cfg.Instance)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{
		cfg: cfg, src: src, pub: pub, subject: subj,
		source:  "/observers/" + cfg.Subject + "/" + cfg.Instance,
		log:     log.With("subject", cfg.Subject, "instance", cfg.Instance),
		metrics: newMetrics(cfg.Registerer),
	}, nil
}

// Run polls until ctx is done. The first poll happens at once. It returns
// nil when ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		start := time.Now()
		if err := r.Poll(ctx, start); err != nil && ctx.Err() == nil {
			r.log.Warn("poll failed", "error", err)
		}
		timer.Reset(r.wait(time.Since(start)))
	}
}

// wait is the time until the next poll: the interval with jitter, less the
// time the poll took, so polls stay on a steady rhythm.
func (r *Runner) wait(took time.Duration) time.Duration {
	d := r.cfg.Interval
	if r.cfg.Jitter > 0 {
		d += time.Duration((rand.Float64()*2 - 1) * r.cfg.Jitter * float64(d))
	}
	d -= took
	if d < 0 {
		d = 0
	}
	return d
}

// Poll observes once at now and publishes the observation. now is the
// observation's time and its ce-time.
func (r *Runner) Poll(ctx context.Context, now time.Time) error {
	pctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	start := time.Now()
	st, err := r.src.Observe(pctx)
	took := time.Since(start)
	r.metrics.duration.WithLabelValues(r.cfg.Subject, r.cfg.Instance).Observe(took.Seconds())
	if err != nil {
		r.metrics.polls.WithLabelValues(r.cfg.Subject, r.cfg.Instance, "failed").Inc()
		return fmt.Errorf("observe: %w", err)
	}
	for _, e := range st.Errors {
		r.metrics.sourceErrors.WithLabelValues(r.cfg.Subject, r.cfg.Instance, e.Source).Inc()
	}
	e, err := r.event(now, took, st)
	if err != nil {
		r.metrics.polls.WithLabelValues(r.cfg.Subject, r.cfg.Instance, "failed").Inc()
		return err
	}
	if err := r.pub.PublishAsync(r.subject, e); err != nil {
		r.metrics.polls.WithLabelValues(r.cfg.Subject, r.cfg.Instance, "failed").Inc()
		return fmt.Errorf("publish observation: %w", err)
	}
	result := "ok"
	if len(st.Errors) > 0 {
		result = "partial"
		r.log.Debug("partial observation", "errors", len(st.Errors), "first", st.Errors[0].Source+": "+st.Errors[0].Message)
	}
	r.metrics.polls.WithLabelValues(r.cfg.Subject, r.cfg.Instance, result).Inc()
	return nil
}

func (r *Runner) event(now time.Time, took time.Duration, st State) (event.Event, error) {
	state, err := json.Marshal(st.Value)
	if err != nil {
		return event.Event{}, fmt.Errorf("encode state: %w", err)
	}
	errs := st.Errors
	if errs == nil {
		errs = []schemas.ObserverError{}
	}
	obs := schemas.Observation{
		Subject: r.cfg.Subject, Instance: r.cfg.Instance, ObservedAt: now.UTC(),
		Observer: schemas.ObserverInfo{
			DurationMS: float64(took.Microseconds()) / 1000,
			IntervalMS: r.cfg.Interval.Milliseconds(),
			Errors:     errs,
		},
		State: state,
	}
	return schemas.NewEvent(schemas.EventSpec{
		Type:    schemas.TypeObservation,
		Source:  r.source,
		Subject: r.cfg.Subject + "/" + r.cfg.Instance,
		// One observation per instance and instant: a retried publish of
		// the same poll dedupes.
		ID:   schemas.DeriveID(r.cfg.Subject, r.cfg.Instance, now.UTC().Format(time.RFC3339Nano)),
		Time: now,
	}, obs)
}

type metrics struct {
	polls        *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	sourceErrors *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "operator_observer_polls_total", Help: "Observer polls by result: ok, partial (some sources failed), failed (nothing published).",
		}, []string{"subject", "instance", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "operator_observer_poll_duration_seconds", Help: "Time one poll of the subject took.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"subject", "instance"}),
		sourceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "operator_observer_source_errors_total", Help: "Sources an observer could not read, by source.",
		}, []string{"subject", "instance", "source"}),
	}
	if reg != nil {
		reg.MustRegister(m.polls, m.duration, m.sourceErrors)
	}
	return m
}
