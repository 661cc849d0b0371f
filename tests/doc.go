// Package tests holds Operator's end-to-end tests, which run several
// components together on a real embedded NATS JetStream, and the tests that
// guard the architecture (which packages may import which). It has no code
// of its own beyond tests and is imported by nothing.
package tests
