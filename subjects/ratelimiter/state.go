package ratelimiter

// State is the rate limiter state of one observation, as described by
// schemas/ratelimiter.state.v1.json.
type State struct {
	Redis   RedisState `json:"redis"`
	Nodes   []Node     `json:"nodes"`
	Keys    []Key      `json:"keys"`
	Limits  []Limit    `json:"limits"`
	Blocks  []Block    `json:"blocks"`
	Summary Summary    `json:"summary"`
}

// RedisState is what the observer measured of Redis itself.
type RedisState struct {
	Reachable      bool           `json:"reachable"`
	PingMS         float64        `json:"ping_ms"`
	KeysWithoutTTL KeysWithoutTTL `json:"keys_without_ttl"`
}

// KeysWithoutTTL counts limiter keys that would never expire.
type KeysWithoutTTL struct {
	Count    int          `json:"count"`
	Sample   []StaleRedis `json:"sample"`
	Scanned  int          `json:"scanned"`
	Complete bool         `json:"complete"`
}

// StaleRedis is one Redis key without a TTL and the limiter key it holds.
type StaleRedis struct {
	RedisKey string `json:"redis_key"`
	Key      string `json:"key"`
}

// Node is one rate limiter node.
type Node struct {
	ID             string  `json:"id"`
	Address        string  `json:"address"`
	State          string  `json:"state"`
	Reachable      bool    `json:"reachable"`
	RedisUp        bool    `json:"redis_up"`
	Draining       bool    `json:"draining"`
	CheckP99MS     float64 `json:"check_p99_ms"`
	RedisP99MS     float64 `json:"redis_p99_ms"`
	ChecksPerS     float64 `json:"checks_per_s"`
	DeniedPerS     float64 `json:"denied_per_s"`
	ClockOffsetMS  float64 `json:"clock_offset_ms"`
	HeartbeatAgeMS float64 `json:"heartbeat_age_ms"`
}

// Key is one hot or limited key.
type Key struct {
	Key               string             `json:"key"`
	Limit             int64              `json:"limit"`
	WindowMS          int64              `json:"window_ms"`
	Algorithm         string             `json:"algorithm"`
	CountByNode       map[string]float64 `json:"count_by_node"`
	Drift             float64            `json:"drift"`
	AllowedMaxWindow  int64              `json:"allowed_max_window"`
	AllowedLastWindow int64              `json:"allowed_last_window"`
	ChecksPerS        float64            `json:"checks_per_s"`
	DeniedPerS        float64            `json:"denied_per_s"`
	TTLMS             int64              `json:"ttl_ms"`
	Blocked           bool               `json:"blocked"`
}

// Limit is a configured limit.
type Limit struct {
	Pattern   string `json:"pattern"`
	Limit     int64  `json:"limit"`
	WindowMS  int64  `json:"window_ms"`
	Algorithm string `json:"algorithm"`
}

// Block is an active block.
type Block struct {
	Key    string `json:"key"`
	TTLMS  int64  `json:"ttl_ms"`
	Reason string `json:"reason"`
}

// Summary holds figures across nodes and keys.
type Summary struct {
	NodesTotal          int     `json:"nodes_total"`
	NodesUp             int     `json:"nodes_up"`
	KeysTracked         int     `json:"keys_tracked"`
	MedianKeyChecksPerS float64 `json:"median_key_checks_per_s"`
}
