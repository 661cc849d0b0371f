// Package ratelimiter is the rate limiter subject: everything Operator knows
// about watching and repairing a deployment of the rate limiter service
// (package ratelimiter at the repository root), exported as one value,
// [Subject].
//
// It holds:
//   - the observer ([Observer]): every node's registry entry, status,
//     /metrics and hot keys, the counters of the hot and limited keys as each
//     node computes them, the limits and blocks, and Redis itself (PING
//     latency, keys without a TTL), published in the shape of
//     schemas/ratelimiter.state.v1.json: numbers and facts, never verdicts;
//   - the rule set that judges them (rules.yaml, tested by rules_test.yaml);
//   - the action catalog (actions.yaml) and the [Executor] that runs those
//     actions through the management API, with what each action means
//     (which endpoint, which guard, such as never draining the last node up)
//     and how the API's errors are classified: 5xx, 429, timeouts and
//     unreachable nodes are transient, every other 4xx is permanent;
//   - the [Sandbox]: a deployment run in this process (Redis and nodes) for
//     `operator up`, the demo scenarios and the end-to-end tests.
//
// The observer and the executor reach the nodes only through their HTTP API
// (ratelimiter/client, /metrics) and Redis directly; only the sandbox starts
// nodes from the service package. No code path here runs a process or a
// shell, and the package never imports NATS.
package ratelimiter
