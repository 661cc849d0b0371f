package scenario

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/operator-dev/operator/ratelimiter/api"
	"github.com/operator-dev/operator/ratelimiter/loadgen"
)

// Undo takes a fault back.
type Undo func(ctx context.Context) error

// A Scenario is one fault with what Operator is expected to do about it.
type Scenario struct {
	Name        string
	Description string
	// Rule is the rule that must fire.
	Rule string
	// Also lists rules that may fire too, as a consequence of the fault.
	Also []string
	// AlsoFires lists rules that must fire too: the fault breaks several
	// invariants at once.
	AlsoFires []string
	// RootCause is the id of the playbook hypothesis that names the fault's
	// true cause: the diagnosis of the rule's episode should rank it first.
	RootCause string
	// Action is the remediation the rule must request ("" for none); it
	// must succeed and be verified.
	Action string
	// Approve approves the action when it awaits approval, as the person
	// on call would.
	Approve bool
	// UndoOnFire takes the fault back shortly after the rule fires: there
	// is no repair, and the violation must resolve once the fault is gone.
	// Otherwise the fault is taken back after the repair is verified.
	UndoOnFire bool
	// Load is the background traffic, from before the steady state to the
	// end; Targets are filled in.
	Load loadgen.Config
	// FaultLoad, when set, is more traffic from the injection on: the
	// scenarios whose fault is a traffic shape.
	FaultLoad *loadgen.Config
	// FaultLoadAvoidsVictim sends FaultLoad to every node but the victim.
	FaultLoadAvoidsVictim bool
	// Setup prepares the stack before the load starts (limits).
	Setup func(ctx context.Context, e *Env) error
	// Inject causes the fault.
	Inject func(ctx context.Context, e *Env) (Undo, error)
	// Detect bounds the time to detect: the rule's grace period plus the
	// time the fault takes to show in the observations.
	Detect time.Duration
	// Deadline bounds the time from injection to resolution.
	Deadline time.Duration
}

// ErrNeedsProcess is returned by faults that only a stack in this process can
// inject.
var ErrNeedsProcess = errors.New("this fault needs the stack in this process (operator demo); against a remote stack, stop the node or Redis yourself")

func steady() loadgen.Config {
	return loadgen.Config{Pattern: loadgen.Steady, RPS: 100, Keys: 20}
}

// All returns every scenario, in the order `demo all` runs them.
func All() []Scenario {
	return []Scenario{
		{
			Name:        "node_kill",
			Description: "stop a rate limiter node: it stops serving and heartbeating",
			Rule:        "node_down",
			RootCause:   "node_process_down",
			UndoOnFire:  true,
			Load:        steady(),
			Inject: func(ctx context.Context, e *Env) (Undo, error) {
				if e.Proc == nil {
					return nil, ErrNeedsProcess
				}
				id := e.Victim()
				if err := e.Proc.KillNode(id); err != nil {
					return nil, err
				}
				return func(ctx context.Context) error { return e.Proc.RestartNode(ctx, id) }, nil
			},
			Detect:   15 * time.Second,
			Deadline: 60 * time.Second,
		},
		{
			Name:        "redis_down",
			Description: "take Redis away from every node and the observer",
			Rule:        "redis_disconnected",
			RootCause:   "redis_outage",
			UndoOnFire:  true,
			Load:        steady(),
			Inject: func(ctx context.Context, e *Env) (Undo, error) {
				if e.Proc != nil {
					if err := e.Proc.StopRedis(); err == nil {
						return func(context.Context) error { return e.Proc.StartRedis() }, nil
					}
				}
				// A real Redis: pause every client (the pause ends on its
				// own after a minute if the undo never comes).
				if err := e.Redis.Do(ctx, "CLIENT", "PAUSE", "60000", "ALL").Err(); err != nil {
					return nil, fmt.Errorf("CLIENT PAUSE: %w", err)
				}
				return func(ctx context.Context) error { return e.Redis.Do(ctx, "CLIENT", "UNPAUSE").Err() }, nil
			},
			Detect:   15 * time.Second,
			Deadline: 60 * time.Second,
		},
		{
			Name:        "redis_latency",
			Description: "delay every Redis call of every node by 25 ms (chaos hook)",
			Rule:        "redis_latency",
			RootCause:   "redis_slow",
			// Every check waits for its Redis call: check latency breaks too.
			AlsoFires:  []string{"high_latency"},
			UndoOnFire: true,
			Load:       steady(),
			Inject: func(ctx context.Context, e *Env) (Undo, error) {
				return chaosAll(ctx, e, api.Chaos{RedisDelayMS: 25})
			},
			Detect:   50 * time.Second,
			Deadline: 90 * time.Second,
		},
		{
			Name:        "clock_skew",
			Description: "skew one node's clock by +2 s (chaos hook); the repair drains it",
			Rule:        "clock_skew",
			RootCause:   "clock_skew",
			Also:        []string{"counter_drift"},
			Action:      "drain_node",
			Load:        steady(),
			Inject: func(ctx context.Context, e *Env) (Undo, error) {
				id := e.Victim()
				c := e.Nodes[id]
				if _, err := c.SetChaos(ctx, api.Chaos{ClockSkewMS: 2000}); err != nil {
					return nil, err
				}
				return func(ctx context.Context) error {
					_, err1 := c.ClearChaos(ctx)
					_, err2 := e.Any().Undrain(ctx, id)
					return errors.Join(err1, err2)
				}, nil
			},
			Detect:   15 * time.Second,
			Deadline: 60 * time.Second,
		},
		{
			Name:        "counter_drift",
			Description: "skew one node's clock by 400 ms (under the skew alarm) while the other nodes serve a key at 100 checks/s: the skewed node counts its window differently",
			Rule:        "counter_drift",
			RootCause:   "clock_skew",
			Also:        []string{"hot_key"},
			UndoOnFire:  true,
			Load:        steady(),
			FaultLoad:   &loadgen.Config{Pattern: loadgen.HotKey, RPS: 200, Keys: 20, HotKey: "drift:1"},
			// The key's log is trimmed by the nodes that serve it, on their
			// clocks; the skewed node's count misses the window's first
			// 400 ms.
			FaultLoadAvoidsVictim: true,
			Setup: func(ctx context.Context, e *Env) error {
				_, err := e.Any().PutLimit(ctx, "drift:*", api.LimitSpec{Limit: 400, WindowMS: 2000, Algorithm: api.AlgorithmSlidingWindowLog})
				return err
			},
			Inject: func(ctx context.Context, e *Env) (Undo, error) {
				c := e.Nodes[e.Victim()]
				if _, err := c.SetChaos(ctx, api.Chaos{ClockSkewMS: 400}); err != nil {
					return nil, err
				}
				return func(ctx context.Context) error { _, err := c.ClearChaos(ctx); return err }, nil
			},
			Detect:   25 * time.Second,
			Deadline: 60 * time.Second,
		},
		{
			Name:        "boundary_burst",
			Description: "bursts just before and after a fixed window's end admit twice its limit; the repair moves the key to the sliding log",
			Rule:        "over_admission",
			RootCause:   "fixed_window_boundary",
			Action:      "update_limit",
			Load:        steady(),
			FaultLoad:   &loadgen.Config{Pattern: loadgen.Boundary, BurstKey: "burst:1", Burst: 50, Window: 5 * time.Second},
			Setup: func(ctx context.Context, e *Env) error {
				_, err := e.Any().PutLimit(ctx, "burst:1", api.LimitSpec{Limit: 50, WindowMS: 5000, Algorithm: api.AlgorithmFixedWindow})
				return err
			},
			Inject: func(ctx context.Context, e *Env) (Undo, error) {
				// The fault is the traffic shape on a fixed window, already
				// running; nothing more to inject.
				return nil, nil
			},
			Detect:   20 * time.Second,
			Deadline: 60 * time.Second,
		},
		{
			Name:        "hot_key",
			Description: "one key takes half of all checks; the repair blocks it, after approval",
			Rule:        "hot_key",
			RootCause:   "hot_key_client",
			Action:      "block_key",
			Approve:     true,
			Load:        steady(),
			FaultLoad:   &loadgen.Config{Pattern: loadgen.HotKey, RPS: 300, Keys: 20, HotKey: "hot:1"},
			Inject: func(ctx context.Context, e *Env) (Undo, error) {
				return nil, nil // the traffic shape is the fault
			},
			Detect:   50 * time.Second,
			Deadline: 90 * time.Second,
		},
		{
			Name:        "stuck_key",
			Description: "a counter key loses its TTL (PERSIST) and nothing touches it again: it would never expire",
			Rule:        "stale_counter",
			RootCause:   "counter_lost_ttl",
			Action:      "reset_counter",
			Load:        steady(),
			Inject: func(ctx context.Context, e *Env) (Undo, error) {
				if _, err := e.Any().Check(ctx, "stuck:1", 1); err != nil {
					return nil, err
				}
				keys, err := e.Redis.Keys(ctx, "ratelimit:{stuck:1}:*").Result()
				if err != nil || len(keys) == 0 {
					return nil, fmt.Errorf("find the counter of stuck:1: %v (%d keys)", err, len(keys))
				}
				sort.Strings(keys)
				for _, k := range keys {
					if err := e.Redis.Persist(ctx, k).Err(); err != nil {
						return nil, err
					}
				}
				return nil, nil
			},
			Detect:   15 * time.Second,
			Deadline: 60 * time.Second,
		},
		{
			Name:        "over_throttling",
			Description: "a fixed-window counter is stuck full (its window starts tomorrow): every check of the key is denied",
			Rule:        "over_throttling",
			RootCause:   "counter_stuck",
			Action:      "reset_counter",
			Load:        loadgen.Config{Pattern: loadgen.Steady, RPS: 100, Keys: 10, KeyPrefix: "frozen:"},
			Setup: func(ctx context.Context, e *Env) error {
				_, err := e.Any().PutLimit(ctx, "frozen:*", api.LimitSpec{Limit: 200, WindowMS: 10000, Algorithm: api.AlgorithmFixedWindow})
				return err
			},
			Inject: func(ctx context.Context, e *Env) (Undo, error) {
				now, err := e.Redis.Time(ctx).Result()
				if err != nil {
					return nil, err
				}
				key := "ratelimit:{frozen:3}:fw"
				start := now.Add(24 * time.Hour).UnixMicro()
				if err := e.Redis.HSet(ctx, key, "s", start, "n", 1_000_000).Err(); err != nil {
					return nil, err
				}
				return nil, e.Redis.PExpire(ctx, key, 48*time.Hour).Err()
			},
			Detect:   50 * time.Second,
			Deadline: 90 * time.Second,
		},
	}
}

// Find returns the scenario named name.
func Find(name string) (Scenario, bool) {
	for _, s := range All() {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}

// Names lists the scenarios.
func Names() []string {
	var out []string
	for _, s := range All() {
		out = append(out, s.Name)
	}
	return out
}

func chaosAll(ctx context.Context, e *Env, ch api.Chaos) (Undo, error) {
	for _, id := range e.Order {
		if _, err := e.Nodes[id].SetChaos(ctx, ch); err != nil {
			return nil, fmt.Errorf("node %s: %w (is it started with --enable-chaos?)", id, err)
		}
	}
	return func(ctx context.Context) error {
		var errs []error
		for _, id := range e.Order {
			if _, err := e.Nodes[id].ClearChaos(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}, nil
}
