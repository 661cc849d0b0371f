package ratelimiter

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
)

// Check results, the values of the result label of ratelimiter_checks_total.
const (
	resultAllowed  = "allowed"
	resultDenied   = "denied"
	resultBlocked  = "blocked"
	resultDegraded = "degraded" // Redis failed, allowed because the node fails open
	resultError    = "error"    // Redis failed, refused because the node fails closed
)

// Redis operations, the values of the op label of
// ratelimiter_redis_duration_seconds.
const (
	opCheck     = "check"
	opPeek      = "peek"
	opSync      = "sync"
	opLoad      = "load_limits"
	opHeartbeat = "heartbeat"
	opAdmin     = "admin"
	opPing      = "ping"
)

// metrics are one node's Prometheus metrics. Every series carries a constant
// node label, so several nodes can feed one Prometheus.
type metrics struct {
	checks        *prometheus.CounterVec
	checkCounters map[string]map[Algorithm]prometheus.Counter // result -> algorithm
	checkDuration prometheus.Histogram
	redisDuration *prometheus.HistogramVec
	// redisDurations are redisDuration's observers by op, resolved once:
	// a decision does no label lookup.
	redisDurations map[string]prometheus.Observer
	redisErrors    *prometheus.CounterVec
	redisUp        prometheus.Gauge
	draining       prometheus.Gauge
	limitsVersion  prometheus.Gauge
	clockOffset    prometheus.Gauge
	limitErrors    prometheus.Counter
	overLimitHits  prometheus.Counter
	buildInfo      *prometheus.GaugeVec
}

// latencyBuckets suit sub-millisecond decisions up to the Redis timeout and
// beyond: 50 us to 2.5 s.
var latencyBuckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
}

// newMetrics builds the metrics and registers them with reg unless it is nil.
func newMetrics(reg prometheus.Registerer, node, version string) *metrics {
	labels := prometheus.Labels{"node": node}
	m := &metrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "ratelimiter_checks_total",
			Help:        "Rate limit decisions by result (allowed, denied, blocked, degraded, error) and algorithm.",
			ConstLabels: labels,
		}, []string{"result", "algorithm"}),
		checkDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "ratelimiter_check_duration_seconds",
			Help:        "Time to answer POST /v1/check, from request to response.",
			ConstLabels: labels,
			Buckets:     latencyBuckets,
		}),
		redisDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        "ratelimiter_redis_duration_seconds",
			Help:        "Duration of Redis round trips by operation, including failed ones.",
			ConstLabels: labels,
			Buckets:     latencyBuckets,
		}, []string{"op"}),
		redisErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "ratelimiter_redis_errors_total",
			Help:        "Failed Redis round trips by operation.",
			ConstLabels: labels,
		}, []string{"op"}),
		redisUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "ratelimiter_redis_up",
			Help:        "1 if the last Redis round trip of this node succeeded, else 0.",
			ConstLabels: labels,
		}),
		draining: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "ratelimiter_draining",
			Help:        "1 while this node is draining and refuses checks, else 0.",
			ConstLabels: labels,
		}),
		limitsVersion: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "ratelimiter_limits_version",
			Help:        "Version of the limit configuration this node applies; equal across nodes when they agree.",
			ConstLabels: labels,
		}),
		clockOffset: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "ratelimiter_clock_offset_seconds",
			Help:        "Node clock (with any chaos skew) minus the Redis server clock, measured at each heartbeat.",
			ConstLabels: labels,
		}),
		limitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "ratelimiter_limit_config_errors_total",
			Help:        "Stored limits this node skipped because they did not parse or validate.",
			ConstLabels: labels,
		}),
		overLimitHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "ratelimiter_over_limit_cache_hits_total",
			Help:        "Checks denied from the node's over-limit cache, without a Redis round trip (also counted in ratelimiter_checks_total).",
			ConstLabels: labels,
		}),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name:        "ratelimiter_build_info",
			Help:        "Always 1; labels carry the version and Go version of the node.",
			ConstLabels: labels,
		}, []string{"version", "goversion"}),
	}
	m.checkCounters = map[string]map[Algorithm]prometheus.Counter{}
	for _, r := range []string{resultAllowed, resultDenied, resultBlocked, resultDegraded, resultError} {
		m.checkCounters[r] = map[Algorithm]prometheus.Counter{}
		for _, a := range Algorithms() {
			m.checkCounters[r][a] = m.checks.WithLabelValues(r, string(a))
		}
	}
	m.redisDurations = map[string]prometheus.Observer{}
	for _, op := range []string{opCheck, opPeek, opSync, opLoad, opHeartbeat, opAdmin, opPing} {
		m.redisErrors.WithLabelValues(op)
		m.redisDurations[op] = m.redisDuration.WithLabelValues(op)
	}
	m.buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	m.redisUp.Set(1)
	if reg != nil {
		reg.MustRegister(m.checks, m.checkDuration, m.redisDuration, m.redisErrors, m.redisUp,
			m.draining, m.limitsVersion, m.clockOffset, m.limitErrors, m.overLimitHits, m.buildInfo)
	}
	return m
}

// countCheck counts one decision; the counters are resolved once, at start.
func (m *metrics) countCheck(result string, a Algorithm) {
	m.checkCounters[result][a].Inc()
}

// redisDurationOf returns the Redis duration observer of op.
func (m *metrics) redisDurationOf(op string) prometheus.Observer {
	if o, ok := m.redisDurations[op]; ok {
		return o
	}
	return m.redisDuration.WithLabelValues(op)
}
