package ratelimiter

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/operator-dev/operator/ratelimiter/api"
)

// Algorithm names a rate limiting algorithm. Each one is a single atomic Lua
// script that reads and updates the key's state and sets its TTL.
type Algorithm string

// The supported algorithms.
const (
	// SlidingWindowLog keeps one sorted set member per consumed unit and is
	// exact. Its memory is proportional to the limit, so limits above
	// [MaxSlidingWindowLogLimit] are refused.
	SlidingWindowLog Algorithm = api.AlgorithmSlidingWindowLog
	// SlidingWindowCounter weights the previous window's count by its
	// overlap with the sliding window: O(1) memory, approximate at window
	// boundaries.
	SlidingWindowCounter Algorithm = api.AlgorithmSlidingWindowCounter
	// FixedWindow counts units in windows laid end to end from the key's first
	// use. Across a window boundary a client can get up to twice the limit;
	// that is kept on purpose as a scenario Operator must detect.
	FixedWindow Algorithm = api.AlgorithmFixedWindow
	// GCRA is the generic cell rate algorithm with a burst equal to the
	// limit: up to limit units at once, refilled evenly over the window.
	GCRA Algorithm = api.AlgorithmGCRA
)

// Algorithms returns every supported algorithm.
func Algorithms() []Algorithm {
	return []Algorithm{SlidingWindowLog, SlidingWindowCounter, FixedWindow, GCRA}
}

// Valid reports whether a names a supported algorithm.
func (a Algorithm) Valid() bool {
	switch a {
	case SlidingWindowLog, SlidingWindowCounter, FixedWindow, GCRA:
		return true
	}
	return false
}

// suffix is the last part of the algorithm's Redis state key.
func (a Algorithm) suffix() string {
	switch a {
	case SlidingWindowLog:
		return "swl"
	case SlidingWindowCounter:
		return "swc"
	case FixedWindow:
		return "fw"
	case GCRA:
		return "gcra"
	}
	panic(fmt.Sprintf("ratelimiter: unknown algorithm %q", string(a)))
}

// FailureMode says what a node answers when Redis cannot be reached.
type FailureMode string

// The failure modes.
const (
	// FailOpen allows the request and marks the decision degraded.
	FailOpen FailureMode = "open"
	// FailClosed refuses to decide: Check returns [ErrUnavailable] and the
	// HTTP API answers 503.
	FailClosed FailureMode = "closed"
)

// ClockSource says whose clock decisions use.
type ClockSource string

// The clock sources.
const (
	// ClockRedis reads the Redis server clock (TIME) inside the script.
	ClockRedis ClockSource = "redis"
	// ClockNode passes the node's clock, shifted by the chaos clock skew.
	ClockNode ClockSource = "node"
)

// Defaults applied by [Config.withDefaults] to zero fields.
const (
	DefaultLimit            = 100
	DefaultWindow           = time.Minute
	DefaultAlgorithm        = SlidingWindowLog
	DefaultOnRedisError     = FailClosed
	DefaultClock            = ClockRedis
	DefaultRedisTimeout     = 100 * time.Millisecond
	DefaultSyncInterval     = 500 * time.Millisecond
	DefaultNodeDownAfter    = 3 * time.Second
	DefaultNodeRetention    = time.Hour
	DefaultConfigRetention  = 30 * 24 * time.Hour
	DefaultHotKeysPerBucket = 5000
	DefaultOverLimitCache   = 100_000
)

// Bounds on configured values.
const (
	// MaxLimit is the largest accepted limit.
	MaxLimit = 1_000_000_000
	// MaxSlidingWindowLogLimit is the largest limit accepted for
	// [SlidingWindowLog], whose memory and script time grow with the limit.
	MaxSlidingWindowLogLimit = 10_000
	// MinWindow and MaxWindow bound a limit's window.
	MinWindow = time.Millisecond
	MaxWindow = 30 * 24 * time.Hour
	// MaxBlockTTL bounds a block's duration.
	MaxBlockTTL = 30 * 24 * time.Hour
)

// Config configures a [Limiter]. The zero value, with a NodeID, is valid:
// [New] fills zero fields with the Default* constants.
type Config struct {
	// NodeID names this node in the registry, metrics and decisions.
	NodeID string `yaml:"node_id"`
	// Advertise is the base URL other parties use to reach this node's HTTP
	// API; it is published in the node registry.
	Advertise string `yaml:"advertise"`
	// Version is reported in the registry and the build info metric.
	Version string `yaml:"version"`

	// DefaultLimit, DefaultWindow and DefaultAlgorithm apply to keys that no
	// configured pattern matches.
	DefaultLimit     int64         `yaml:"default_limit"`
	DefaultWindow    time.Duration `yaml:"default_window"`
	DefaultAlgorithm Algorithm     `yaml:"default_algorithm"`

	// OnRedisError is FailOpen or FailClosed.
	OnRedisError FailureMode `yaml:"on_redis_error"`
	// Clock is ClockRedis or ClockNode.
	Clock ClockSource `yaml:"clock"`
	// RedisTimeout bounds every Redis call of a decision or a management
	// request, including the chaos delay.
	RedisTimeout time.Duration `yaml:"redis_timeout"`

	// SyncInterval is how often the node heartbeats and polls the limit
	// configuration version. It must be at most one second, so every node
	// applies a limit change within a second even if pub/sub is lost.
	SyncInterval time.Duration `yaml:"sync_interval"`
	// NodeDownAfter is the heartbeat age after which a node is listed down.
	NodeDownAfter time.Duration `yaml:"node_down_after"`
	// NodeRetention is how long a node stays listed after its last heartbeat.
	NodeRetention time.Duration `yaml:"node_retention"`
	// ConfigRetention is the TTL of the limit configuration; running nodes
	// renew it at every sync.
	ConfigRetention time.Duration `yaml:"config_retention"`
	// HotKeysPerBucket caps the distinct keys tracked per second.
	HotKeysPerBucket int `yaml:"hot_keys_per_bucket"`
	// OverLimitCache is how many keys known to be over their limit the node
	// remembers, to deny them without asking Redis while the denial is
	// certain (see the package doc); 0 means DefaultOverLimitCache,
	// negative turns the cache off.
	OverLimitCache int `yaml:"over_limit_cache"`
	// GoRedisDecisions sends decisions through go-redis, batched, instead
	// of the node's own pipelining connections: slower, for comparison
	// and as a fallback.
	GoRedisDecisions bool `yaml:"go_redis_decisions"`

	// EnableChaos allows [Limiter.SetChaos] and the /api/v1/chaos endpoint.
	EnableChaos bool `yaml:"enable_chaos"`

	// Logger receives the node's logs; nil discards them.
	Logger *slog.Logger `yaml:"-"`
	// Registerer receives the node's metrics; nil registers nothing. Give
	// each node its own registry when several run in one process.
	Registerer prometheus.Registerer `yaml:"-"`
	// Now is the node's wall clock; nil means time.Now. It is read for the
	// node clock, start time, limit timestamps and hot key windows.
	Now func() time.Time `yaml:"-"`
}

var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.DefaultLimit == 0 {
		c.DefaultLimit = DefaultLimit
	}
	if c.DefaultWindow == 0 {
		c.DefaultWindow = DefaultWindow
	}
	if c.DefaultAlgorithm == "" {
		c.DefaultAlgorithm = DefaultAlgorithm
	}
	if c.OnRedisError == "" {
		c.OnRedisError = DefaultOnRedisError
	}
	if c.Clock == "" {
		c.Clock = DefaultClock
	}
	if c.RedisTimeout == 0 {
		c.RedisTimeout = DefaultRedisTimeout
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = DefaultSyncInterval
	}
	if c.NodeDownAfter == 0 {
		c.NodeDownAfter = DefaultNodeDownAfter
	}
	if c.NodeRetention == 0 {
		c.NodeRetention = DefaultNodeRetention
	}
	if c.ConfigRetention == 0 {
		c.ConfigRetention = DefaultConfigRetention
	}
	if c.OverLimitCache == 0 {
		c.OverLimitCache = DefaultOverLimitCache
	}
	if c.HotKeysPerBucket == 0 {
		c.HotKeysPerBucket = DefaultHotKeysPerBucket
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports every problem with c after defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if !nodeIDPattern.MatchString(c.NodeID) {
		errs = append(errs, fmt.Errorf("node id %q must be 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit", c.NodeID))
	}
	if err := (Limit{Limit: c.DefaultLimit, Window: c.DefaultWindow, Algorithm: c.DefaultAlgorithm}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("default limit: %w", err))
	}
	if c.OnRedisError != FailOpen && c.OnRedisError != FailClosed {
		errs = append(errs, fmt.Errorf("on_redis_error %q must be %q or %q", c.OnRedisError, FailOpen, FailClosed))
	}
	if c.Clock != ClockRedis && c.Clock != ClockNode {
		errs = append(errs, fmt.Errorf("clock %q must be %q or %q", c.Clock, ClockRedis, ClockNode))
	}
	if c.RedisTimeout < 0 {
		errs = append(errs, errors.New("redis timeout must be positive"))
	}
	if c.SyncInterval < 0 || c.SyncInterval > time.Second {
		errs = append(errs, fmt.Errorf("sync interval %s must be between 0 and 1s", c.SyncInterval))
	}
	if c.NodeDownAfter <= c.SyncInterval {
		errs = append(errs, fmt.Errorf("node down after %s must be longer than the sync interval %s", c.NodeDownAfter, c.SyncInterval))
	}
	if c.NodeRetention < c.NodeDownAfter {
		errs = append(errs, fmt.Errorf("node retention %s must be at least node down after %s", c.NodeRetention, c.NodeDownAfter))
	}
	if c.ConfigRetention < time.Minute {
		errs = append(errs, fmt.Errorf("config retention %s must be at least 1m", c.ConfigRetention))
	}
	if c.HotKeysPerBucket < 0 {
		errs = append(errs, errors.New("hot keys per bucket must be positive"))
	}
	return errors.Join(errs...)
}
