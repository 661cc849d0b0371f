package diagnosis

import "github.com/prometheus/client_golang/prometheus"

// metrics are the diagnoser's Prometheus metrics; built unregistered when
// the Registerer is nil.
type metrics struct {
	diagnoses        *prometheus.CounterVec   // subject, mode, hypothesis
	duration         *prometheus.HistogramVec // subject, mode
	evidenceFailures *prometheus.CounterVec   // subject, evidence
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		diagnoses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "operator_diagnoses_total",
			Help: "Diagnoses published, by subject, mode (deterministic, llm) and top hypothesis (unknown when nothing fit).",
		}, []string{"subject", "mode", "hypothesis"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "operator_diagnosis_duration_seconds",
			Help:    "Time from receiving a violation to its diagnosis: gathering evidence and reasoning.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2, 5, 10, 30, 60},
		}, []string{"subject", "mode"}),
		evidenceFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "operator_diagnosis_evidence_failures_total",
			Help: "Evidence sources that could not be read (kept in the diagnosis as failed items), by subject and evidence id.",
		}, []string{"subject", "evidence"}),
	}
	if reg != nil {
		reg.MustRegister(m.diagnoses, m.duration, m.evidenceFailures)
	}
	return m
}
