// Package ratelimiter is Operator's rate limiter subject: a multi-node,
// Redis-backed rate limiting service that is also usable as a Go library.
//
// It owns the decision algorithms (one atomic Lua script each, see
// [Algorithm]), the per-node cache of configured limits, blocks, the node
// registry with heartbeats, hot key tracking, Prometheus metrics, chaos hooks
// and the HTTP API ([NewHandler]) with the check endpoint and the management
// API under /api/v1. The JSON shapes live in package ratelimiter/api and the Go
// client in ratelimiter/client.
//
// # Redis layout
//
// Every key lives under "ratelimit:" and carries a TTL; keys that belong
// together share a {hash tag} so every script touches one Redis Cluster slot:
//
//	ratelimit:{<key>}:swl        sorted set, sliding_window_log units
//	ratelimit:{<key>}:swl:seq    member sequence of the log (outlives it by one window)
//	ratelimit:{<key>}:swc        hash, sliding_window_counter
//	ratelimit:{<key>}:fw         hash, fixed_window
//	ratelimit:{<key>}:gcra       hash, gcra debt
//	ratelimit:{<key>}:block      string, the block's end in Redis time (us); TTL = the block
//	ratelimit:{config}:limits    hash pattern -> limit JSON
//	ratelimit:{config}:version   counter bumped by every limit change
//	ratelimit:{config}:blocks    hash key -> block metadata, for listing
//	ratelimit:{nodes}:info       hash node id -> node JSON
//	ratelimit:{nodes}:hb         hash node id -> last heartbeat (Redis time, us)
//	ratelimit:{nodes}:drain      hash node id -> drain requested
//
// Counters expire when their window has passed. The configuration and registry
// hashes have TTLs too, which every running node renews at each sync
// ([Config.ConfigRetention], [Config.NodeRetention]): they persist as long as
// any node runs, and a keyspace abandoned by every node cleans itself up.
// Blocks expire with their own TTL and the block index with the longest block.
//
// # Time
//
// Decisions use the Redis server clock (TIME inside the script) so that nodes
// with skewed clocks still agree. With [ClockNode] the node passes its own
// clock, shifted by the chaos clock skew, which is how the clock skew scenario
// is reproduced.
//
// # Imports
//
// This package must not import observers/, evaluators/, actuators/,
// internal/bus or schemas/: it is a subject Operator watches, not part of
// Operator's pipeline.
package ratelimiter
