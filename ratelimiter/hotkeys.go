package ratelimiter

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/operator-dev/operator/ratelimiter/api"
)

// Hot key tracking geometry: 60 buckets of one second.
const (
	hotBucket  = time.Second
	hotBuckets = 60
)

// hotKeys counts checks per key in one-second buckets over the last minute.
// Memory is bounded: each bucket tracks at most maxKeys distinct keys and
// counts the rest as untracked. It is safe for concurrent use.
type hotKeys struct {
	maxKeys int

	mu      sync.Mutex
	buckets [hotBuckets]bucket
	latest  int64 // newest bucket start recorded
}

type bucket struct {
	start     int64 // unix ms, a multiple of hotBucket; 0 when unused
	keys      map[string]*tally
	untracked int64
}

type tally struct{ checks, allowed, denied int64 }

func newHotKeys(maxKeys int) *hotKeys { return &hotKeys{maxKeys: maxKeys} }

// record counts one check of key at time at.
func (h *hotKeys) record(key string, allowed bool, at time.Time) {
	start := at.UnixMilli() - at.UnixMilli()%hotBucket.Milliseconds()
	i := (start / hotBucket.Milliseconds()) % hotBuckets
	if i < 0 {
		i += hotBuckets
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	b := &h.buckets[i]
	if b.start != start {
		if b.start > start {
			return // older than the ring holds
		}
		*b = bucket{start: start, keys: make(map[string]*tally, len(b.keys))}
		h.latest = max(h.latest, start)
	}
	t, ok := b.keys[key]
	if !ok {
		if len(b.keys) >= h.maxKeys {
			b.untracked++
			return
		}
		t = &tally{}
		b.keys[key] = t
	}
	t.checks++
	if allowed {
		t.allowed++
	} else {
		t.denied++
	}
}

// snapshot returns the top n keys by checks in the minute before now, or
// before the newest bucket if decisions run ahead of now (the Redis clock or a
// skewed node clock).
func (h *hotKeys) snapshot(now time.Time, n int) api.HotKeys {
	h.mu.Lock()
	ref := max(now.UnixMilli(), h.latest)
	h.mu.Unlock()
	to := ref - ref%hotBucket.Milliseconds() + hotBucket.Milliseconds()
	from := to - hotBuckets*hotBucket.Milliseconds()
	out := api.HotKeys{
		BucketMS: hotBucket.Milliseconds(),
		WindowMS: hotBuckets * hotBucket.Milliseconds(),
		FromMS:   from,
		ToMS:     to,
		Keys:     []api.HotKey{},
	}
	byKey := map[string]*api.HotKey{}
	h.mu.Lock()
	for i := range h.buckets {
		b := &h.buckets[i]
		if b.start < from || b.start >= to || b.keys == nil {
			continue
		}
		out.Untracked += b.untracked
		for k, t := range b.keys {
			hk := byKey[k]
			if hk == nil {
				hk = &api.HotKey{Key: k}
				byKey[k] = hk
			}
			hk.Checks += t.checks
			hk.Allowed += t.allowed
			hk.Denied += t.denied
			hk.Buckets = append(hk.Buckets, api.HotKeyBucket{StartMS: b.start, Checks: t.checks, Allowed: t.allowed, Denied: t.denied})
		}
	}
	h.mu.Unlock()
	for _, hk := range byKey {
		out.Keys = append(out.Keys, *hk)
	}
	slices.SortFunc(out.Keys, func(a, b api.HotKey) int {
		if c := cmp.Compare(b.Checks, a.Checks); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	if len(out.Keys) > n {
		out.Keys = out.Keys[:n]
	}
	for i := range out.Keys {
		slices.SortFunc(out.Keys[i].Buckets, func(a, b api.HotKeyBucket) int { return cmp.Compare(a.StartMS, b.StartMS) })
	}
	return out
}
