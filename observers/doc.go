// Package observers is the generic observer runtime: it polls a Source on an
// interval with jitter and a per-poll timeout, wraps what it found in an
// io.operator.observation.v1 event and publishes it asynchronously.
//
// Observers measure; evaluators judge. A Source returns numbers and facts,
// never verdicts, and when part of the subject cannot be read it returns the
// rest with the failure listed in Errors rather than nothing.
//
// This package must never import a subject package (observers/<subject>,
// actuators/<subject>, ratelimiter) nor NATS; the bus satisfies Publisher.
package observers
