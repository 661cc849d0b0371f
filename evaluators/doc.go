// Package evaluators is Operator's generic rule engine: it turns observations
// into violations and action requests for any subject, knowing nothing about
// any subject.
//
// The rule file format is package evaluators/rulefmt. This package
// compiles what it parses ([ParseRuleSet]) with internal/expr, whose
// load-time checks (CEL types, field paths against the subject's state
// schema, cost) refuse a bad rule set with file, line and reason. It owns
// the per-fingerprint alert state machine ([Step], with Prometheus alerting
// semantics), the [Engine] that keeps that state in a compare-and-swap
// key-value store and publishes the resulting events, offline [Replay], and
// the `operator rules test` runner ([RunTests]) that drives the same engine
// on a virtual clock.
//
// Time is event time: every transition takes the observation's ce-time as
// now. The only wall-clock reads in this package are in [Engine.Run], the
// consumer loop, which stamps the arrival of each observation and ticks the
// staleness check.
//
// The engine reaches the outside world through the ports the stages share
// ([schemas.Store], [schemas.Publisher]) and its own [Source]; internal/bus
// satisfies them. The rule file format is package rulefmt; the CEL it
// compiles is internal/expr, shared with the actuators' verify. This
// package must never import a subject (subjects/*, ratelimiter) nor NATS
// (nats.go, nats-server) directly.
package evaluators
