// Package tikvmetrics reads TiKV's metrics from Prometheus: gRPC p99
// latency, raft log lag, store size (available and capacity) and
// leader/region counts, per TiKV instance.
//
// Results are keyed by the Prometheus `instance` label, which for TiKV is
// the status address ("tikv0:20180"), the same as PD's store
// status_address: join on that, never on the store's gRPC address (:20160).
// Histogram quantiles are always taken over buckets summed by (le, instance),
// never over raw per-type, per-priority series. A NaN (a histogram with no
// traffic) or infinite sample is no data and is left out, never reported as
// a number.
//
// It imports github.com/prometheus/client_golang/api and its v1 API. It must
// not import any Operator package (schemas, bus, observers, evaluators,
// actuators, ratelimiter) nor PD's or TiKV's Go modules; joining metrics to
// PD's stores is the caller's work.
package tikvmetrics
