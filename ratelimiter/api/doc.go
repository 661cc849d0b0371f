// Package api holds the JSON shapes of the rate limiter's HTTP API: the check
// request and decision, the management resources under /api/v1 and the
// application/problem+json error document.
//
// It is shared by the server (package ratelimiter) and its Go client
// (package ratelimiter/client) so the two cannot drift apart. It holds plain
// data and constants only: it does no I/O and must not import anything but the
// standard library, so that callers of the client never pull in Redis or
// Prometheus.
package api
