// Package bus is Operator's JetStream plumbing and the only package that
// imports nats.go or nats-server. It connects to a NATS server or embeds one,
// declares Operator's streams, consumers and KV buckets explicitly, maps
// CloudEvents to NATS messages in binary content mode, publishes with
// deduplication, consumes with ack/nak/term, and records and replays streams
// as JSON lines.
//
// It exports Operator's words (publish, consume, KV compare-and-swap), not
// NATS's, so evaluators and actuators can be tested with small fakes. It must
// never import a subject package (observers/<subject>, actuators/<subject>,
// ratelimiter).
package bus
