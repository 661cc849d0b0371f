package evaluators

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/operator-dev/operator/schemas"
)

// Defaults for Config.
const (
	// DefaultWorkerID names the evaluator in event sources
	// (/evaluators/<worker-id>).
	DefaultWorkerID = "evaluator"
	// DefaultStaleIntervals: without stale_after, an instance is stale after
	// this many of its observer's intervals without an observation.
	DefaultStaleIntervals = 3
	// DefaultStaleAfter applies when neither the rule set nor Config sets
	// stale_after and the observations carry no interval.
	DefaultStaleAfter = 30 * time.Second
	// DefaultStaleCheckInterval is how often Run checks for stale
	// instances (wall clock).
	DefaultStaleCheckInterval = 5 * time.Second
	// DefaultMaxConflictRetries bounds compare-and-swap retries on one key
	// for one observation.
	DefaultMaxConflictRetries = 64
)

// Config configures an Engine. The zero value is valid: every zero field
// takes its Default* value.
type Config struct {
	// WorkerID names this evaluator in the source of the events it emits.
	// Events keep deterministic ids whatever the worker.
	WorkerID string `yaml:"worker_id"`
	// SubjectPrefix is the first token(s) of NATS subjects (default
	// schemas.DefaultPrefix).
	SubjectPrefix string `yaml:"subject_prefix"`
	// StaleAfter is how long an instance's observations may stop before
	// observer_stale fires, for rule sets that set no stale_after. Zero
	// derives it: DefaultStaleIntervals × the observer's interval_ms, or
	// DefaultStaleAfter when observations carry no interval.
	StaleAfter time.Duration `yaml:"stale_after"`
	// StaleCheckInterval is how often Run looks for stale instances.
	StaleCheckInterval time.Duration `yaml:"stale_check_interval"`
	// MaxConflictRetries bounds compare-and-swap retries per key.
	MaxConflictRetries int `yaml:"max_conflict_retries"`
	// Logger receives one line per published event and per problem; nil
	// discards.
	Logger *slog.Logger `yaml:"-"`
	// Registerer receives the evaluator metrics; nil registers nothing.
	Registerer prometheus.Registerer `yaml:"-"`
}

func (c Config) withDefaults() Config {
	if c.WorkerID == "" {
		c.WorkerID = DefaultWorkerID
	}
	if c.StaleCheckInterval == 0 {
		c.StaleCheckInterval = DefaultStaleCheckInterval
	}
	if c.MaxConflictRetries == 0 {
		c.MaxConflictRetries = DefaultMaxConflictRetries
	}
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
	if c.StaleAfter < 0 {
		errs = append(errs, fmt.Errorf("stale_after %s must not be negative", c.StaleAfter))
	}
	if c.StaleCheckInterval < 0 {
		errs = append(errs, fmt.Errorf("stale_check_interval %s must not be negative", c.StaleCheckInterval))
	}
	if c.MaxConflictRetries < 0 {
		errs = append(errs, fmt.Errorf("max_conflict_retries %d must not be negative", c.MaxConflictRetries))
	}
	return errors.Join(errs...)
}
