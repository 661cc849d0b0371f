package ratelimiter

import (
	"fmt"
	"io"
	"math"
	"sort"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metric names read from every node's /metrics.
const (
	metricChecks        = "ratelimiter_checks_total"
	metricCheckDuration = "ratelimiter_check_duration_seconds"
	metricRedisDuration = "ratelimiter_redis_duration_seconds"
	metricRedisUp       = "ratelimiter_redis_up"
	metricDraining      = "ratelimiter_draining"
	metricClockOffset   = "ratelimiter_clock_offset_seconds"
)

// histogram is a cumulative Prometheus histogram: counts[i] observations
// were ≤ bounds[i]; the last bound is +Inf.
type histogram struct {
	bounds []float64
	counts []float64
}

// scrape is what one node's /metrics said at one time.
type scrape struct {
	check       histogram
	redis       histogram
	checks      map[string]float64 // by result, summed over algorithms
	redisUp     bool
	draining    bool
	clockOffset float64 // seconds, node clock minus Redis TIME
	hasOffset   bool
}

func parseScrape(r io.Reader) (scrape, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		return scrape{}, fmt.Errorf("parse metrics: %w", err)
	}
	s := scrape{checks: map[string]float64{}}
	if mf := mfs[metricCheckDuration]; mf != nil {
		s.check = sumHistograms(mf)
	} else {
		return scrape{}, fmt.Errorf("no %s in the node's metrics", metricCheckDuration)
	}
	if mf := mfs[metricRedisDuration]; mf != nil {
		s.redis = sumHistograms(mf)
	}
	if mf := mfs[metricChecks]; mf != nil {
		for _, m := range mf.GetMetric() {
			s.checks[label(m, "result")] += m.GetCounter().GetValue()
		}
	}
	s.redisUp = gauge(mfs[metricRedisUp]) == 1
	s.draining = gauge(mfs[metricDraining]) == 1
	if mf := mfs[metricClockOffset]; mf != nil {
		s.clockOffset, s.hasOffset = gauge(mf), true
	}
	return s, nil
}

func label(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

func gauge(mf *dto.MetricFamily) float64 {
	if mf == nil || len(mf.GetMetric()) == 0 {
		return math.NaN()
	}
	return mf.GetMetric()[0].GetGauge().GetValue()
}

// sumHistograms adds the series of a histogram family bucket by bucket (the
// equivalent of sum by (le)).
func sumHistograms(mf *dto.MetricFamily) histogram {
	byBound := map[float64]float64{}
	for _, m := range mf.GetMetric() {
		h := m.GetHistogram()
		hasInf := false
		for _, b := range h.GetBucket() {
			byBound[b.GetUpperBound()] += float64(b.GetCumulativeCount())
			hasInf = hasInf || math.IsInf(b.GetUpperBound(), 1)
		}
		if !hasInf { // the +Inf bucket is implicit in some encodings
			byBound[math.Inf(1)] += float64(h.GetSampleCount())
		}
	}
	var h histogram
	for b := range byBound {
		h.bounds = append(h.bounds, b)
	}
	sort.Float64s(h.bounds)
	for _, b := range h.bounds {
		h.counts = append(h.counts, byBound[b])
	}
	return h
}

// delta returns cur - prev bucket by bucket, and false when the histograms
// are not comparable (different buckets, or a counter reset after a restart).
func delta(prev, cur histogram) (histogram, bool) {
	if len(prev.bounds) != len(cur.bounds) {
		return histogram{}, false
	}
	d := histogram{bounds: cur.bounds, counts: make([]float64, len(cur.counts))}
	for i := range cur.counts {
		if prev.bounds[i] != cur.bounds[i] || cur.counts[i] < prev.counts[i] {
			return histogram{}, false
		}
		d.counts[i] = cur.counts[i] - prev.counts[i]
	}
	return d, true
}

// quantile estimates the q-quantile of a cumulative histogram by linear
// interpolation inside the bucket where it falls, as Prometheus's
// histogram_quantile does. With no observations it returns 0; in the +Inf
// bucket it returns the highest finite bound.
func quantile(q float64, h histogram) float64 {
	n := len(h.counts)
	if n == 0 || h.counts[n-1] == 0 {
		return 0
	}
	rank := q * h.counts[n-1]
	for i, c := range h.counts {
		if c < rank {
			continue
		}
		if math.IsInf(h.bounds[i], 1) {
			if i == 0 {
				return 0
			}
			return h.bounds[i-1]
		}
		lower, below := 0.0, 0.0
		if i > 0 {
			lower, below = h.bounds[i-1], h.counts[i-1]
		}
		inBucket := c - below
		if inBucket == 0 {
			return h.bounds[i]
		}
		return lower + (h.bounds[i]-lower)*(rank-below)/inBucket
	}
	return h.bounds[n-1]
}
