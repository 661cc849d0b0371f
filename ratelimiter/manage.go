package ratelimiter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/operator-dev/operator/ratelimiter/api"
)

// PutLimit stores the limit for pattern (an exact key or "prefix*") in Redis
// and returns the new configuration version. This node applies it before
// PutLimit returns; every other node within one sync interval.
func (l *Limiter) PutLimit(ctx context.Context, pattern string, lim Limit) (int64, error) {
	if err := ValidatePattern(pattern); err != nil {
		return 0, err
	}
	if err := lim.Validate(); err != nil {
		return 0, err
	}
	raw, err := json.Marshal(storedLimit{
		Limit:       lim.Limit,
		WindowMS:    lim.Window.Milliseconds(),
		Algorithm:   lim.Algorithm,
		UpdatedAtMS: l.cfg.Now().UnixMilli(),
	})
	if err != nil {
		return 0, fmt.Errorf("encode limit: %w", err)
	}
	var version int64
	err = l.do(ctx, opAdmin, func(ctx context.Context) error {
		var err error
		version, err = putLimitScript.Run(ctx, l.rdb, []string{limitsKey, versionKey},
			pattern, raw, l.cfg.ConfigRetention.Milliseconds(), changedChan).Int64()
		return err
	})
	if err != nil {
		return 0, err
	}
	if _, err := l.reload(ctx, version); err != nil {
		return version, fmt.Errorf("limit stored as version %d but not reloaded: %w", version, err)
	}
	return version, nil
}

// DeleteLimit removes the limit for pattern and returns the new configuration
// version, or [ErrNotFound].
func (l *Limiter) DeleteLimit(ctx context.Context, pattern string) (int64, error) {
	if err := ValidatePattern(pattern); err != nil {
		return 0, err
	}
	var version int64
	err := l.do(ctx, opAdmin, func(ctx context.Context) error {
		var err error
		version, err = deleteLimitScript.Run(ctx, l.rdb, []string{limitsKey, versionKey},
			pattern, l.cfg.ConfigRetention.Milliseconds(), changedChan).Int64()
		return err
	})
	if err != nil {
		return 0, err
	}
	if version < 0 {
		return 0, fmt.Errorf("limit %q: %w", pattern, ErrNotFound)
	}
	if _, err := l.reload(ctx, version); err != nil {
		return version, fmt.Errorf("limit deleted as version %d but not reloaded: %w", version, err)
	}
	return version, nil
}

// Limits returns the limits this node currently enforces.
func (l *Limiter) Limits(ctx context.Context) (api.LimitList, error) {
	t, err := l.limits(ctx)
	if err != nil {
		return api.LimitList{}, err
	}
	list := t.list()
	return api.LimitList{
		Count:  len(list),
		Limits: list,
		Default: api.Limit{
			Pattern:   "",
			Limit:     t.def.Limit,
			WindowMS:  t.def.Window.Milliseconds(),
			Algorithm: string(t.def.Algorithm),
		},
		Version: t.version,
	}, nil
}

// Block makes every check of key fail with a blocked decision for ttl. A
// second Block of the same key replaces the first.
func (l *Limiter) Block(ctx context.Context, key string, ttl time.Duration, reason string) (api.Block, error) {
	if err := ValidateKey(key); err != nil {
		return api.Block{}, err
	}
	if ttl < time.Millisecond || ttl > MaxBlockTTL {
		return api.Block{}, invalidf("block ttl %s must be between 1ms and %s", ttl, MaxBlockTTL)
	}
	if len(reason) > api.MaxReasonBytes {
		return api.Block{}, invalidf("reason is %d bytes, longer than the maximum of %d", len(reason), api.MaxReasonBytes)
	}
	ttlMS := ttl.Milliseconds()
	var nowUS int64
	err := l.do(ctx, opAdmin, func(ctx context.Context) error {
		// The marker and the index live in different cluster slots, so they
		// are two writes; the marker, which enforces, comes first.
		var err error
		if nowUS, err = setBlockScript.Run(ctx, l.rdb, []string{blockKey(key)}, ttlMS).Int64(); err != nil {
			return err
		}
		value := strconv.FormatInt(nowUS+ttl.Microseconds(), 10) + "|" + strconv.FormatInt(nowUS, 10) + "|" + reason
		return putBlockIndexScript.Run(ctx, l.rdb, []string{blockIndexKey}, key, value, ttlMS).Err()
	})
	if err != nil {
		return api.Block{}, err
	}
	created := time.UnixMicro(nowUS).UTC()
	return api.Block{Key: key, Reason: reason, CreatedAt: created, ExpiresAt: created.Add(ttl), TTLMS: ttlMS}, nil
}

// Unblock removes key's block, or returns [ErrNotFound].
func (l *Limiter) Unblock(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	var n int64
	err := l.do(ctx, opAdmin, func(ctx context.Context) error {
		var err error
		if n, err = l.rdb.Del(ctx, blockKey(key)).Result(); err != nil {
			return err
		}
		return l.rdb.HDel(ctx, blockIndexKey, key).Err()
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("block %q: %w", key, ErrNotFound)
	}
	return l.gaveQuotaBack(ctx, key)
}

// Blocks lists the active blocks. The index says when each ends (Redis
// time); a block whose marker is gone (removed by hand) is left out.
func (l *Limiter) Blocks(ctx context.Context) ([]api.Block, error) {
	var v []string
	var present []*redis.IntCmd
	err := l.do(ctx, opAdmin, func(ctx context.Context) error {
		var err error
		v, err = listBlocksScript.Run(ctx, l.rdb, []string{blockIndexKey}).StringSlice()
		if err != nil || len(v) < 3 {
			return err
		}
		pipe := l.rdb.Pipeline()
		present = present[:0]
		for i := 1; i+1 < len(v); i += 2 {
			present = append(present, pipe.Exists(ctx, blockKey(v[i])))
		}
		_, err = pipe.Exec(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	blocks := []api.Block{}
	if len(v) == 0 {
		return blocks, nil
	}
	nowUS, _ := strconv.ParseFloat(v[0], 64)
	for i := 1; i+1 < len(v); i += 2 {
		if present[(i-1)/2].Val() == 0 {
			continue
		}
		parts := strings.SplitN(v[i+1], "|", 3)
		if len(parts) != 3 {
			continue
		}
		ends, _ := strconv.ParseFloat(parts[0], 64)
		created, _ := strconv.ParseFloat(parts[1], 64)
		left := time.Duration(ends-nowUS) * time.Microsecond
		if left <= 0 {
			continue
		}
		blocks = append(blocks, api.Block{
			Key:       v[i],
			Reason:    parts[2],
			CreatedAt: time.UnixMicro(int64(created)).UTC(),
			ExpiresAt: time.UnixMicro(int64(ends)).UTC(),
			TTLMS:     ceilMS(left),
		})
	}
	slices.SortFunc(blocks, func(a, b api.Block) int { return strings.Compare(a.Key, b.Key) })
	return blocks, nil
}

// Counter returns key's counter as this node computes it: with the limit,
// window and algorithm this node applies to the key. It does not consume
// quota.
func (l *Limiter) Counter(ctx context.Context, key string) (api.Counter, error) {
	lim, pattern, err := l.LimitFor(ctx, key)
	if err != nil {
		return api.Counter{}, err
	}
	r, err := l.eval(ctx, opPeek, lim, key, 0)
	if err != nil {
		return api.Counter{}, err
	}
	return counterOf(key, lim, pattern, r), nil
}

func counterOf(key string, lim Limit, pattern string, r scriptResult) api.Counter {
	return api.Counter{
		Key:          key,
		Algorithm:    string(lim.Algorithm),
		Limit:        lim.Limit,
		WindowMS:     lim.Window.Milliseconds(),
		Count:        r.count,
		Remaining:    r.remaining,
		TTLMS:        r.statePTTLMS,
		ResetAfterMS: (time.Duration(r.resetAfterUS) * time.Microsecond).Milliseconds(),
		Pattern:      pattern,
		Blocked:      r.blockPTTLMS != -2,
	}
}

// ResetCounter deletes every counter of key, whatever its algorithm, and
// returns how many Redis keys were removed. Blocks stay.
func (l *Limiter) ResetCounter(ctx context.Context, key string) (int64, error) {
	if err := ValidateKey(key); err != nil {
		return 0, err
	}
	var n int64
	err := l.do(ctx, opAdmin, func(ctx context.Context) error {
		var err error
		n, err = l.rdb.Del(ctx, counterKeys(key)...).Result()
		return err
	})
	if err != nil {
		return n, err
	}
	return n, l.gaveQuotaBack(ctx, key)
}

// gaveQuotaBack tells every node's over-limit cache that key may have
// quota again (a counter reset, a block lifted): this node forgets it at
// once, the others when they read the new epoch.
func (l *Limiter) gaveQuotaBack(ctx context.Context, key string) error {
	if l.overLimit != nil {
		l.overLimit.forget(key)
	}
	var epoch int64
	err := l.do(ctx, opAdmin, func(ctx context.Context) error {
		var err error
		epoch, err = bumpEpochScript.Run(ctx, l.rdb, []string{epochKey}, l.cfg.ConfigRetention.Milliseconds(), changedChan).Int64()
		return err
	})
	if err != nil {
		return fmt.Errorf("announce to the other nodes: %w", err)
	}
	if l.overLimit != nil {
		l.overLimit.setEpoch(epoch)
	}
	return nil
}

// Bounds of a counter listing.
const (
	DefaultCounterListLimit = 100
	MaxCounterListLimit     = 1000
	// counterScanCount is the SCAN COUNT hint and counterScanCalls the most
	// SCAN calls one listing makes, so a listing examines on the order of
	// counterScanCount*counterScanCalls keys at most.
	counterScanCount = 1000
	counterScanCalls = 10
)

// ListCounters lists up to limit counters whose key starts with prefix, in
// Redis SCAN order, starting at cursor ("" or "0" for the beginning). The work
// is bounded: at most counterScanCalls SCAN calls and one pipelined read.
// Keys that are not counters (blocks, sequences, configuration, registry) and
// counters of an algorithm other than the one the key is configured for are
// skipped. When the scan did not finish, the result is truncated and carries
// the cursor to resume from. Like SCAN itself, resuming guarantees only that
// keys present throughout are seen at least once, and a listing cut at limit
// in the middle of a SCAN batch skips the rest of that batch.
func (l *Limiter) ListCounters(ctx context.Context, prefix string, limit int, cursor string) (api.CounterList, error) {
	if prefix != "" {
		if err := ValidateKey(prefix); err != nil {
			return api.CounterList{}, fmt.Errorf("prefix: %w", err)
		}
	}
	if limit <= 0 {
		limit = DefaultCounterListLimit
	}
	if limit > MaxCounterListLimit {
		return api.CounterList{}, invalidf("limit %d exceeds the maximum of %d", limit, MaxCounterListLimit)
	}
	cur := uint64(0)
	if cursor != "" {
		c, err := strconv.ParseUint(cursor, 10, 64)
		if err != nil {
			return api.CounterList{}, invalidf("cursor %q is not a SCAN cursor", cursor)
		}
		cur = c
	}
	t, err := l.limits(ctx)
	if err != nil {
		return api.CounterList{}, err
	}
	match := keyPrefix + "{" + globEscape(prefix) + "*"

	var keys []peekReq
	var patterns []string
	seen := map[string]bool{}
	for calls := 0; calls < counterScanCalls && len(keys) < limit; calls++ {
		var batch []string
		err := l.do(ctx, opAdmin, func(ctx context.Context) error {
			var err error
			batch, cur, err = l.rdb.Scan(ctx, cur, match, counterScanCount).Result()
			return err
		})
		if err != nil {
			return api.CounterList{}, err
		}
		for _, rk := range batch {
			key, alg, ok := parseStateKey(rk)
			if !ok || seen[key] || len(keys) >= limit {
				continue
			}
			lim, pattern := t.lookup(key)
			if lim.Algorithm != alg {
				continue // left over from an earlier configuration; it expires
			}
			seen[key] = true
			keys = append(keys, peekReq{key, lim})
			patterns = append(patterns, pattern)
		}
		if cur == 0 {
			break
		}
	}

	out := api.CounterList{Counters: []api.Counter{}}
	if cur != 0 {
		out.Truncated = true
		out.Cursor = strconv.FormatUint(cur, 10)
	}
	if len(keys) == 0 {
		return out, nil
	}
	results, err := l.peekMany(ctx, keys)
	if err != nil {
		return api.CounterList{}, err
	}
	for i, k := range keys {
		out.Counters = append(out.Counters, counterOf(k.key, k.lim, patterns[i], results[i]))
	}
	out.Count = len(out.Counters)
	return out, nil
}

type peekReq struct {
	key string
	lim Limit
}

// peekMany reads several counters in one pipelined round trip. Scripts are
// loaded first when Redis does not know them (EVALSHA cannot fall back to
// EVAL inside a pipeline).
func (l *Limiter) peekMany(ctx context.Context, reqs []peekReq) ([]scriptResult, error) {
	nowArg := ""
	if l.cfg.Clock == ClockNode {
		nowArg = strconv.FormatInt(l.nodeNow().UnixMicro(), 10)
	}
	run := func(ctx context.Context) ([]*redis.Cmd, error) {
		pipe := l.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(reqs))
		for i, r := range reqs {
			keys := []string{stateKey(r.key, r.lim.Algorithm), blockKey(r.key)}
			if r.lim.Algorithm == SlidingWindowLog {
				keys = append(keys, seqKey(r.key))
			}
			cmds[i] = l.scripts[r.lim.Algorithm].EvalSha(ctx, pipe, keys,
				nowArg, r.lim.Limit, r.lim.Window.Microseconds(), 0, "peek")
		}
		_, err := pipe.Exec(ctx)
		return cmds, err
	}
	var cmds []*redis.Cmd
	err := l.do(ctx, opPeek, func(ctx context.Context) error {
		var err error
		cmds, err = run(ctx)
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			for _, s := range l.scripts {
				if err := s.Load(ctx, l.rdb).Err(); err != nil {
					return err
				}
			}
			cmds, err = run(ctx)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]scriptResult, len(cmds))
	for i, c := range cmds {
		v, err := c.Int64Slice()
		if err != nil || len(v) != 8 {
			return nil, fmt.Errorf("%w: peek reply: %v", ErrUnavailable, errors.Join(err, fmt.Errorf("%d values", len(v))))
		}
		out[i] = scriptResult{count: v[1], remaining: v[2], resetAfterUS: v[3], retryAfterUS: v[4], nowUS: v[5], blockPTTLMS: v[6], statePTTLMS: v[7]}
	}
	return out, nil
}

// globEscape escapes the SCAN MATCH metacharacters in s.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
