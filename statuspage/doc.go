// Package statuspage serves Operator's live status page: one HTML page with
// its script and style embedded (nothing loads from the network), its JSON
// API and a stream of server-sent events. It shows what fires and what is
// pending with the grace left, each episode's causal chain read from the
// streams' history (violation, action request, every gate's decision,
// completion, verification, resolution, diagnosis), the actions awaiting
// approval, the kill switch, and each watched instance's health and its
// subject's views.
//
// Reads are open; controls (approve, reject, kill switch) are POSTs of
// JSON with the ControlHeader, and the bearer token when one is set.
// Updates carry JetStream sequences: a [Cursor] names, per stream, the last
// message sent, so a client resumes exactly after it.
//
// It is generic: everything subject-specific comes from a subject's
// [subjects.View] declarations, and it imports no subject package. It
// reads the bus through internal/bus and changes it only through the
// actuators' own control functions.
package statuspage
