package llm

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
)

// Defaults for Config.
const (
	// DefaultModel balances speed, depth and price for a diagnosis that
	// must land within the diagnoser's timeout.
	DefaultModel = anthropic.ModelClaudeSonnet5_5
	// DefaultInputUSDPerMTok and DefaultOutputUSDPerMTok are the published
	// list prices of DefaultModel in US dollars per million tokens. They
	// only feed the cost estimate; a caller with other prices (a discount,
	// a batch tier, another model) sets its own.
	DefaultInputUSDPerMTok  = 2.0
	DefaultOutputUSDPerMTok = 10.0
	// DefaultMaxTokens bounds the output of one request, thinking included.
	DefaultMaxTokens = 8192
	// DefaultTimeout bounds one diagnosis, every request and tool call
	// included. It is shorter than the diagnoser's own timeout so that a
	// slow model still leaves time to publish the deterministic answer.
	DefaultTimeout = 45 * time.Second
	// DefaultMaxToolCalls bounds the read-only tool calls of one diagnosis.
	DefaultMaxToolCalls = 6
	// DefaultMaxRetries is how often the client retries a request that
	// failed with 408, 409, 429, 5xx or a connection error.
	DefaultMaxRetries = 2
)

// maxNonStreamingTokens keeps max_tokens under what the SDK accepts for a
// request that is not streamed.
const maxNonStreamingTokens = 20000

// efforts are the effort levels of the Messages API.
var efforts = []string{"low", "medium", "high", "xhigh", "max"}

// Config configures a Reasoner. Apart from APIKey, the zero value of every
// field means its default.
type Config struct {
	// APIKey authenticates with the Messages API. It is required and is
	// never read from the environment here: the command passes it in.
	APIKey string `yaml:"-"`
	// Model is the model id; empty means DefaultModel.
	Model string `yaml:"model"`
	// BaseURL replaces the API's address, for a proxy or a test server.
	BaseURL string `yaml:"base_url"`
	// MaxTokens bounds the output of each request; 0 means
	// DefaultMaxTokens.
	MaxTokens int64 `yaml:"max_tokens"`
	// Effort is the model's effort level (low, medium, high, xhigh, max);
	// empty leaves the model's default.
	Effort string `yaml:"effort"`
	// Timeout bounds one diagnosis; 0 means DefaultTimeout. Running out of
	// it is an error, and the diagnoser then publishes the deterministic
	// answer.
	Timeout time.Duration `yaml:"timeout"`
	// MaxToolCalls bounds the read-only tool calls of one diagnosis; 0
	// means DefaultMaxToolCalls, negative means none.
	MaxToolCalls int `yaml:"max_tool_calls"`
	// MaxRetries is how often a failed request is retried; 0 means
	// DefaultMaxRetries, negative means never.
	MaxRetries int `yaml:"max_retries"`
	// Redact replaces names and keys with placeholders before anything is
	// sent and maps them back in the answer (see the package doc).
	Redact bool `yaml:"redact"`
	// InputUSDPerMTok and OutputUSDPerMTok price the cost estimate in US
	// dollars per million tokens. Zero means the default list price when
	// Model is DefaultModel, and no estimate (0) for another model.
	InputUSDPerMTok  float64 `yaml:"input_usd_per_mtok"`
	OutputUSDPerMTok float64 `yaml:"output_usd_per_mtok"`
	// Logger receives one line per dropped citation or suggestion; nil
	// discards.
	Logger *slog.Logger `yaml:"-"`
}

func (c Config) withDefaults() Config {
	if c.Model == "" {
		c.Model = DefaultModel
	}
	if c.Model == DefaultModel && c.InputUSDPerMTok == 0 && c.OutputUSDPerMTok == 0 {
		c.InputUSDPerMTok, c.OutputUSDPerMTok = DefaultInputUSDPerMTok, DefaultOutputUSDPerMTok
	}
	if c.MaxTokens == 0 {
		c.MaxTokens = DefaultMaxTokens
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	switch {
	case c.MaxToolCalls == 0:
		c.MaxToolCalls = DefaultMaxToolCalls
	case c.MaxToolCalls < 0:
		c.MaxToolCalls = 0
	}
	switch {
	case c.MaxRetries == 0:
		c.MaxRetries = DefaultMaxRetries
	case c.MaxRetries < 0:
		c.MaxRetries = 0
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate checks the configuration and reports every problem.
func (c Config) Validate() error {
	var errs []error
	if c.APIKey == "" {
		errs = append(errs, errors.New("an API key is required"))
	}
	if c.BaseURL != "" {
		if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("base URL %q: want an http or https URL", c.BaseURL))
		}
	}
	if c.MaxTokens < 0 || c.MaxTokens > maxNonStreamingTokens {
		errs = append(errs, fmt.Errorf("max tokens %d: want 1 to %d (requests are not streamed)", c.MaxTokens, maxNonStreamingTokens))
	}
	if c.Effort != "" && !slices.Contains(efforts, c.Effort) {
		errs = append(errs, fmt.Errorf("effort %q: want one of %v", c.Effort, efforts))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout must not be negative"))
	}
	if c.InputUSDPerMTok < 0 || c.OutputUSDPerMTok < 0 {
		errs = append(errs, errors.New("prices must not be negative"))
	}
	return errors.Join(errs...)
}

// cost estimates the price of the tokens in US dollars.
func (c Config) cost(input, output int64) float64 {
	return float64(input)/1e6*c.InputUSDPerMTok + float64(output)/1e6*c.OutputUSDPerMTok
}
