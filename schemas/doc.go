// Package schemas holds Operator's event contracts: the Go types of every
// event's data, the JSON Schema (2020-12) files they are validated against,
// the CloudEvents type names, the JetStream stream names and the NATS subject
// builders.
//
// It does no I/O and must never import a subject package (observers/<subject>,
// actuators/<subject>, ratelimiter) nor anything that talks to NATS.
package schemas
