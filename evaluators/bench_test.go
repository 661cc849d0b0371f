package evaluators

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/operator-dev/operator/schemas"
)

// benchRules are 10 rules of the kinds a rate limiter rule set has: per
// node, per key and global.
const benchRules = `
subject: bench
rules:
  - name: node_down
    each: obs.state.nodes
    key: item.id
    expr: item.state == "down" || !item.reachable
    summary: 'node {{ item.id }} is {{ item.state }}'
    remediate: {action: drain_node, params: {node_id: item.id}}
  - name: node_slow
    each: obs.state.nodes
    key: item.id
    expr: item.p99_ms > 250.0
    for: 30s
  - name: clock_skew
    each: obs.state.nodes
    key: item.id
    expr: item.clock_skew_ms > 500.0 || item.clock_skew_ms < -500.0
  - name: node_draining
    each: obs.state.nodes
    key: item.id
    expr: item.state == "draining"
    for: 10m
  - name: over_limit
    each: obs.state.keys
    key: item.key
    expr: item.count > item.limit * 1.1
  - name: ghost_allowing
    each: obs.state.keys
    key: item.key
    expr: item.limit == 0 && item.remaining > 0
  - name: hot_key
    each: obs.state.keys
    key: item.key
    expr: item.rate > 1000.0
    for: 1m
  - name: redis_unreachable
    expr: '!obs.state.redis.reachable'
  - name: redis_slow
    expr: obs.state.redis.ping_ms > 50.0
    for: 30s
  - name: counter_drift
    expr: obs.state.nodes.exists(n, n.counted - obs.state.nodes[0].counted > 100.0)
`

func benchState() map[string]any {
	nodes := []any{}
	for i := range 3 {
		nodes = append(nodes, map[string]any{"id": fmt.Sprint("n", i), "state": "up", "reachable": true, "p99_ms": 12.5, "clock_skew_ms": 3.0, "counted": 1000.0})
	}
	keys := []any{}
	for i := range 100 {
		keys = append(keys, map[string]any{"key": fmt.Sprint("user:", i), "count": 10.0, "limit": 100.0, "remaining": 90.0, "rate": 5.0})
	}
	return map[string]any{"redis": map[string]any{"reachable": true, "ping_ms": 0.4}, "nodes": nodes, "keys": keys}
}

// BenchmarkEngine measures observations per second through the engine,
// in-memory store, for 10 rules over 3 nodes and 100 keys (313 evaluations
// per observation). One node is down throughout, so one alert is firing
// and written on every observation, as during an incident.
func BenchmarkEngine(b *testing.B) {
	rs, err := ParseRuleSet("bench.yaml", []byte(benchRules), LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	pub := schemas.PublisherFunc(func(context.Context, string, event.Event) error { return nil })
	e, err := NewEngine(Config{}, []*RuleSet{rs}, &MemoryStore{}, pub)
	if err != nil {
		b.Fatal(err)
	}
	state := benchState()
	state["nodes"].([]any)[1].(map[string]any)["state"] = "down"
	evs := make([]event.Event, b.N)
	for i := range evs {
		ts := at(time.Duration(i) * time.Second)
		evs[i] = observationEvent(b, "bench", "i1", fmt.Sprint("obs-", i), ts, state)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := e.Observe(ctx, evs[i], evs[i].Time()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "obs/s")
}
