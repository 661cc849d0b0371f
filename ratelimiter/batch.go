package ratelimiter

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// batcher pipelines concurrent script calls: a call that finds fewer than
// max pipelines in flight sends, together with every call queued so far, one
// pipeline; calls that arrive while max pipelines are in flight queue up and
// leave with the next one. Each decision still takes exactly one round trip,
// but under load many share it, which saves system calls on both sides.
// Nothing waits for a batch to fill: an idle node sends at once.
//
// There are no background goroutines: the caller that opens a pipeline sends
// it, and when it is done hands the queue to one queued caller. It is safe
// for concurrent use.
type batcher struct {
	rdb     redis.UniversalClient
	max     int
	timeout time.Duration

	mu       sync.Mutex
	inflight int
	queue    []*call
}

// call is one queued script run. Its fields after state are guarded by the
// batcher's mutex until done is closed.
type call struct {
	ctx    context.Context
	script *redis.Script
	keys   []string
	args   []any

	state int          // callQueued, callAbandoned, callLeading
	lead  chan []*call // receives the batch this call must send
	done  chan struct{}
	v     []int64
	err   error
}

const (
	callQueued = iota
	callAbandoned
	callLeading
)

func newBatcher(rdb redis.UniversalClient, max int, timeout time.Duration) *batcher {
	return &batcher{rdb: rdb, max: max, timeout: timeout}
}

// run runs script and returns its integer array reply. It returns ctx's error
// if ctx ends while the call is still queued.
func (b *batcher) run(ctx context.Context, script *redis.Script, keys []string, args ...any) ([]int64, error) {
	c := &call{ctx: ctx, script: script, keys: keys, args: args, done: make(chan struct{})}
	b.mu.Lock()
	if b.inflight < b.max {
		b.inflight++
		batch := append(b.queue, c)
		b.queue = nil
		b.mu.Unlock()
		b.send(batch)
		return c.v, c.err
	}
	c.lead = make(chan []*call, 1)
	b.queue = append(b.queue, c)
	b.mu.Unlock()

	select {
	case <-c.done:
		return c.v, c.err
	case batch := <-c.lead:
		b.send(batch)
		return c.v, c.err
	case <-ctx.Done():
	}
	b.mu.Lock()
	if c.state == callQueued {
		c.state = callAbandoned // the sender will skip it
		b.mu.Unlock()
		return nil, ctx.Err()
	}
	b.mu.Unlock()
	// Too late to leave: the call is being sent or must send.
	select {
	case <-c.done:
	case batch := <-c.lead:
		b.send(batch)
	}
	return c.v, c.err
}

// send sends batch as one pipeline, completes its calls, then hands the queue
// to a queued caller or frees the pipeline slot.
func (b *batcher) send(batch []*call) {
	live := batch[:0:0]
	b.mu.Lock()
	for _, c := range batch {
		if c.state != callAbandoned {
			c.state = callLeading
			live = append(live, c)
		}
	}
	b.mu.Unlock()

	switch len(live) {
	case 0:
	case 1:
		c := live[0]
		c.v, c.err = c.script.Run(c.ctx, b.rdb, c.keys, c.args...).Int64Slice()
	default:
		ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
		pipe := b.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(live))
		for i, c := range live {
			cmds[i] = c.script.EvalSha(ctx, pipe, c.keys, c.args...)
		}
		_, _ = pipe.Exec(ctx) // each command carries its own error
		for i, c := range live {
			c.v, c.err = cmds[i].Int64Slice()
			if c.err != nil && redis.HasErrorPrefix(c.err, "NOSCRIPT") {
				// Redis lost its scripts (restart, SCRIPT FLUSH): this one
				// did not run, so running it again is safe.
				c.v, c.err = c.script.Run(ctx, b.rdb, c.keys, c.args...).Int64Slice()
			}
		}
		cancel()
	}
	for _, c := range live {
		close(c.done)
	}

	b.mu.Lock()
	for len(b.queue) > 0 {
		next := b.queue
		b.queue = nil
		for i, c := range next {
			if c.state == callQueued {
				c.state = callLeading
				b.mu.Unlock()
				c.lead <- next[i:]
				return
			}
		}
		// Every queued call gave up; nothing to send.
	}
	b.inflight--
	b.mu.Unlock()
}
