// Package pipeline assembles Operator's components over a bus: it runs the
// observers, the evaluator and the actuator as their commands do, and puts
// the whole pipeline in one process for `operator up`, `operator demo` and
// the end-to-end tests.
//
// It sits on top of everything else and is wiring: the logic lives in the
// packages it assembles. It knows no subject by name: it is given
// [subjects.Deployment] values and loops over them.
package pipeline
