// Package scenario injects real faults into a running rate limiter deployment and
// follows what Operator does about them: the violation that fires (time to
// detect), the action requested, its outcome and verification, and the
// resolution (time to resolve). `operator demo` and the end-to-end tests run
// the same scenarios; `operator chaos` injects their faults by hand.
//
// Faults go through the nodes' chaos hooks and plain Redis commands, or, for
// a sandbox in this process, through its own controls (stopping a node or
// Redis). Nothing needs root.
package scenario
