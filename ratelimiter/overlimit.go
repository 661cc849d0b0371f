package ratelimiter

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// overLimit is a node's cache of keys known to be over their limit: while
// a key is in it, checks of the key are denied without asking Redis. It
// holds only certain denials, so decisions stay exactly what Redis would
// answer:
//
//   - A denial is cached only when it left no quota at all (remaining 0)
//     for a request of cost 1: then every request, of any cost, is denied
//     until the retry-after of that decision, which is when the first unit
//     comes back. Blocks are not cached: lifting one takes effect on every
//     node at once.
//   - The entry ends at the time the request was sent plus the retry-after
//     Redis computed from its own, later, clock: never after the true end.
//   - Traffic through other nodes only uses more quota. What can give
//     quota back early is a person: a limit changed (the entry remembers
//     the limit table it was decided with; every node applies a change
//     within the sync interval, as it always has), or a counter reset (it
//     bumps the configuration epoch that every node reads with its limits:
//     at once through pub/sub, at the latest within the sync interval). The
//     node that resets drops the key at once.
//   - Entries are timed on this process's monotonic clock, which runs with
//     Redis TIME; a node deciding on its own clock (ClockNode) keeps no
//     cache.
//
// It is sharded so concurrent checks rarely meet on a lock, and bounded:
// when a shard is full, new denials are not cached. Safe for concurrent
// use.
type overLimit struct {
	seed   maphash.Seed
	max    int // entries per shard
	shards [overLimitShards]overLimitShard
	// epoch is the configuration epoch last read from Redis.
	epoch atomic.Int64
}

const overLimitShards = 64

type overLimitShard struct {
	mu      sync.Mutex
	entries map[string]overLimitEntry
}

type overLimitEntry struct {
	until    time.Time // monotonic: denied while now is before it
	resetAt  time.Time // when the quota is whole again, for ResetAfter
	lim      Limit
	pattern  string
	table    int64 // the limit table's version
	epoch    int64
	count    int64
	redisNow time.Time // the decision time the entry was made at
	sentAt   time.Time
}

// newOverLimit returns a cache of at most size entries; size 0 means none
// (nil).
func newOverLimit(size int) *overLimit {
	if size <= 0 {
		return nil
	}
	c := &overLimit{seed: maphash.MakeSeed(), max: max(size/overLimitShards, 1)}
	for i := range c.shards {
		c.shards[i].entries = map[string]overLimitEntry{}
	}
	return c
}

func (c *overLimit) shard(key string) *overLimitShard {
	return &c.shards[maphash.String(c.seed, key)%overLimitShards]
}

// lookup returns the cached denial of key, if one holds at now for the
// limit table of version table.
func (c *overLimit) lookup(key string, table int64, now time.Time) (overLimitEntry, bool) {
	s := c.shard(key)
	s.mu.Lock()
	e, ok := s.entries[key]
	if ok && (!now.Before(e.until) || e.table != table || e.epoch != c.epoch.Load()) {
		delete(s.entries, key)
		ok = false
	}
	s.mu.Unlock()
	return e, ok
}

// remember caches a denial that leaves no quota; the caller checks that.
func (c *overLimit) remember(key string, e overLimitEntry) {
	e.epoch = c.epoch.Load()
	s := c.shard(key)
	s.mu.Lock()
	if _, ok := s.entries[key]; ok || len(s.entries) < c.max {
		s.entries[key] = e
	} else {
		c.sweep(s, e.sentAt)
		if len(s.entries) < c.max {
			s.entries[key] = e
		}
	}
	s.mu.Unlock()
}

// sweep drops the shard's expired entries; the caller holds its lock.
func (c *overLimit) sweep(s *overLimitShard, now time.Time) {
	for k, e := range s.entries {
		if !now.Before(e.until) {
			delete(s.entries, k)
		}
	}
}

// forget drops key at once, as this node gives quota back.
func (c *overLimit) forget(key string) {
	s := c.shard(key)
	s.mu.Lock()
	delete(s.entries, key)
	s.mu.Unlock()
}

// setEpoch records the configuration epoch read from Redis; entries made
// under another epoch no longer hold.
func (c *overLimit) setEpoch(epoch int64) { c.epoch.Store(epoch) }

// len counts the cached keys, for tests and metrics.
func (c *overLimit) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.entries)
		s.mu.Unlock()
	}
	return n
}
