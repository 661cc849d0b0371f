package ratelimiter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/operator-dev/operator/ratelimiter/api"
)

// Sentinel errors. Errors about input wrap [ErrInvalid].
var (
	// ErrUnavailable is wrapped by errors that come from Redis being
	// unreachable, slow or failing. With [FailClosed] Check returns it.
	ErrUnavailable = errors.New("redis unavailable")
	// ErrDraining is returned by [Limiter.Ready] while the node drains.
	ErrDraining = errors.New("node is draining")
	// ErrNotFound is returned when a limit, block or node does not exist.
	ErrNotFound = errors.New("not found")
	// ErrChaosDisabled is returned by [Limiter.SetChaos] unless
	// [Config.EnableChaos] is set.
	ErrChaosDisabled = errors.New("chaos hooks are disabled")
)

// A Decision is the outcome of one [Limiter.Check].
type Decision struct {
	Allowed bool
	Key     string
	// Limit is the configured limit applied to Key and Pattern the limit
	// pattern that matched it ("" for the default).
	Limit   Limit
	Pattern string
	// Count is the number of units used in the current window after this
	// decision, and Remaining the units still available.
	Count     int64
	Remaining int64
	// ResetAfter is the time until the key's quota is fully replenished.
	ResetAfter time.Duration
	// RetryAfter is, when denied, the time until the same request would be
	// allowed.
	RetryAfter time.Duration
	// Blocked is set when the key is blocked; RetryAfter is then the block's
	// remaining time.
	Blocked bool
	// Degraded is set when Redis failed and the node failed open.
	Degraded bool
	// Time is the decision time: the Redis server clock, or the node clock
	// with [ClockNode]. It is the node's wall clock for degraded decisions.
	Time time.Time
}

// Chaos holds the fault injection settings of a node.
type Chaos struct {
	// ClockSkew shifts the node clock. It changes decisions only with
	// [ClockNode].
	ClockSkew time.Duration
	// RedisDelay delays every Redis call of the node. The delay counts
	// against [Config.RedisTimeout].
	RedisDelay time.Duration
}

// maxPipelines is the number of decision pipelines a node keeps in flight;
// decisions arriving meanwhile share the next one (see batcher).
const maxPipelines = 4

// Bounds on chaos settings.
const (
	MaxChaosClockSkew  = time.Hour
	MaxChaosRedisDelay = 10 * time.Second
)

// A Limiter decides rate limits for one node. Nodes share nothing but Redis.
// Its methods are safe for concurrent use.
type Limiter struct {
	cfg       Config
	rdb       redis.UniversalClient
	log       *slog.Logger
	metrics   *metrics
	hot       *hotKeys
	scripts   map[Algorithm]*redis.Script
	batch     *batcher
	pipe      *pipe      // nil for a cluster client
	overLimit *overLimit // nil when off
	startedAt time.Time

	table    atomic.Pointer[limitTable]
	loadMu   sync.Mutex // serialises limit reloads
	draining atomic.Bool
	redisUp  atomic.Bool
	running  atomic.Bool  // Run keeps the limits fresh
	offset   atomic.Int64 // node clock minus Redis clock, microseconds
	chaos    atomic.Pointer[Chaos]
}

// New returns a Limiter that keeps its state in rdb. It does no I/O: limits
// are loaded on first use and kept fresh by [Limiter.Run].
func New(rdb redis.UniversalClient, cfg Config) (*Limiter, error) {
	if rdb == nil {
		return nil, errors.New("ratelimiter: nil redis client")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ratelimiter: invalid config: %w", err)
	}
	cfg = cfg.withDefaults()
	l := &Limiter{
		cfg:       cfg,
		rdb:       rdb,
		log:       cfg.Logger.With("node", cfg.NodeID),
		metrics:   newMetrics(cfg.Registerer, cfg.NodeID, cfg.Version),
		hot:       newHotKeys(cfg.HotKeysPerBucket),
		scripts:   decisionScripts(),
		batch:     newBatcher(rdb, maxPipelines, cfg.RedisTimeout),
		pipe:      pipeFor(rdb, cfg),
		overLimit: newOverLimit(overLimitSize(cfg)),
		startedAt: cfg.Now().UTC(),
	}
	l.redisUp.Store(true)
	l.chaos.Store(&Chaos{})
	return l, nil
}

// NodeID returns the node's id.
func (l *Limiter) NodeID() string { return l.cfg.NodeID }

// Config returns the node's configuration with defaults applied.
func (l *Limiter) Config() Config { return l.cfg }

// Check consumes cost units of key's quota if they are available and reports
// the decision. The limit applied is always the one configured for the key.
//
// It returns an error wrapping [ErrInvalid] for a bad key, a cost below 1 or a
// cost above the key's limit. When Redis fails, a node configured with
// [FailOpen] returns an allowed, degraded decision and a nil error; with
// [FailClosed] it returns an error wrapping [ErrUnavailable]. A canceled ctx
// returns its error: the caller left, which says nothing about Redis.
//
// Check decides also while the node drains; draining is enforced by the HTTP
// API, which answers checks with 503.
func (l *Limiter) Check(ctx context.Context, key string, cost int64) (Decision, error) {
	if err := ValidateKey(key); err != nil {
		return Decision{}, err
	}
	if cost < 1 {
		return Decision{}, invalidf("cost %d must be at least 1", cost)
	}
	t, err := l.limits(ctx)
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return Decision{}, ctx.Err()
		}
		return l.failed(key, Limit{Limit: l.cfg.DefaultLimit, Window: l.cfg.DefaultWindow, Algorithm: l.cfg.DefaultAlgorithm}, "", err)
	}
	lim, pattern := t.lookup(key)
	if cost > lim.Limit {
		return Decision{}, invalidf("cost %d exceeds the limit %d of key %q", cost, lim.Limit, key)
	}
	sent := time.Now()
	if l.overLimit != nil {
		if e, ok := l.overLimit.lookup(key, t.version, sent); ok {
			return l.cachedDenial(key, e, sent), nil
		}
	}
	r, err := l.eval(ctx, opCheck, lim, key, cost)
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return Decision{}, ctx.Err() // the caller went away; Redis is not to blame
		}
		return l.failed(key, lim, pattern, err)
	}
	d := r.decision(key, lim, pattern)
	if l.overLimit != nil && !d.Allowed && !d.Blocked && d.Remaining == 0 && cost == 1 && d.RetryAfter > 0 {
		l.overLimit.remember(key, overLimitEntry{until: sent.Add(d.RetryAfter), resetAt: sent.Add(d.ResetAfter),
			lim: lim, pattern: pattern, table: t.version, count: d.Count, redisNow: d.Time, sentAt: sent})
	}
	result := resultDenied
	switch {
	case d.Blocked:
		result = resultBlocked
	case d.Allowed:
		result = resultAllowed
	}
	l.metrics.countCheck(result, lim.Algorithm)
	l.hot.record(key, d.Allowed, d.Time)
	return d, nil
}

// overLimitSize is the over-limit cache's size for cfg. The cache times
// its entries on this process's monotonic clock, which tracks Redis TIME;
// a node deciding on its own clock (ClockNode), which may jump or be
// skewed on purpose, keeps none.
func overLimitSize(cfg Config) int {
	if cfg.Clock == ClockNode || cfg.OverLimitCache < 0 {
		return 0
	}
	return cfg.OverLimitCache
}

// CheckBatch decides every check of reqs, each on its own as Check does,
// all at once: the decisions that need Redis share its round trips. It
// fails as a whole with the first error Check would return (a bad key, a
// cost over the limit, Redis down with FailClosed).
func (l *Limiter) CheckBatch(ctx context.Context, reqs []api.CheckRequest) ([]Decision, error) {
	out := make([]Decision, len(reqs))
	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs[1:] {
		wg.Go(func() { out[i+1], errs[i+1] = l.Check(ctx, r.Key, r.Cost) })
	}
	if len(reqs) > 0 {
		out[0], errs[0] = l.Check(ctx, reqs[0].Key, reqs[0].Cost)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("check %d (%q): %w", i, reqs[i].Key, err)
		}
	}
	return out, nil
}

// cachedDenial answers a check from the over-limit cache: what Redis
// would answer, with the times counted down from the cached decision.
func (l *Limiter) cachedDenial(key string, e overLimitEntry, now time.Time) Decision {
	d := Decision{Key: key, Limit: e.lim, Pattern: e.pattern, Count: e.count,
		ResetAfter: max(e.resetAt.Sub(now), 0), RetryAfter: e.until.Sub(now), Time: e.redisNow.Add(now.Sub(e.sentAt))}
	l.metrics.countCheck(resultDenied, e.lim.Algorithm)
	l.metrics.overLimitHits.Inc()
	l.hot.record(key, false, d.Time)
	return d
}

// failed applies the node's failure mode to a Redis error.
func (l *Limiter) failed(key string, lim Limit, pattern string, err error) (Decision, error) {
	if !errors.Is(err, ErrUnavailable) {
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if l.cfg.OnRedisError == FailOpen {
		l.metrics.countCheck(resultDegraded, lim.Algorithm)
		now := l.cfg.Now()
		l.hot.record(key, true, now)
		return Decision{Allowed: true, Degraded: true, Key: key, Limit: lim, Pattern: pattern, Remaining: lim.Limit, Time: now}, nil
	}
	l.metrics.countCheck(resultError, lim.Algorithm)
	return Decision{}, err
}

// scriptResult is the reply of a decision script; see scripts/prelude.lua.
type scriptResult struct {
	allowed       bool
	count         int64
	remaining     int64
	resetAfterUS  int64
	retryAfterUS  int64
	nowUS         int64
	blockPTTLMS   int64 // -2 when not blocked
	statePTTLMS   int64
	blockedResult bool
}

func (r scriptResult) decision(key string, lim Limit, pattern string) Decision {
	d := Decision{
		Allowed:    r.allowed,
		Key:        key,
		Limit:      lim,
		Pattern:    pattern,
		Count:      r.count,
		Remaining:  r.remaining,
		ResetAfter: time.Duration(r.resetAfterUS) * time.Microsecond,
		RetryAfter: time.Duration(r.retryAfterUS) * time.Microsecond,
		Time:       time.UnixMicro(r.nowUS).UTC(),
	}
	if r.blockedResult {
		d.Allowed = false
		d.Blocked = true
		d.Remaining = 0
		d.Count = 0
		// A block without TTL (-1) has no known end; say "one window".
		ttl := time.Duration(r.blockPTTLMS) * time.Millisecond
		if r.blockPTTLMS < 0 {
			ttl = lim.Window
		}
		d.RetryAfter = max(ttl, time.Millisecond)
		d.ResetAfter = d.RetryAfter
	}
	return d
}

// eval runs key's decision script for lim; mode opCheck consumes cost, opPeek
// only reads.
func (l *Limiter) eval(ctx context.Context, op string, lim Limit, key string, cost int64) (scriptResult, error) {
	var v [8]int64
	var err error
	if l.pipe != nil {
		// The pipe bounds its own wait: no timeout context per decision.
		start := time.Now()
		if err = l.chaosDelay(ctx); err == nil {
			v, err = l.evalPipe(ctx, op, lim, key, cost, l.cfg.RedisTimeout-time.Since(start))
		}
		err = l.settle(ctx, op, start, err)
	} else {
		err = l.do(ctx, op, func(ctx context.Context) error {
			v, err = l.evalBatch(ctx, op, lim, key, cost)
			return err
		})
	}
	if err != nil {
		return scriptResult{}, err
	}
	return scriptResult{
		allowed:       v[0] == 1,
		count:         v[1],
		remaining:     v[2],
		resetAfterUS:  v[3],
		retryAfterUS:  v[4],
		nowUS:         v[5],
		blockPTTLMS:   v[6],
		statePTTLMS:   v[7],
		blockedResult: v[6] != -2 && op == opCheck,
	}, nil
}

// evalPipe sends the decision through the node's pipe. A Redis that lost
// its scripts (a restart, SCRIPT FLUSH) answers NOSCRIPT without running
// anything, so loading the script and sending the decision again is safe.
func (l *Limiter) evalPipe(ctx context.Context, op string, lim Limit, key string, cost int64, timeout time.Duration) ([8]int64, error) {
	script := l.scripts[lim.Algorithm]
	call := decisionReq{sha: script.Hash(), key: key, suffix: lim.Algorithm.suffix(), seq: lim.Algorithm == SlidingWindowLog,
		now: -1, limit: lim.Limit, windowUS: lim.Window.Microseconds(), cost: cost, peek: op == opPeek}
	if l.cfg.Clock == ClockNode {
		call.now = l.nodeNow().UnixMicro()
	}
	v, err := l.pipe.run(ctx, call, timeout)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		lctx, cancel := context.WithTimeout(ctx, l.cfg.RedisTimeout)
		defer cancel()
		if lerr := script.Load(lctx, l.rdb).Err(); lerr != nil {
			return v, fmt.Errorf("load decision script: %w", lerr)
		}
		v, err = l.pipe.run(ctx, call, l.cfg.RedisTimeout)
	}
	return v, err
}

// evalBatch sends the decision through go-redis, batched with concurrent
// ones: the path for clients the pipe cannot reach (a cluster client).
func (l *Limiter) evalBatch(ctx context.Context, op string, lim Limit, key string, cost int64) ([8]int64, error) {
	keys := []string{stateKey(key, lim.Algorithm), blockKey(key)}
	if lim.Algorithm == SlidingWindowLog {
		keys = append(keys, seqKey(key))
	}
	nowArg := ""
	if l.cfg.Clock == ClockNode {
		nowArg = strconv.FormatInt(l.nodeNow().UnixMicro(), 10)
	}
	mode := "check"
	if op == opPeek {
		mode = "peek"
	}
	var out [8]int64
	v, err := l.batch.run(ctx, l.scripts[lim.Algorithm], keys, nowArg, lim.Limit, lim.Window.Microseconds(), cost, mode)
	if err != nil {
		return out, err
	}
	if len(v) != 8 {
		return out, fmt.Errorf("%w: decision script returned %d values, want 8", ErrUnavailable, len(v))
	}
	copy(out[:], v)
	return out, nil
}

// pipeFor returns a decision pipe to rdb's server, or nil when rdb is not
// one server's client (a cluster client routes by key, which the pipe does
// not) or cfg asks for go-redis.
func pipeFor(rdb redis.UniversalClient, cfg Config) *pipe {
	c, ok := rdb.(*redis.Client)
	if !ok || cfg.GoRedisDecisions {
		return nil
	}
	return newPipe(c.Options(), cfg.RedisTimeout)
}

// Close releases the connections the limiter opened for decisions. The
// Redis client given to New is the caller's to close.
func (l *Limiter) Close() {
	if l.pipe != nil {
		l.pipe.Close()
	}
}

// do runs one Redis round trip under the node's Redis timeout, after the
// chaos delay, and records its duration and the Redis health. Errors other
// than the caller's own cancellation wrap ErrUnavailable.
func (l *Limiter) do(parent context.Context, op string, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(parent, l.cfg.RedisTimeout)
	defer cancel()
	start := time.Now()
	err := l.chaosDelay(ctx)
	if err == nil {
		err = fn(ctx)
	}
	return l.settle(parent, op, start, err)
}

// settle records a round trip that started at start: its duration, the
// Redis health it tells, and the error the caller sees.
func (l *Limiter) settle(parent context.Context, op string, start time.Time, err error) error {
	l.metrics.redisDurationOf(op).Observe(time.Since(start).Seconds())
	if err == nil || errors.Is(err, redis.Nil) {
		l.setRedisUp(true, nil)
		return err
	}
	if errors.Is(parent.Err(), context.Canceled) {
		// The caller went away; that says nothing about Redis.
		return err
	}
	l.metrics.redisErrors.WithLabelValues(op).Inc()
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		// No reply at all: connection refused, reset or timed out.
		l.setRedisUp(false, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}

// setRedisUp records Redis health and logs transitions once.
func (l *Limiter) setRedisUp(up bool, err error) {
	if l.redisUp.Swap(up) == up {
		return
	}
	if up {
		l.metrics.redisUp.Set(1)
		l.log.Info("redis reachable again")
	} else {
		l.metrics.redisUp.Set(0)
		l.log.Warn("redis unreachable", "error", err, "on_redis_error", string(l.cfg.OnRedisError))
	}
}

// chaosDelay waits for the chaos Redis delay, or until ctx is done or the
// Redis timeout passes.
func (l *Limiter) chaosDelay(ctx context.Context) error {
	d := l.chaos.Load().RedisDelay
	if d <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.RedisTimeout)
	defer cancel()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("chaos redis delay: %w", ctx.Err())
	}
}

// nodeNow is the node clock shifted by the chaos clock skew.
func (l *Limiter) nodeNow() time.Time {
	return l.cfg.Now().Add(l.chaos.Load().ClockSkew)
}

// SetChaos replaces the node's fault injection settings; the zero Chaos clears
// them. It returns [ErrChaosDisabled] unless [Config.EnableChaos] is set.
func (l *Limiter) SetChaos(c Chaos) error {
	if !l.cfg.EnableChaos {
		return ErrChaosDisabled
	}
	if c.ClockSkew < -MaxChaosClockSkew || c.ClockSkew > MaxChaosClockSkew {
		return invalidf("clock skew %s must be within ±%s", c.ClockSkew, MaxChaosClockSkew)
	}
	if c.RedisDelay < 0 || c.RedisDelay > MaxChaosRedisDelay {
		return invalidf("redis delay %s must be between 0 and %s", c.RedisDelay, MaxChaosRedisDelay)
	}
	l.chaos.Store(&c)
	l.log.Warn("chaos settings changed", "clock_skew", c.ClockSkew, "redis_delay", c.RedisDelay)
	return nil
}

// Chaos returns the node's fault injection settings.
func (l *Limiter) Chaos() Chaos { return *l.chaos.Load() }

// Draining reports whether the node is draining.
func (l *Limiter) Draining() bool { return l.draining.Load() }

// setDraining applies a drain state and logs transitions.
func (l *Limiter) setDraining(on bool) {
	if l.draining.Swap(on) == on {
		return
	}
	if on {
		l.metrics.draining.Set(1)
		l.log.Info("node draining")
	} else {
		l.metrics.draining.Set(0)
		l.log.Info("node no longer draining")
	}
}

// RedisUp reports whether the node's last Redis round trip got a reply.
func (l *Limiter) RedisUp() bool { return l.redisUp.Load() }

// Ready reports whether the node should receive traffic: it is not draining,
// Redis answers within the timeout and the limits are loaded.
func (l *Limiter) Ready(ctx context.Context) error {
	if l.Draining() {
		return ErrDraining
	}
	if err := l.do(ctx, opPing, func(ctx context.Context) error { return l.rdb.Ping(ctx).Err() }); err != nil {
		return err
	}
	_, err := l.limits(ctx)
	return err
}

// limits returns the limit table, loading it first if it never was. Without
// Run, a table older than the sync interval is reloaded on use, so a library
// user that never calls Run still sees limit changes.
func (l *Limiter) limits(ctx context.Context) (*limitTable, error) {
	t := l.table.Load()
	if t != nil && (l.running.Load() || time.Since(t.loadedAt) < l.cfg.SyncInterval) {
		return t, nil
	}
	fresh, err := l.reload(ctx, -1)
	if err != nil && t != nil {
		return t, nil // keep deciding with the last limits; the script will fail on its own if Redis is down
	}
	return fresh, err
}

// reload loads the limits from Redis, unless seen is not -1 and the table
// already is at version seen (another caller loaded it meanwhile).
func (l *Limiter) reload(ctx context.Context, seen int64) (*limitTable, error) {
	l.loadMu.Lock()
	defer l.loadMu.Unlock()
	if t := l.table.Load(); t != nil && (seen >= 0 && t.version == seen || seen < 0 && time.Since(t.loadedAt) < l.cfg.SyncInterval && !l.running.Load()) {
		return t, nil // another caller loaded it meanwhile
	}
	var v []any
	err := l.do(ctx, opLoad, func(ctx context.Context) error {
		var err error
		v, err = loadLimitsScript.Run(ctx, l.rdb, []string{limitsKey, versionKey}).Slice()
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(v) == 0 || len(v)%2 != 1 {
		return nil, fmt.Errorf("%w: limits snapshot has %d values", ErrUnavailable, len(v))
	}
	version, _ := v[0].(int64)
	fields := make(map[string]string, len(v)/2)
	for i := 1; i+1 < len(v); i += 2 {
		k, _ := v[i].(string)
		s, _ := v[i+1].(string)
		fields[k] = s
	}
	def := Limit{Limit: l.cfg.DefaultLimit, Window: l.cfg.DefaultWindow, Algorithm: l.cfg.DefaultAlgorithm}
	t, errs := newLimitTable(version, def, fields)
	t.loadedAt = time.Now()
	for _, err := range errs {
		l.metrics.limitErrors.Inc()
		l.log.Error("skipping invalid stored limit", "error", err)
	}
	old := l.table.Swap(t)
	l.metrics.limitsVersion.Set(float64(version))
	if old == nil || old.version != version {
		l.log.Info("limits loaded", "version", version, "limits", len(fields))
	}
	return t, nil
}

// LimitFor returns the limit the node currently applies to key and the
// pattern that matched it ("" for the default).
func (l *Limiter) LimitFor(ctx context.Context, key string) (Limit, string, error) {
	if err := ValidateKey(key); err != nil {
		return Limit{}, "", err
	}
	t, err := l.limits(ctx)
	if err != nil {
		return Limit{}, "", err
	}
	lim, pattern := t.lookup(key)
	return lim, pattern, nil
}

// HotKeys returns the node's top n keys by checks over the last minute.
func (l *Limiter) HotKeys(n int) api.HotKeys {
	hk := l.hot.snapshot(l.cfg.Now(), n)
	hk.Node = l.cfg.NodeID
	return hk
}

// Status returns the node's own view of itself.
func (l *Limiter) Status() api.Status {
	state := api.NodeUp
	if l.Draining() {
		state = api.NodeDraining
	}
	var version int64
	if t := l.table.Load(); t != nil {
		version = t.version
	}
	return api.Status{
		Node:          l.cfg.NodeID,
		Version:       l.cfg.Version,
		State:         state,
		RedisUp:       l.RedisUp(),
		Draining:      l.Draining(),
		LimitsVersion: version,
		ClockOffsetMS: float64(l.offset.Load()) / 1000,
		Clock:         string(l.cfg.Clock),
		OnRedisError:  string(l.cfg.OnRedisError),
		StartedAt:     l.startedAt,
	}
}
