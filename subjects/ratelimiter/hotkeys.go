package ratelimiter

import (
	"sort"

	"github.com/operator-dev/operator/ratelimiter/api"
)

// traffic is one key's checks merged across nodes, by bucket start.
type traffic struct {
	key     string
	buckets map[int64]api.HotKeyBucket
	checks  int64
}

// hotTraffic merges the hot keys of several nodes: buckets with the same key
// and start add up (their starts are aligned to the Redis clock).
type hotTraffic struct {
	bucketMS int64
	// curMS is the start of the newest (still filling) bucket.
	curMS int64
	keys  map[string]*traffic
}

func mergeHotKeys(all []api.HotKeys) hotTraffic {
	ht := hotTraffic{bucketMS: 1000, keys: map[string]*traffic{}}
	var to int64
	for _, hk := range all {
		if hk.BucketMS > 0 {
			ht.bucketMS = hk.BucketMS
		}
		to = max(to, hk.ToMS)
		for _, k := range hk.Keys {
			t := ht.keys[k.Key]
			if t == nil {
				t = &traffic{key: k.Key, buckets: map[int64]api.HotKeyBucket{}}
				ht.keys[k.Key] = t
			}
			t.checks += k.Checks
			for _, b := range k.Buckets {
				m := t.buckets[b.StartMS]
				m.StartMS = b.StartMS
				m.Checks += b.Checks
				m.Allowed += b.Allowed
				m.Denied += b.Denied
				t.buckets[b.StartMS] = m
			}
		}
	}
	if to > 0 {
		ht.curMS = (to - 1) / ht.bucketMS * ht.bucketMS
	}
	return ht
}

// busiest returns the keys by total checks, most first, at most n.
func (ht hotTraffic) busiest(n int) []*traffic {
	out := make([]*traffic, 0, len(ht.keys))
	for _, t := range ht.keys {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].checks != out[j].checks {
			return out[i].checks > out[j].checks
		}
		return out[i].key < out[j].key
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// windowBuckets is how many whole buckets fit in a window. Sums over that
// many aligned buckets count the checks of a real span no longer than the
// window, so a sum above the limit proves over-admission: there are no false
// alarms from bucket granularity.
func (ht hotTraffic) windowBuckets(windowMS int64) int64 {
	return max(1, windowMS/ht.bucketMS)
}

// allowedMaxWindow is the most checks allowed in any span of whole buckets
// that fits in windowMS and starts at or after sinceMS (unix ms; 0: any).
func (ht hotTraffic) allowedMaxWindow(t *traffic, windowMS, sinceMS int64) int64 {
	if t == nil {
		return 0
	}
	n := ht.windowBuckets(windowMS)
	var best int64
	for start := range t.buckets {
		if start < sinceMS {
			continue
		}
		var sum int64
		for i := int64(0); i < n; i++ {
			sum += t.buckets[start+i*ht.bucketMS].Allowed
		}
		best = max(best, sum)
	}
	return best
}

// allowedLastWindow is the checks allowed in the newest span of whole
// buckets that fits in windowMS, the filling bucket included.
func (ht hotTraffic) allowedLastWindow(t *traffic, windowMS int64) int64 {
	if t == nil {
		return 0
	}
	n := ht.windowBuckets(windowMS)
	var sum int64
	for i := int64(0); i < n; i++ {
		sum += t.buckets[ht.curMS-i*ht.bucketMS].Allowed
	}
	return sum
}

// rateBuckets is how many complete buckets rates are averaged over.
const rateBuckets = 5

// rates returns checks/s and denied/s over the last complete buckets.
func (ht hotTraffic) rates(t *traffic) (checks, denied float64) {
	if t == nil {
		return 0, 0
	}
	var c, d int64
	for i := int64(1); i <= rateBuckets; i++ {
		b := t.buckets[ht.curMS-i*ht.bucketMS]
		c += b.Checks
		d += b.Denied
	}
	secs := float64(rateBuckets*ht.bucketMS) / 1000
	return float64(c) / secs, float64(d) / secs
}
