package ratelimiter

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/operator-dev/operator/schemas"
)

func TestCatalog(t *testing.T) {
	cat, err := Catalog()
	if err != nil {
		t.Fatalf("embedded catalog: %v", err)
	}
	if cat.Subject != Name {
		t.Fatalf("subject %q", cat.Subject)
	}
	var names []string
	for _, a := range cat.Actions {
		names = append(names, a.Name)
	}
	want := []string{"reset_counter", "update_limit", "block_key", "unblock_key", "drain_node", "undrain_node"}
	if !slices.Equal(names, want) {
		t.Fatalf("actions %v, want %v", names, want)
	}
	if a, _ := cat.Action("block_key"); !a.RequiresApproval {
		t.Error("block_key must need approval")
	}
	for _, a := range cat.Actions {
		if a.Target == "" {
			t.Errorf("%s has no target: every rate limiter action acts on one resource", a.Name)
		}
	}
}

// state is a rate limiter observation state with one key, one limit, one
// block and two nodes; tests change it per case.
func state() map[string]any {
	return map[string]any{
		"redis": map[string]any{"reachable": true, "ping_ms": 0.3,
			"keys_without_ttl": map[string]any{"count": 0, "sample": []any{}, "scanned": 10, "complete": true}},
		"nodes": []any{
			nodeState("n1", "up", false), nodeState("n2", "up", false),
		},
		"keys": []any{map[string]any{"key": "user:1", "limit": 10, "window_ms": 60000, "algorithm": "fixed_window",
			"count_by_node": map[string]any{"n1": 3, "n2": 3}, "drift": 0, "allowed_max_window": 3, "allowed_last_window": 3,
			"checks_per_s": 1, "denied_per_s": 0, "ttl_ms": 50000, "blocked": false}},
		"limits":  []any{map[string]any{"pattern": "user:*", "limit": 10, "window_ms": 60000, "algorithm": "fixed_window"}},
		"blocks":  []any{map[string]any{"key": "bot:7", "ttl_ms": 60000, "reason": "hot"}},
		"summary": map[string]any{"nodes_total": 2, "nodes_up": 2, "keys_tracked": 1, "median_key_checks_per_s": 1},
	}
}

func nodeState(id, st string, draining bool) map[string]any {
	return map[string]any{"id": id, "address": "http://" + id, "state": st, "reachable": true, "redis_up": true,
		"draining": draining, "check_p99_ms": 1, "redis_p99_ms": 0.5, "checks_per_s": 10, "denied_per_s": 0,
		"clock_offset_ms": 0, "heartbeat_age_ms": 100}
}

// TestVerifyExpressions evaluates every verify of the catalog on
// observations that pass schemas/ratelimiter.state.v1.json, so a verify that
// names a field the observer does not publish fails here, not in
// production.
func TestVerifyExpressions(t *testing.T) {
	cat, err := Catalog()
	if err != nil {
		t.Fatal(err)
	}
	v, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	key := func(mut func(k map[string]any)) func(s map[string]any) {
		return func(s map[string]any) { mut(s["keys"].([]any)[0].(map[string]any)) }
	}
	tests := []struct {
		name   string
		action string
		params map[string]any
		change func(s map[string]any)
		errors []any
		want   bool
	}{
		{name: "reset: counter below the limit with a TTL", action: "reset_counter", params: map[string]any{"key": "user:1"}, want: true},
		{name: "reset: counter absent", action: "reset_counter", params: map[string]any{"key": "user:1"},
			change: func(s map[string]any) { s["keys"] = []any{} }, want: true},
		{name: "reset: counter still full on one node", action: "reset_counter", params: map[string]any{"key": "user:1"},
			change: key(func(k map[string]any) { k["count_by_node"] = map[string]any{"n1": 10, "n2": 2} })},
		{name: "reset: counter still without TTL", action: "reset_counter", params: map[string]any{"key": "user:1"},
			change: key(func(k map[string]any) { k["ttl_ms"] = -1 })},
		{name: "reset: key still in the TTL-less sample", action: "reset_counter", params: map[string]any{"key": "user:1"},
			change: func(s map[string]any) {
				s["redis"].(map[string]any)["keys_without_ttl"] = map[string]any{"count": 1, "scanned": 1, "complete": true,
					"sample": []any{map[string]any{"redis_key": "ratelimit:{user:1}:fw", "key": "user:1"}}}
			}},
		{name: "reset: redis unreachable proves nothing", action: "reset_counter", params: map[string]any{"key": "user:1"},
			change: func(s map[string]any) { s["redis"].(map[string]any)["reachable"] = false }},
		{name: "update_limit: applied", action: "update_limit",
			params: map[string]any{"pattern": "user:*", "limit": 10, "window_ms": 60000, "algorithm": "fixed_window"}, want: true},
		{name: "update_limit: other algorithm still", action: "update_limit",
			params: map[string]any{"pattern": "user:*", "limit": 10, "window_ms": 60000, "algorithm": "sliding_window_log"}},
		{name: "block: listed", action: "block_key", params: map[string]any{"key": "bot:7", "ttl_ms": 60000, "reason": "hot"}, want: true},
		{name: "block: not listed", action: "block_key", params: map[string]any{"key": "bot:8", "ttl_ms": 60000, "reason": "hot"}},
		{name: "block: the key shows blocked", action: "block_key", params: map[string]any{"key": "user:1", "ttl_ms": 60000, "reason": "hot"},
			change: key(func(k map[string]any) { k["blocked"] = true }), want: true},
		{name: "unblock: the key still shows blocked", action: "unblock_key", params: map[string]any{"key": "user:1"},
			change: key(func(k map[string]any) { k["blocked"] = true })},
		{name: "unblock: gone", action: "unblock_key", params: map[string]any{"key": "bot:8"}, want: true},
		{name: "unblock: still listed", action: "unblock_key", params: map[string]any{"key": "bot:7"}},
		{name: "unblock: incomplete observation proves nothing", action: "unblock_key", params: map[string]any{"key": "bot:8"},
			errors: []any{map[string]any{"source": "n1/blocks", "message": "timeout"}}},
		{name: "drain: draining", action: "drain_node", params: map[string]any{"node_id": "n2"},
			change: func(s map[string]any) {
				s["nodes"] = []any{nodeState("n1", "up", false), nodeState("n2", "draining", true)}
			}, want: true},
		{name: "drain: still serving", action: "drain_node", params: map[string]any{"node_id": "n2"}},
		{name: "undrain: back up", action: "undrain_node", params: map[string]any{"node_id": "n2"}, want: true},
		{name: "undrain: still draining", action: "undrain_node", params: map[string]any{"node_id": "n2"},
			change: func(s map[string]any) {
				s["nodes"] = []any{nodeState("n1", "up", false), nodeState("n2", "draining", true)}
			}},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ok := cat.Action(tt.action)
			if !ok {
				t.Fatalf("no action %s", tt.action)
			}
			if err := a.ValidateParams(tt.params); err != nil {
				t.Fatalf("params: %v", err)
			}
			s := state()
			if tt.change != nil {
				tt.change(s)
			}
			obs := map[string]any{"subject": Name, "instance": "prod", "observed_at": time.Now().UTC().Format(time.RFC3339Nano),
				"observer": map[string]any{"duration_ms": 3, "errors": tt.errors}, "state": s}
			data, err := json.Marshal(obs)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Validate(schemas.TypeObservation, data); err != nil {
				t.Fatalf("test observation is not a valid rate limiter observation: %v", err)
			}
			got, err := a.Verified(data, tt.params)
			if err != nil {
				t.Fatalf("verify could not judge a valid observation: %v", err)
			}
			if got != tt.want {
				t.Fatalf("verify = %v, want %v", got, tt.want)
			}
			covered[tt.action] = true
		})
	}
	for _, a := range cat.Actions {
		if !covered[a.Name] {
			t.Errorf("no verify case for %s", a.Name)
		}
	}
}
