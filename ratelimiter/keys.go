package ratelimiter

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/operator-dev/operator/ratelimiter/api"
)

// keyPrefix starts every Redis key this package writes.
const keyPrefix = "ratelimit:"

// Redis keys of the shared configuration and the node registry. Each group
// shares a hash tag so one script can touch all of its keys.
const (
	limitsKey  = "ratelimit:{config}:limits"
	versionKey = "ratelimit:{config}:version"
	// epochKey counts the actions that give quota back (counter resets,
	// lifted blocks); every node's over-limit cache follows it.
	epochKey      = "ratelimit:{config}:epoch"
	blockIndexKey = "ratelimit:{config}:blocks"
	changedChan   = "ratelimit:{config}:changed"
	nodesInfoKey  = "ratelimit:{nodes}:info"
	nodesHBKey    = "ratelimit:{nodes}:hb"
	nodesDrainKey = "ratelimit:{nodes}:drain"
)

// stateKey is the Redis key holding key's state for algorithm a.
func stateKey(key string, a Algorithm) string {
	return keyPrefix + "{" + key + "}:" + a.suffix()
}

// seqKey is the member sequence of key's sliding window log.
func seqKey(key string) string { return keyPrefix + "{" + key + "}:swl:seq" }

// blockKey marks key as blocked while it exists.
func blockKey(key string) string { return keyPrefix + "{" + key + "}:block" }

// counterKeys lists every per-key Redis key that holds counter state.
func counterKeys(key string) []string {
	keys := []string{seqKey(key)}
	for _, a := range Algorithms() {
		keys = append(keys, stateKey(key, a))
	}
	return keys
}

// parseStateKey returns the user key and algorithm of a counter state key
// found by SCAN, and false for every other key (blocks, sequences,
// configuration, registry, or keys this package did not write).
func parseStateKey(redisKey string) (string, Algorithm, bool) {
	rest, ok := strings.CutPrefix(redisKey, keyPrefix+"{")
	if !ok {
		return "", "", false
	}
	for _, a := range Algorithms() {
		if key, ok := strings.CutSuffix(rest, "}:"+a.suffix()); ok && ValidateKey(key) == nil {
			return key, a, true
		}
	}
	return "", "", false
}

// ErrInvalid is wrapped by every error about invalid input: keys, patterns,
// costs, limits, blocks and request bodies. The HTTP API answers it with 400.
var ErrInvalid = errors.New("invalid input")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// ValidateKey reports whether key can be rate limited: 1 to 256 bytes of
// UTF-8 without control characters or braces. Braces are reserved because the
// key becomes a Redis Cluster hash tag.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return invalidf("key must not be empty")
	case len(key) > api.MaxKeyBytes:
		return invalidf("key is %d bytes, longer than the maximum of %d", len(key), api.MaxKeyBytes)
	case !utf8.ValidString(key):
		return invalidf("key must be valid UTF-8")
	}
	for _, r := range key {
		switch {
		case r < 0x20 || r == 0x7f:
			return invalidf("key must not contain control characters")
		case r == '{' || r == '}':
			return invalidf("key must not contain '{' or '}'")
		}
	}
	return nil
}

// ValidatePattern reports whether pattern can name a limit: an exact key, or
// a key prefix followed by a single trailing '*'. "*" alone matches every key.
func ValidatePattern(pattern string) error {
	if pattern == "*" {
		return nil
	}
	prefix, isPrefix := strings.CutSuffix(pattern, "*")
	if strings.Contains(prefix, "*") {
		return invalidf("pattern %q may contain '*' only as its last character", pattern)
	}
	if err := ValidateKey(prefix); err != nil {
		if isPrefix {
			return fmt.Errorf("pattern prefix: %w", err)
		}
		return err
	}
	return nil
}

// A Limit is the quota applied to a key: Limit units per Window.
type Limit struct {
	Limit     int64
	Window    time.Duration
	Algorithm Algorithm
}

// Validate reports whether l can be enforced.
func (l Limit) Validate() error {
	var errs []error
	if l.Limit < 1 || l.Limit > MaxLimit {
		errs = append(errs, invalidf("limit %d must be between 1 and %d", l.Limit, MaxLimit))
	}
	if l.Window < MinWindow || l.Window > MaxWindow {
		errs = append(errs, invalidf("window %s must be between %s and %s", l.Window, MinWindow, MaxWindow))
	} else if l.Window%time.Millisecond != 0 {
		errs = append(errs, invalidf("window %s must be a whole number of milliseconds", l.Window))
	}
	if !l.Algorithm.Valid() {
		errs = append(errs, invalidf("unknown algorithm %q; use one of %s", l.Algorithm, algorithmList()))
	} else if l.Algorithm == SlidingWindowLog && l.Limit > MaxSlidingWindowLogLimit {
		errs = append(errs, invalidf("sliding_window_log supports limits up to %d; use sliding_window_counter or gcra for limit %d", MaxSlidingWindowLogLimit, l.Limit))
	}
	return errors.Join(errs...)
}

func algorithmList() string {
	var names []string
	for _, a := range Algorithms() {
		names = append(names, string(a))
	}
	return strings.Join(names, ", ")
}
