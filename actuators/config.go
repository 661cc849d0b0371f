package actuators

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/operator-dev/operator/schemas"
)

// Defaults for Config.
const (
	// DefaultWorkerID names the worker in event sources
	// (/actuators/<worker-id>) and in ledger claims.
	DefaultWorkerID = "actuator"
	// DefaultMode is observe: a worker acts only when told to.
	DefaultMode = schemas.ModeObserve
	// DefaultMaxActions actions per subject within DefaultPer, shared by
	// every replica.
	DefaultMaxActions = 10
	DefaultPer        = time.Hour
	// DefaultApprovalTTL is how long a request waits for a decision, and
	// how long an approval stays good for.
	DefaultApprovalTTL = time.Hour
	// DefaultExecuteTimeout bounds one execution attempt.
	DefaultExecuteTimeout = 10 * time.Second
	// DefaultMaxAttempts is how many times a transient failure is tried.
	DefaultMaxAttempts = 3
	// DefaultRetryBackoff is the delay before the second attempt; it doubles
	// per attempt up to DefaultMaxRetryBackoff.
	DefaultRetryBackoff    = 500 * time.Millisecond
	DefaultMaxRetryBackoff = 10 * time.Second
	// DefaultConcurrency is how many requests per subject one worker
	// handles at once.
	DefaultConcurrency = 4
	// DefaultVerifyConcurrency is how many verifications per subject one
	// worker runs at once.
	DefaultVerifyConcurrency = 16
	// DefaultLeaseMargin is added to the longest possible execution to form
	// a ledger claim's lease.
	DefaultLeaseMargin = 30 * time.Second
	// DefaultVerifyGrace is how long past verify_within a verification waits
	// for observations still in flight.
	DefaultVerifyGrace = 2 * time.Second
	// DefaultSweepInterval is how often expired approvals are swept.
	DefaultSweepInterval = 30 * time.Second
	// DefaultApprovalRetention is how long decided approval records stay in
	// the control bucket.
	DefaultApprovalRetention = 7 * 24 * time.Hour
	// DefaultMaxRequestAge is the oldest request a worker still acts on.
	DefaultMaxRequestAge = time.Hour
	// DefaultAckWait and DefaultMaxDeliver configure the request consumers.
	// Handlers signal progress while they work, so a long execution is not
	// redelivered.
	DefaultAckWait    = 30 * time.Second
	DefaultMaxDeliver = 10
)

// Config configures a Worker. The zero value is valid: every zero field
// takes its Default* value.
type Config struct {
	// WorkerID names this worker in event sources and ledger claims.
	WorkerID string `yaml:"worker_id"`
	// SubjectPrefix is the first token(s) of NATS subjects (default
	// schemas.DefaultPrefix).
	SubjectPrefix string `yaml:"subject_prefix"`
	// Mode is observe (record what would be done) or execute.
	Mode string `yaml:"mode"`
	// MaxActions is the most actions run on one subject within Per, across
	// all replicas. A failed verification counts as one more.
	MaxActions int           `yaml:"max_actions"`
	Per        time.Duration `yaml:"per"`
	// MaxRequestAge is the oldest request (by its requested_at) the worker
	// still acts on: an older one is skipped as stale, so a backlog left by
	// an outage never runs late. Requests that need approval are bounded
	// by ApprovalTTL instead.
	MaxRequestAge time.Duration `yaml:"max_request_age"`
	// ApprovalTTL is how long a request that needs approval waits for
	// `operator approve`, and how long an approval stays good for.
	ApprovalTTL time.Duration `yaml:"approval_ttl"`
	// ExecuteTimeout bounds one attempt of an action whose catalog entry
	// sets no timeout.
	ExecuteTimeout time.Duration `yaml:"execute_timeout"`
	// MaxAttempts bounds attempts at an action that fails transiently;
	// permanent failures are never retried.
	MaxAttempts int `yaml:"max_attempts"`
	// RetryBackoff is the first delay between attempts, doubled each time
	// up to MaxRetryBackoff.
	RetryBackoff    time.Duration `yaml:"retry_backoff"`
	MaxRetryBackoff time.Duration `yaml:"max_retry_backoff"`
	// Concurrency is how many requests per subject are handled at once.
	Concurrency int `yaml:"concurrency"`
	// VerifyConcurrency is how many verifications per subject run at once.
	VerifyConcurrency int `yaml:"verify_concurrency"`
	// LeaseMargin is added to the longest possible execution to form the
	// lease of a ledger claim: past it, a claim without a result is taken
	// as a crashed worker, and the request is failed, never re-executed.
	LeaseMargin time.Duration `yaml:"lease_margin"`
	// VerifyGrace is how long past verify_within a verification still
	// waits for observations made in time.
	VerifyGrace time.Duration `yaml:"verify_grace"`
	// SweepInterval is how often expired approvals are found and failed.
	SweepInterval time.Duration `yaml:"sweep_interval"`
	// ApprovalRetention is how long decided approval records are kept.
	ApprovalRetention time.Duration `yaml:"approval_retention"`
	// AckWait and MaxDeliver configure the request consumers; Redelivery
	// is their redelivery backoff (empty: the bus's default).
	AckWait    time.Duration   `yaml:"ack_wait"`
	MaxDeliver int             `yaml:"max_deliver"`
	Redelivery []time.Duration `yaml:"redelivery"`

	// Logger receives one line per decision and per problem; nil discards.
	Logger *slog.Logger `yaml:"-"`
	// Registerer receives the actuator metrics; nil registers nothing.
	Registerer prometheus.Registerer `yaml:"-"`
}

func (c Config) withDefaults() Config {
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.WorkerID == "" {
		c.WorkerID = DefaultWorkerID
	}
	if c.Mode == "" {
		c.Mode = DefaultMode
	}
	if c.MaxActions == 0 {
		c.MaxActions = DefaultMaxActions
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.VerifyConcurrency == 0 {
		c.VerifyConcurrency = DefaultVerifyConcurrency
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	set(&c.Per, DefaultPer)
	set(&c.ApprovalTTL, DefaultApprovalTTL)
	set(&c.MaxRequestAge, DefaultMaxRequestAge)
	set(&c.ExecuteTimeout, DefaultExecuteTimeout)
	set(&c.RetryBackoff, DefaultRetryBackoff)
	set(&c.MaxRetryBackoff, DefaultMaxRetryBackoff)
	set(&c.LeaseMargin, DefaultLeaseMargin)
	set(&c.VerifyGrace, DefaultVerifyGrace)
	set(&c.SweepInterval, DefaultSweepInterval)
	set(&c.ApprovalRetention, DefaultApprovalRetention)
	set(&c.AckWait, DefaultAckWait)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if strings.ContainsAny(c.WorkerID, " \t\r\n/") {
		errs = append(errs, fmt.Errorf("worker_id %q must not contain whitespace or '/'", c.WorkerID))
	}
	if err := (schemas.Subjects{Prefix: c.SubjectPrefix}).Validate(); err != nil {
		errs = append(errs, err)
	}
	switch c.Mode {
	case "", schemas.ModeObserve, schemas.ModeExecute:
	default:
		errs = append(errs, fmt.Errorf("mode %q must be %s or %s", c.Mode, schemas.ModeObserve, schemas.ModeExecute))
	}
	for name, v := range map[string]int{"max_actions": c.MaxActions, "max_attempts": c.MaxAttempts,
		"concurrency": c.Concurrency, "verify_concurrency": c.VerifyConcurrency, "max_deliver": c.MaxDeliver} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s %d must not be negative", name, v))
		}
	}
	for name, d := range map[string]time.Duration{"per": c.Per, "max_request_age": c.MaxRequestAge, "approval_ttl": c.ApprovalTTL,
		"execute_timeout": c.ExecuteTimeout, "retry_backoff": c.RetryBackoff, "max_retry_backoff": c.MaxRetryBackoff,
		"lease_margin": c.LeaseMargin, "verify_grace": c.VerifyGrace, "sweep_interval": c.SweepInterval,
		"approval_retention": c.ApprovalRetention, "ack_wait": c.AckWait} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s %s must not be negative", name, d))
		}
	}
	for _, d := range c.Redelivery {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("redelivery delays must be positive, got %s", d))
		}
	}
	return errors.Join(errs...)
}

func permanent(err error) error { return schemas.Permanent(err) }

// ControlStore is the operator_control bucket: a schemas.Store that can also list
// and delete keys, for sweeping approvals.
type ControlStore interface {
	schemas.Store
	Keys(ctx context.Context) ([]string, error)
	Delete(ctx context.Context, key string) error
}

// A Delivery is one delivery of an event by a durable consumer.
type Delivery struct {
	Event event.Event
	// NumDelivered is 1 on the first delivery.
	NumDelivered uint64
	// InProgress tells the server the handler is still working, resetting
	// its ack timer; nil when the consumer has none.
	InProgress func() error
}

// A Handler handles one delivery. Returning nil acknowledges it; an error
// wrapping schemas.ErrPermanent terminates it; any other error asks for
// redelivery after the consumer's backoff.
type Handler func(ctx context.Context, d *Delivery) error

// ConsumerSpec describes a durable consumer of one stream.
type ConsumerSpec struct {
	Stream string
	// Name is the durable name, shared by every replica.
	Name        string
	Description string
	Filter      string
	MaxDeliver  int
	AckWait     time.Duration
	// Backoff is the redelivery delay after each failed delivery (the
	// last repeats); empty means the bus's default.
	Backoff []time.Duration
	// Workers is how many deliveries are handled at once.
	Workers int
	// HandleTimeout bounds one handler call.
	HandleTimeout time.Duration
}

// Bus is what a Worker needs from the event backbone. The pipeline adapts
// internal/bus to it; this package does not import the bus, so nothing of
// NATS (nor anything it links) is in its import graph.
type Bus interface {
	schemas.Publisher
	// Consume runs a durable consumer until ctx is done, then drains: it
	// returns once in-flight handlers have finished.
	Consume(ctx context.Context, spec ConsumerSpec, h Handler) error
	// Tail calls fn, one call at a time, for every event stored on subjects
	// matching filter since the given time (stored time), until ctx is
	// done, and returns after the last call.
	Tail(ctx context.Context, filter string, since time.Time, fn func(subject string, e event.Event, err error)) error
}

// Deps are the Worker's connections to the outside world.
type Deps struct {
	Bus Bus
	// Alerts is the evaluator's state (operator_evaluator_state), read by
	// the precondition gate.
	Alerts schemas.Store
	// Ledger is operator_actuator_ledger.
	Ledger schemas.Store
	// Control is operator_control: kill switch, approvals, budgets.
	Control ControlStore
	// Subjects are the subjects this worker acts on, by name.
	Subjects map[string]Subject
}
