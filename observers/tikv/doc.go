// Package tikv observes a TiKV cluster through PD's HTTP API and, when one is
// configured, Prometheus: every store (Tombstones included) with its state,
// heartbeat age, sizes, leader and region counts, gRPC p99 and evict-leader
// hold; a summary of the regions with down, missing, pending and offline
// peers; PD's members and their health; PD's schedule configuration and
// running operators. It publishes numbers and facts in the shape of
// schemas/tikv.state.v1.json through the generic runtime in observers, never
// verdicts; the rule set beside it (rules.yaml, tested by rules_test.yaml,
// both embedded, see [Rules]) judges them.
//
// One poll makes one call per PD endpoint and one query per metric, all at
// once, whatever the size of the cluster: there is no per-store call and no
// full /regions scan. A source that cannot be read is listed in the
// observation's errors and its fields are left out of the state, so a rule
// that reads them fails instead of taking the gap for a healthy value (see
// [Observer]).
//
// This package must not import evaluators, actuators (generic or any
// subject's), ratelimiter, nor NATS; it reaches PD through internal/pdapi and
// Prometheus through internal/tikvmetrics.
package tikv
