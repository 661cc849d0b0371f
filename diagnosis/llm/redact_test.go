package llm

import (
	"reflect"
	"testing"
)

func TestRedactText(t *testing.T) {
	tests := []struct {
		name     string
		register []string
		in       string
		want     string
	}{
		{name: "a registered name alone", register: []string{"alpha"}, in: "alpha", want: "<k1>"},
		{name: "a registered word in a sentence", register: []string{"alpha"}, in: "node alpha is down.", want: "node <k1> is down."},
		{name: "a registered name is not found inside another word", register: []string{"node-1"}, in: "node-10 and node-1", want: "<k2> and <k1>"},
		{name: "identifier shapes", in: "dial tcp 10.0.0.5:6379: connection refused", want: "dial tcp <k1>: connection refused"},
		{name: "a path keeps its plain segments", in: "GET /api/v1/counters/user:42", want: "GET /api/v1/counters/<k1>"},
		{name: "an escaped name maps to the same placeholder", register: []string{"user:42"}, in: "/counters/user%3A42 and user:42", want: "/counters/<k1> and <k1>"},
		{name: "a query and label matchers", in: `rate(denied_total{key="user:7"}[1m])`, want: `rate(denied_total{key="<k1>"}[1m])`},
		{name: "a hostname and a glob", in: "redis.internal serves user:*", want: "<k1> serves <k2>"},
		{name: "plain values stay", in: "42 0.5 250ms 5MB 12% 1m30s 2026-01-02T15:04:05Z 2026-01-02 v1 -3 sliding_window_log Redis",
			want: "42 0.5 250ms 5MB 12% 1m30s 2026-01-02T15:04:05Z 2026-01-02 v1 -3 sliding_window_log Redis"},
		{name: "a name with spaces", register: []string{"east zone"}, in: "store in east zone failed", want: "store in <k1> failed"},
		{name: "the same name twice gets one placeholder", in: "node-1 node-2 node-1", want: "<k1> <k2> <k1>"},
		{name: "empty", in: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRedactor(true)
			for _, n := range tt.register {
				r.register(n)
			}
			got := r.text(tt.in)
			if got != tt.want {
				t.Fatalf("text(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if back := r.restore(got); back != tt.in && tt.name != "an escaped name maps to the same placeholder" {
				t.Fatalf("restore(%q) = %q, want %q", got, back, tt.in)
			}
		})
	}
}

func TestRedactOff(t *testing.T) {
	r := newRedactor(false)
	r.register("node-1")
	v := map[string]any{"id": "node-1", "note": "node-1 at 10.0.0.1"}
	r.collect(v, "")
	if got := r.value(v); !reflect.DeepEqual(got, v) {
		t.Fatalf("value = %v, want it unchanged", got)
	}
	if got := r.text("node-1"); got != "node-1" {
		t.Fatalf("text = %q, want it unchanged", got)
	}
	if got := r.restore("<k1>"); got != "<k1>" {
		t.Fatalf("restore = %q, want it unchanged", got)
	}
}

func TestRedactValue(t *testing.T) {
	r := newRedactor(true)
	in := map[string]any{
		"nodes": []any{
			map[string]any{"id": "alpha", "state": "down", "reachable": false},
			map[string]any{"id": "beta", "state": "up"},
		},
		"count_by_node": map[string]any{"alpha": 3, "node-7": 4},
		"store_id":      "12",
		"leader_addr":   "pd-0",
		"p99_ms":        12.5,
		"summary":       "alpha is down; beta is up",
	}
	r.collect(in, "")
	got := r.value(in)
	want := map[string]any{
		"nodes": []any{
			map[string]any{"id": "<k2>", "state": "down", "reachable": false},
			map[string]any{"id": "<k3>", "state": "up"},
		},
		// A key is a name when it is one elsewhere or is shaped like one.
		"count_by_node": map[string]any{"<k2>": 3, "<k4>": 4},
		"store_id":      "12", // numbers are never names
		"leader_addr":   "<k1>",
		"p99_ms":        12.5,
		"summary":       "<k2> is down; <k3> is up",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("value =\n %v\nwant\n %v", got, want)
	}
	if back := r.restoreValue(got).(map[string]any); back["summary"] != in["summary"] || back["leader_addr"] != "pd-0" {
		t.Fatalf("restoreValue = %v", back)
	}
}

func TestRedactKnownKeepsWords(t *testing.T) {
	r := newRedactor(true)
	r.register("user:42")
	got := r.known("counter {{ violation.key }} of user:42 has no TTL (see 10.0.0.1)")
	want := "counter {{ violation.key }} of <k1> has no TTL (see 10.0.0.1)"
	if got != want {
		t.Fatalf("known = %q, want %q", got, want)
	}
}
