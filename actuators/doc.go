// Package actuators is Operator's generic action worker: it turns action
// requests into calls to a subject's API, safely, at most once, and then
// checks that the action worked. It knows nothing about any subject.
//
// It owns the action catalog format (actions.yaml, see [ParseCatalog]) and
// its load-time checks, which refuse a bad catalog with file, line and
// reason (verify expressions are compiled with internal/expr and checked
// against the observation envelope, the subject's state schema and the
// params schema, as rule expressions are); the safety gates every request passes in a fixed order (catalog
// and params validation, kill switch, mode, precondition, per-target
// cooldown and per-subject budget, approval, idempotency ledger); the
// execution with a timeout and retries for transient errors only; the
// action.completed and action.verified events; and the control records in
// the operator_control bucket that people change with `operator control`,
// `operator approve` and `operator reject` ([SetKillSwitch], [Decide]).
//
// A subject plugs in with a [Subject]: its [Catalog] and an [Executor] that
// calls its API, both from the subject's folder (subjects/<name>). The
// pipeline package builds them from its deployments and adapts internal/bus
// to the small interfaces declared here ([Bus], [ControlStore]) and to the
// ports shared with the other stages ([schemas.Store], [schemas.Publisher]).
// This package must never import a subject (subjects/*, ratelimiter),
// observers, internal/bus or NATS, and no code path in it runs a process or
// a shell: TestNoShell checks its whole import graph.
//
// Time: the gates take the time as an argument. The only wall-clock reads
// are in the consumer loops ([Worker.Run] and its handlers), which stamp
// each request as it arrives, time executions and bound verifications.
package actuators
