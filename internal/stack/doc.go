// Package stack assembles Operator's components over a bus: it runs the
// evaluator, the observers and the actuator as their commands do, starts rate
// limiter nodes in-process, and puts the whole pipeline in one process for
// `operator up`, `operator demo` and the end-to-end tests.
//
// It is wiring: the logic lives in the packages it assembles. Only this
// package and cmd/operator may import both the core and the subjects.
package stack
