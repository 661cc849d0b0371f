package api

import "time"

// Algorithm names, as they appear in limits, decisions and counters.
const (
	AlgorithmSlidingWindowLog     = "sliding_window_log"
	AlgorithmSlidingWindowCounter = "sliding_window_counter"
	AlgorithmFixedWindow          = "fixed_window"
	AlgorithmGCRA                 = "gcra"
)

// Node states reported by GET /api/v1/nodes.
const (
	// NodeUp is a node whose heartbeat is fresh and that answers checks.
	NodeUp = "up"
	// NodeDraining is a live node asked to drain: it answers checks with 503
	// and fails /readyz, usually before maintenance. The node applies a drain
	// requested through another node within one sync interval.
	NodeDraining = "draining"
	// NodeDown is a node that stopped cleanly or whose last heartbeat is older
	// than the down threshold. It stays listed for a retention period.
	NodeDown = "down"
)

// Limits on request contents enforced by the server.
const (
	// MaxKeyBytes is the longest accepted key, in bytes.
	MaxKeyBytes = 256
	// MaxBodyBytes is the largest accepted request body, in bytes.
	MaxBodyBytes = 64 << 10
	// MaxReasonBytes is the longest accepted block reason, in bytes.
	MaxReasonBytes = 1024
)

// CheckRequest is the body of POST /v1/check.
type CheckRequest struct {
	// Key identifies what is limited, for example "user:42".
	Key string `json:"key"`
	// Cost is how many units this request consumes. Zero in Go means "not
	// set" and is sent as an omitted field, which the server reads as 1.
	Cost int64 `json:"cost,omitempty"`
}

// MaxBatch is the most checks one POST /v1/check:batch carries.
const MaxBatch = 1000

// CheckBatch is the body of POST /v1/check:batch: several checks in one
// request, each decided on its own, as if sent to /v1/check.
type CheckBatch struct {
	Checks []CheckRequest `json:"checks"`
}

// BatchDecisions is the body of a 200 answer to POST /v1/check:batch: one
// decision per check, in order.
type BatchDecisions struct {
	Decisions []Decision `json:"decisions"`
}

// Decision is the body of a /v1/check response: 200 when allowed, 429 when
// denied or blocked, and 200 with Degraded set when Redis could not be reached
// and the node fails open.
type Decision struct {
	Allowed bool   `json:"allowed"`
	Key     string `json:"key"`
	// Limit is the configured limit applied to the key.
	Limit int64 `json:"limit"`
	// Remaining is the number of units still available after this decision.
	Remaining int64 `json:"remaining"`
	// WindowMS is the configured window in milliseconds.
	WindowMS  int64  `json:"window_ms"`
	Algorithm string `json:"algorithm"`
	// ResetAfterMS is the time until the key's quota is fully replenished, in
	// milliseconds.
	ResetAfterMS int64 `json:"reset_after_ms"`
	// RetryAfterMS is, for a denied request, the time until the same request
	// would be allowed, in milliseconds; 0 when allowed.
	RetryAfterMS int64 `json:"retry_after_ms"`
	// Blocked is set when the key is blocked by an operator.
	Blocked bool `json:"blocked,omitempty"`
	// Degraded is set when Redis could not be reached and the node allowed the
	// request because it is configured to fail open. The quota is then
	// unknown: Remaining reports the full limit, the reset fields 0, and no
	// RateLimit header fields are sent.
	Degraded bool `json:"degraded,omitempty"`
	// Node is the id of the node that decided.
	Node string `json:"node,omitempty"`
}

// Problem is an RFC 9457 application/problem+json error document.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	// Code is a stable machine-readable reason, one of the Code* constants.
	Code string `json:"code,omitempty"`
	// Instance is the request path.
	Instance string `json:"instance,omitempty"`
}

// Problem codes carried in [Problem.Code].
const (
	CodeBadRequest       = "bad_request"
	CodeUnauthorized     = "unauthorized"
	CodeNotFound         = "not_found"
	CodeDraining         = "draining"
	CodeRedisUnavailable = "redis_unavailable"
	CodeChaosDisabled    = "chaos_disabled"
	CodeInternal         = "internal"
)

// Node is one entry of GET /api/v1/nodes.
type Node struct {
	ID string `json:"id"`
	// Address is the base URL the node advertises for its HTTP API.
	Address string `json:"address"`
	// State is NodeUp, NodeDraining or NodeDown.
	State string `json:"state"`
	// LastHeartbeat is the Redis server time of the node's last heartbeat.
	LastHeartbeat time.Time `json:"last_heartbeat"`
	// HeartbeatAgeMS is the age of LastHeartbeat against the Redis server
	// time at the moment of the request, in milliseconds.
	HeartbeatAgeMS int64 `json:"heartbeat_age_ms"`
	// StartedAt is when the node process started (node wall clock).
	StartedAt time.Time `json:"started_at"`
	Version   string    `json:"version"`
}

// NodeList is the body of GET /api/v1/nodes.
type NodeList struct {
	Count int    `json:"count"`
	Nodes []Node `json:"nodes"`
}

// NodeAction is the body returned by POST /api/v1/nodes/{id}/drain and
// /undrain.
type NodeAction struct {
	ID       string `json:"id"`
	Draining bool   `json:"draining"`
}

// Counter is one key's counter as the answering node computes it, with the
// limit that node applies to the key.
type Counter struct {
	Key       string `json:"key"`
	Algorithm string `json:"algorithm"`
	Limit     int64  `json:"limit"`
	WindowMS  int64  `json:"window_ms"`
	// Count is the number of units used in the current window. For
	// sliding_window_counter it is the weighted estimate rounded up; for gcra
	// it is the units not yet replenished.
	Count     int64 `json:"count"`
	Remaining int64 `json:"remaining"`
	// TTLMS is the remaining time to live of the counter's Redis key in
	// milliseconds: -1 if the key has no TTL (a leak), -2 if it does not exist.
	TTLMS        int64 `json:"ttl_ms"`
	ResetAfterMS int64 `json:"reset_after_ms"`
	// Pattern is the limit pattern that matched the key ("" for the default).
	Pattern string `json:"pattern"`
	Blocked bool   `json:"blocked,omitempty"`
}

// CounterList is the body of GET /api/v1/counters.
type CounterList struct {
	Count    int       `json:"count"`
	Counters []Counter `json:"counters"`
	// Truncated is set when the scan stopped at its work bound or at the
	// requested limit before covering the whole keyspace; Cursor then resumes
	// it.
	Truncated bool   `json:"truncated"`
	Cursor    string `json:"cursor,omitempty"`
}

// CounterReset is the body returned by POST /api/v1/counters/{key}/reset.
type CounterReset struct {
	Key string `json:"key"`
	// Deleted is the number of Redis keys removed.
	Deleted int64 `json:"deleted"`
}

// LimitSpec is the body of PUT /api/v1/limits/{pattern}.
type LimitSpec struct {
	Limit     int64  `json:"limit"`
	WindowMS  int64  `json:"window_ms"`
	Algorithm string `json:"algorithm"`
}

// Limit is a configured limit.
type Limit struct {
	// Pattern is an exact key, or a prefix followed by "*". "*" alone matches
	// every key and so overrides the node's built-in default.
	Pattern   string    `json:"pattern"`
	Limit     int64     `json:"limit"`
	WindowMS  int64     `json:"window_ms"`
	Algorithm string    `json:"algorithm"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// LimitList is the body of GET /api/v1/limits: the limits the answering node
// currently enforces.
type LimitList struct {
	Count  int     `json:"count"`
	Limits []Limit `json:"limits"`
	// Default is the node's built-in default, applied to keys no pattern
	// matches.
	Default Limit `json:"default"`
	// Version is the configuration version the node has applied; it grows by
	// one with every change, so equal versions across nodes mean equal limits.
	Version int64 `json:"version"`
}

// LimitDeleted is the body returned by DELETE /api/v1/limits/{pattern}.
type LimitDeleted struct {
	Pattern string `json:"pattern"`
	Version int64  `json:"version"`
}

// BlockSpec is the body of PUT /api/v1/blocks/{key}.
type BlockSpec struct {
	// TTLMS is how long the block lasts, in milliseconds.
	TTLMS  int64  `json:"ttl_ms"`
	Reason string `json:"reason"`
}

// Block is an active block.
type Block struct {
	Key       string    `json:"key"`
	Reason    string    `json:"reason"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// TTLMS is the remaining time of the block in milliseconds.
	TTLMS int64 `json:"ttl_ms"`
}

// BlockList is the body of GET /api/v1/blocks.
type BlockList struct {
	Count  int     `json:"count"`
	Blocks []Block `json:"blocks"`
}

// BlockDeleted is the body returned by DELETE /api/v1/blocks/{key}.
type BlockDeleted struct {
	Key string `json:"key"`
}

// HotKeys is the body of GET /api/v1/hotkeys: the answering node's busiest
// keys over the last WindowMS, in buckets of BucketMS.
//
// Bucket start times are unix milliseconds aligned to BucketMS, taken from the
// decision time (the Redis server clock unless the node runs with the node
// clock), so buckets from different nodes line up: to merge nodes, sum the
// buckets with equal key and StartMS.
type HotKeys struct {
	Node     string `json:"node"`
	BucketMS int64  `json:"bucket_ms"`
	WindowMS int64  `json:"window_ms"`
	// FromMS and ToMS bound the reported buckets: FromMS <= StartMS < ToMS.
	FromMS int64    `json:"from_ms"`
	ToMS   int64    `json:"to_ms"`
	Keys   []HotKey `json:"keys"`
	// Untracked counts checks in the window that were not attributed to a
	// key because a bucket reached its key cap.
	Untracked int64 `json:"untracked"`
}

// HotKey is one key's traffic in the hot keys window.
type HotKey struct {
	Key     string `json:"key"`
	Checks  int64  `json:"checks"`
	Allowed int64  `json:"allowed"`
	Denied  int64  `json:"denied"`
	// Buckets holds the non-empty buckets, oldest first.
	Buckets []HotKeyBucket `json:"buckets"`
}

// HotKeyBucket is one key's traffic in one bucket.
type HotKeyBucket struct {
	// StartMS is the bucket's start in unix milliseconds.
	StartMS int64 `json:"start_ms"`
	Checks  int64 `json:"checks"`
	Allowed int64 `json:"allowed"`
	// Denied includes blocked checks.
	Denied int64 `json:"denied"`
}

// Chaos is the body of POST /api/v1/chaos and of its responses. It is only
// served by nodes started with chaos hooks enabled.
type Chaos struct {
	// ClockSkewMS shifts the node clock; it affects decisions only when the
	// node uses the node clock.
	ClockSkewMS int64 `json:"clock_skew_ms"`
	// RedisDelayMS delays every Redis call of the node, inside its timeout.
	RedisDelayMS int64 `json:"redis_delay_ms"`
}

// Status is the body of GET /api/v1/status: the answering node's own view.
type Status struct {
	Node     string `json:"node"`
	Version  string `json:"version"`
	State    string `json:"state"`
	RedisUp  bool   `json:"redis_up"`
	Draining bool   `json:"draining"`
	// LimitsVersion is the configuration version the node has applied.
	LimitsVersion int64 `json:"limits_version"`
	// ClockOffsetMS is the node clock (with any chaos skew) minus the Redis
	// server clock at the last heartbeat, in milliseconds.
	ClockOffsetMS float64   `json:"clock_offset_ms"`
	Clock         string    `json:"clock"`
	OnRedisError  string    `json:"on_redis_error"`
	StartedAt     time.Time `json:"started_at"`
}
