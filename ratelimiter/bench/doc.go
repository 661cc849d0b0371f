// Package bench drives load against rate limiter nodes over HTTP/1.1
// keep-alive and reports decisions per second, latency percentiles and
// errors. It is the engine of "operator bench ratelimiter".
//
// A run is bounded by its duration and its context: every loop stops by
// itself. The package imports only the standard library and ratelimiter/api;
// it must not import the server package, so it measures the service from
// the outside like any client.
package bench
