package tikv_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/operator-dev/operator/schemas"
	"github.com/operator-dev/operator/subjects/tikv"
)

func TestCatalog(t *testing.T) {
	cat, err := tikv.Catalog()
	if err != nil {
		t.Fatalf("embedded catalog: %v", err)
	}
	if cat.Subject != tikv.Name {
		t.Fatalf("subject %q", cat.Subject)
	}
	var names []string
	for _, a := range cat.Actions {
		names = append(names, a.Name)
		if a.Target == "" {
			t.Errorf("%s has no target: every TiKV action acts on one store or region", a.Name)
		}
	}
	want := []string{"evict_leader", "evict_leader_with_approval", "cancel_evict_leader", "transfer_leader", "transfer_peer", "set_store_limit"}
	if !slices.Equal(names, want) {
		t.Fatalf("actions %v, want %v", names, want)
	}
	for name, approval := range map[string]bool{"evict_leader": false, "evict_leader_with_approval": true, "transfer_peer": true, "cancel_evict_leader": false} {
		if a, _ := cat.Action(name); a.RequiresApproval != approval {
			t.Errorf("%s requires_approval = %v, want %v", name, a.RequiresApproval, approval)
		}
	}
}

func TestParams(t *testing.T) {
	cat, err := tikv.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		action string
		params map[string]any
		ok     bool
	}{
		{"evict_leader", map[string]any{"store_id": "3"}, true},
		{"evict_leader", map[string]any{"store_id": 3}, false},
		{"evict_leader", map[string]any{"store_id": "0"}, false},
		{"evict_leader", map[string]any{"store_id": "*"}, false},
		{"evict_leader", map[string]any{"store_id": "3", "force": true}, false},
		{"evict_leader", map[string]any{}, false},
		{"transfer_leader", map[string]any{"region_id": "8", "to_store_id": "2"}, true},
		{"transfer_leader", map[string]any{"region_id": "8", "store_id": "2"}, false},
		{"transfer_peer", map[string]any{"region_id": "8", "from_store_id": "3", "to_store_id": "4"}, true},
		{"set_store_limit", map[string]any{"store_id": "3", "rate": 15}, true},
		{"set_store_limit", map[string]any{"store_id": "3", "rate": 0}, false},
		{"set_store_limit", map[string]any{"store_id": "3", "rate": 15, "type": "add-peer"}, true},
		{"set_store_limit", map[string]any{"store_id": "3", "rate": 15, "type": "both"}, false},
	}
	for _, tc := range tests {
		a, _ := cat.Action(tc.action)
		err := a.ValidateParams(tc.params)
		if (err == nil) != tc.ok {
			t.Errorf("%s %v: err = %v, want ok %v", tc.action, tc.params, err, tc.ok)
		}
		if tc.ok {
			if target, err := a.TargetOf(tc.params); err != nil || target == "" {
				t.Errorf("%s %v: target %q, %v", tc.action, tc.params, target, err)
			}
		}
	}
}

// state is testdata/state.json: the observer's state of a healthy cluster
// (stores 1-3 with 3 leaders each, no operator running).
func state(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func storeOf(s map[string]any, id float64) map[string]any {
	for _, st := range s["stores"].([]any) {
		if m := st.(map[string]any); m["id"] == id {
			return m
		}
	}
	panic("no store")
}

// TestVerifyExpressions evaluates every verify of the catalog on
// observations that pass schemas/tikv.state.v1.json, so a verify that names
// a field the observer does not publish fails here, not in production.
func TestVerifyExpressions(t *testing.T) {
	cat, err := tikv.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	v, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	evicted := func(id float64, leaders int) func(s map[string]any) {
		return func(s map[string]any) {
			st := storeOf(s, id)
			st["evict_leader"], st["leader_count"] = true, leaders
		}
	}
	running := func(ids ...any) func(s map[string]any) {
		return func(s map[string]any) { s["operators"] = map[string]any{"count": len(ids), "region_ids": ids} }
	}
	tests := []struct {
		name   string
		action string
		params map[string]any
		change func(s map[string]any)
		// unjudged: the observation cannot be judged (an error, never
		// "false").
		unjudged bool
		want     bool
	}{
		{name: "evict: held and no leader left", action: "evict_leader", params: map[string]any{"store_id": "2"},
			change: evicted(2, 0), want: true},
		{name: "evict: held, leaders still leaving", action: "evict_leader", params: map[string]any{"store_id": "2"},
			change: evicted(2, 1)},
		{name: "evict: no leader but not held", action: "evict_leader", params: map[string]any{"store_id": "2"},
			change: func(s map[string]any) { storeOf(s, 2)["leader_count"] = 0 }},
		{name: "evict: another store held", action: "evict_leader", params: map[string]any{"store_id": "2"},
			change: evicted(3, 0)},
		{name: "evict: store list unread proves nothing", action: "evict_leader", params: map[string]any{"store_id": "2"},
			change: func(s map[string]any) { delete(s, "stores") }, unjudged: true},
		{name: "evict with approval: held and no leader left", action: "evict_leader_with_approval", params: map[string]any{"store_id": "3"},
			change: evicted(3, 0), want: true},
		{name: "evict with approval: not held", action: "evict_leader_with_approval", params: map[string]any{"store_id": "3"}},
		{name: "cancel: released", action: "cancel_evict_leader", params: map[string]any{"store_id": "2"}, want: true},
		{name: "cancel: another store still held is fine", action: "cancel_evict_leader", params: map[string]any{"store_id": "2"},
			change: evicted(3, 0), want: true},
		{name: "cancel: still held", action: "cancel_evict_leader", params: map[string]any{"store_id": "2"},
			change: evicted(2, 0)},
		{name: "cancel: evict-leader list unread proves nothing", action: "cancel_evict_leader", params: map[string]any{"store_id": "2"},
			change: func(s map[string]any) {
				for _, st := range s["stores"].([]any) {
					delete(st.(map[string]any), "evict_leader")
				}
			}, unjudged: true},
		{name: "transfer leader: operator done, target leads", action: "transfer_leader",
			params: map[string]any{"region_id": "101", "to_store_id": "3"}, change: running(107.0), want: true},
		{name: "transfer leader: operator still running", action: "transfer_leader",
			params: map[string]any{"region_id": "101", "to_store_id": "3"}, change: running(101.0)},
		{name: "transfer leader: operator list truncated", action: "transfer_leader",
			params: map[string]any{"region_id": "101", "to_store_id": "3"},
			change: func(s map[string]any) { s["operators"] = map[string]any{"count": 2000, "region_ids": []any{5.0}} }},
		{name: "transfer leader: target leads nothing", action: "transfer_leader",
			params: map[string]any{"region_id": "101", "to_store_id": "3"},
			change: func(s map[string]any) { storeOf(s, 3)["leader_count"] = 0 }},
		{name: "transfer leader: operators unread proves nothing", action: "transfer_leader",
			params: map[string]any{"region_id": "101", "to_store_id": "3"},
			change: func(s map[string]any) { delete(s, "operators") }, unjudged: true},
		{name: "transfer peer: operator done, target Up with regions", action: "transfer_peer",
			params: map[string]any{"region_id": "101", "from_store_id": "1", "to_store_id": "3"}, want: true},
		{name: "transfer peer: target Disconnected", action: "transfer_peer",
			params: map[string]any{"region_id": "101", "from_store_id": "1", "to_store_id": "3"},
			change: func(s map[string]any) { storeOf(s, 3)["state_name"] = "Disconnected" }},
		{name: "store limit: both set", action: "set_store_limit", params: map[string]any{"store_id": "2", "rate": 15.0}, want: true},
		{name: "store limit: both asked, one set", action: "set_store_limit", params: map[string]any{"store_id": "2", "rate": 30.0},
			change: func(s map[string]any) { storeOf(s, 2)["add_peer_limit"] = 30.0 }},
		{name: "store limit: add-peer only", action: "set_store_limit", params: map[string]any{"store_id": "2", "rate": 30.0, "type": "add-peer"},
			change: func(s map[string]any) { storeOf(s, 2)["add_peer_limit"] = 30.0 }, want: true},
		{name: "store limit: remove-peer not yet", action: "set_store_limit", params: map[string]any{"store_id": "2", "rate": 30.0, "type": "remove-peer"},
			change: func(s map[string]any) { storeOf(s, 2)["add_peer_limit"] = 30.0 }},
	}
	covered := map[string]bool{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, ok := cat.Action(tc.action)
			if !ok {
				t.Fatalf("no action %s", tc.action)
			}
			if err := a.ValidateParams(tc.params); err != nil {
				t.Fatalf("params: %v", err)
			}
			s := state(t)
			if tc.change != nil {
				tc.change(s)
			}
			data := observation(t, v, s)
			got, err := a.Verified(data, tc.params)
			switch {
			case tc.unjudged && err == nil:
				t.Fatalf("verify judged an observation missing what it reads: %v", got)
			case !tc.unjudged && err != nil:
				t.Fatalf("verify could not judge a valid observation: %v", err)
			case got != tc.want:
				t.Fatalf("verify = %v, want %v", got, tc.want)
			}
			covered[tc.action] = true
		})
	}
	for _, a := range cat.Actions {
		if !covered[a.Name] {
			t.Errorf("no verify case for %s", a.Name)
		}
	}
}

// observation wraps a state in a valid TiKV observation.
func observation(t *testing.T, v *schemas.Validator, s map[string]any) []byte {
	t.Helper()
	obs := map[string]any{"subject": tikv.Name, "instance": "c1", "observed_at": start.Format(time.RFC3339Nano),
		"observer": map[string]any{"duration_ms": 3, "errors": []any{}}, "state": s}
	data, err := json.Marshal(obs)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Validate(schemas.TypeObservation, data); err != nil {
		t.Fatalf("test observation is not a valid TiKV observation: %v", err)
	}
	return data
}
