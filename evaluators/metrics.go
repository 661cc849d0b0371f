package evaluators

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the evaluator's Prometheus metrics. They always exist, so the
// code never checks for nil; they are registered only when a Registerer is
// given.
type metrics struct {
	observations *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	ruleErrors   *prometheus.CounterVec
	violations   *prometheus.CounterVec
	actions      *prometheus.CounterVec
	conflicts    *prometheus.CounterVec
}

// Observation outcomes (label result of operator_evaluator_observations_total).
const (
	resultEvaluated  = "evaluated"
	resultOutOfOrder = "out_of_order"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		observations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "operator_evaluator_observations_total",
			Help: "Observations handled, by subject and result (evaluated, or out_of_order: older than the instance's newest and ignored).",
		}, []string{"subject", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "operator_evaluator_evaluation_duration_seconds",
			Help:    "Time to evaluate one observation against its rule set and apply the results, state store and publishing included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9),
		}, []string{"subject"}),
		ruleErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "operator_evaluator_rule_errors_total",
			Help: "Runtime errors of rule expressions (each failed evaluation of a rule counts once).",
		}, []string{"subject", "rule"}),
		violations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "operator_evaluator_violations_published_total",
			Help: "Violation events published (including republished ones, which JetStream deduplicates), by status.",
		}, []string{"subject", "status"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "operator_evaluator_action_requests_published_total",
			Help: "Action request events published, by action.",
		}, []string{"subject", "action"}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "operator_evaluator_cas_conflicts_total",
			Help: "Compare-and-swap conflicts on the state store (another worker wrote first; retried).",
		}, []string{"subject"}),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.observations, m.duration, m.ruleErrors, m.violations, m.actions, m.conflicts} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("register evaluator metrics: %w", err)
	}
	return m, nil
}
