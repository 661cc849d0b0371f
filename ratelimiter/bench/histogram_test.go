package bench

import (
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	h := newHistogram()
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * 10 * time.Microsecond) // 10 us .. 10 ms
	}
	cases := []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 5 * time.Millisecond},
		{0.99, 9900 * time.Microsecond},
		{0.999, 9990 * time.Microsecond},
		{0, 10 * time.Microsecond},
		{1, 10 * time.Millisecond},
	}
	for _, tc := range cases {
		got := h.quantile(tc.q)
		if d := got - tc.want; d < -tc.want/500 || d > 0 {
			t.Errorf("quantile(%v) = %s, want %s within 0.2%% below", tc.q, got, tc.want)
		}
	}
	if h.max != 10*time.Millisecond {
		t.Errorf("max = %s", h.max)
	}
}

func TestBucketBounds(t *testing.T) {
	for _, us := range []uint64{0, 1, 2047, 2048, 2049, 4095, 4096, 1 << 20, 123456789} {
		i := bucketOf(us)
		lo := lowerBound(i)
		if lo > us || (i+1 < len(newHistogram().counts) && lowerBound(i+1) <= us) {
			t.Errorf("value %d in bucket %d with lower bound %d, next %d", us, i, lo, lowerBound(i+1))
		}
	}
}
