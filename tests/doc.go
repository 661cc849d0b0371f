// Package tests holds Operator's end-to-end tests: every fault scenario run
// against a real redis-server and an embedded NATS server with the whole
// pipeline, replays of recorded scenario runs against golden outputs, and the
// import rules of the core packages.
package tests
