// Package ratelimiter is the rate limiter's part of the actuator: its action
// catalog (actions.yaml, embedded; see [Catalog]) and the [Executor] that
// runs those actions through the rate limiter's management API.
//
// It owns what each action means for the rate limiter (which endpoint, which
// body, which guard, such as never draining the last node up) and how the
// API's errors are classified: 5xx, 429, timeouts and unreachable nodes are
// transient, every other 4xx is permanent.
//
// It imports the generic actuator, the contracts in schemas and the client
// (ratelimiter/client and ratelimiter/api) only: never the rate limiter
// server (package ratelimiter), Redis, NATS or internal/bus, and no code
// path in it runs a process or a shell.
package ratelimiter
