package bus

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/operator-dev/operator/schemas"
)

type metrics struct {
	published  *prometheus.CounterVec // stream, result (ok|duplicate|error)
	consumed   *prometheus.CounterVec // stream, consumer
	acked      *prometheus.CounterVec // stream, consumer
	naked      *prometheus.CounterVec // stream, consumer
	terminated *prometheus.CounterVec // stream, consumer, reason
	handleDur  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "operator_bus_published_total", Help: "Events published, by stream and result (ok, duplicate, error).",
		}, []string{"stream", "result"}),
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "operator_bus_consumed_total", Help: "Messages delivered to a consumer, including redeliveries.",
		}, []string{"stream", "consumer"}),
		acked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "operator_bus_acked_total", Help: "Messages acknowledged after successful handling.",
		}, []string{"stream", "consumer"}),
		naked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "operator_bus_naked_total", Help: "Messages negatively acknowledged for redelivery after a transient error.",
		}, []string{"stream", "consumer"}),
		terminated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "operator_bus_terminated_total", Help: "Messages terminated (never redelivered), by reason.",
		}, []string{"stream", "consumer", "reason"}),
		handleDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "operator_bus_handle_duration_seconds", Help: "Time spent handling one message.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"stream", "consumer"}),
	}
	if reg != nil {
		reg.MustRegister(m.published, m.consumed, m.acked, m.naked, m.terminated, m.handleDur)
	}
	return m
}

// streamOfSubject names the stream a subject lands in, for metric labels.
func streamOfSubject(s schemas.Subjects, subject string) string {
	for name, subs := range s.StreamSubjects() {
		for _, pattern := range subs {
			if strings.HasPrefix(subject, strings.TrimSuffix(pattern, ">")) {
				return name
			}
		}
	}
	return "none"
}
