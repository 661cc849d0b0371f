package actuators

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the actuator's Prometheus metrics. Built unregistered when the
// Registerer is nil, so they still work (tests read them).
type metrics struct {
	requests      *prometheus.CounterVec   // subject, action, outcome
	execution     *prometheus.HistogramVec // subject, action
	verifications *prometheus.CounterVec   // subject, action, verified
	budget        *prometheus.GaugeVec     // subject
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "operator_actuator_requests_total",
			Help: "Action requests decided, by subject, action and outcome (succeeded, failed, rejected, skipped, awaiting_approval).",
		}, []string{"subject", "action", "outcome"}),
		execution: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "operator_actuator_execution_duration_seconds",
			Help:    "Duration of one execution attempt of an action against its subject's API.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"subject", "action"}),
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "operator_actuator_verifications_total",
			Help: "Verifications of succeeded actions, by subject, action and result (verified true or false).",
		}, []string{"subject", "action", "verified"}),
		budget: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "operator_actuator_budget_remaining",
			Help: "Actions a subject's budget still allows in the current window, as last seen by this worker.",
		}, []string{"subject"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.execution, m.verifications, m.budget)
	}
	return m
}

func (m *metrics) verified(subject, action string, ok bool) {
	m.verifications.WithLabelValues(subject, action, strconv.FormatBool(ok)).Inc()
}
