package statuspage

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/operator-dev/operator/evaluators"
	"github.com/operator-dev/operator/subjects"
)

// Defaults for Config.
const (
	DefaultHistory     = 24 * time.Hour
	DefaultMaxEpisodes = 50
	DefaultHeartbeat   = 5 * time.Second
	// DefaultPollLimit bounds the messages one poll reads from each stream.
	DefaultPollLimit = 500
	// DefaultBy names whoever decides through the page when the request
	// does not say.
	DefaultBy = "status page"
)

// Config configures the page. The zero value is valid: every zero field
// takes its Default* value.
type Config struct {
	// Token, when set, is the bearer token every control (approve, reject,
	// kill switch) must carry. Reads are open.
	Token string `yaml:"-"`
	// History is how far back the status reads episodes.
	History time.Duration `yaml:"history"`
	// MaxEpisodes caps the episodes the status lists.
	MaxEpisodes int `yaml:"max_episodes"`
	// Heartbeat is how often the event stream says it is alive.
	Heartbeat time.Duration `yaml:"heartbeat"`
	// PollLimit bounds the messages one poll reads from each stream; the
	// next poll goes on from where it stopped.
	PollLimit int `yaml:"poll_limit"`
	// RuleSets give each alert's grace periods and severity, and each
	// subject's staleness threshold. An alert of a rule not among them is
	// shown without its grace.
	RuleSets []*evaluators.RuleSet `yaml:"-"`
	// Subjects give each subject's views; a subject not among them is
	// shown with its health only.
	Subjects subjects.Registry `yaml:"-"`
	// Logger receives one line per failed read or control; nil discards.
	Logger *slog.Logger `yaml:"-"`
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.History < 0 {
		errs = append(errs, fmt.Errorf("history %s must not be negative", c.History))
	}
	if c.MaxEpisodes < 0 {
		errs = append(errs, fmt.Errorf("max_episodes %d must not be negative", c.MaxEpisodes))
	}
	if c.Heartbeat < 0 {
		errs = append(errs, fmt.Errorf("heartbeat %s must not be negative", c.Heartbeat))
	}
	if c.PollLimit < 0 {
		errs = append(errs, fmt.Errorf("poll_limit %d must not be negative", c.PollLimit))
	}
	for _, rs := range c.RuleSets {
		if rs == nil {
			errs = append(errs, errors.New("a nil rule set"))
		}
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.History == 0 {
		c.History = DefaultHistory
	}
	if c.MaxEpisodes == 0 {
		c.MaxEpisodes = DefaultMaxEpisodes
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.PollLimit == 0 {
		c.PollLimit = DefaultPollLimit
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
