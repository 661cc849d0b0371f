package bench

import (
	"math/bits"
	"time"
)

// histogram records latencies in microseconds with about 0.1% relative
// precision: values below 2048 us have their own bucket, larger ones share
// 1024 buckets per power of two. It is not safe for concurrent use; each
// worker owns one and Run merges them.
type histogram struct {
	counts []uint64
	total  uint64
	max    time.Duration
}

const (
	linearBuckets = 2048
	subBuckets    = 1024
	maxShift      = 20
)

func newHistogram() *histogram {
	return &histogram{counts: make([]uint64, linearBuckets+maxShift*subBuckets)}
}

func bucketOf(us uint64) int {
	if us < linearBuckets {
		return int(us)
	}
	shift := bits.Len64(us) - 11 // >= 1; us>>shift is in [1024, 2048)
	if shift > maxShift {
		shift = maxShift
		us = (linearBuckets << shift) - 1
	}
	return linearBuckets + (shift-1)*subBuckets + int(us>>shift) - subBuckets
}

// lowerBound is the smallest value, in microseconds, of bucket i.
func lowerBound(i int) uint64 {
	if i < linearBuckets {
		return uint64(i)
	}
	i -= linearBuckets
	shift := i/subBuckets + 1
	return uint64(i%subBuckets+subBuckets) << shift
}

func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d.Microseconds()))]++
	h.total++
	h.max = max(h.max, d)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.max = max(h.max, o.max)
}

// quantile returns the latency at quantile q in [0, 1]: the lower bound of
// the bucket holding the rank, so it never overstates.
func (h *histogram) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q*float64(h.total-1)) + 1
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(lowerBound(i)) * time.Microsecond
		}
	}
	return h.max
}
