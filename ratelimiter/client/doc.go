// Package client is the Go client of the rate limiter's HTTP API: the check
// endpoint and every management endpoint under /api/v1.
//
// A [Client] takes a base URL and an *http.Client and a context on every
// method. Errors from the server are [*Error] values that carry the status
// code and the problem document's detail; errors.Is matches them against
// [ErrBadRequest], [ErrUnauthorized], [ErrNotFound] and [ErrUnavailable].
// Mutating calls send the Idempotency-Key set with [WithIdempotencyKey].
//
// The package imports only the standard library and ratelimiter/api. It must
// not import the server (package ratelimiter), Redis or Prometheus, so that
// callers such as actuators depend on the client alone.
package client
