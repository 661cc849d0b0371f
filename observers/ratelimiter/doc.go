// Package ratelimiter observes Operator's rate limiter subject: every node's
// registry entry, status, /metrics and hot keys, the counters of the hot and
// limited keys as each node computes them, the limits and blocks, and Redis
// itself (PING latency, keys without a TTL). It publishes numbers and facts in
// the shape of schemas/ratelimiter.state.v1.json; the rule set beside it
// (rules.yaml) judges them.
//
// It talks to the nodes only through their HTTP API (ratelimiter/client and
// /metrics) and to Redis directly; it must not import the ratelimiter service
// package itself, nor evaluators or actuators.
package ratelimiter
