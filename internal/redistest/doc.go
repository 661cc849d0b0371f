// Package redistest starts Redis servers for tests: a real redis-server
// process on a loopback port in the test's temporary directory, or miniredis
// served on a loopback port. It is for tests only and imports nothing of
// Operator.
package redistest
