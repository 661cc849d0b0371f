package ratelimiter

import "github.com/operator-dev/operator/subjects"

// views are the tables the status page shows of a deployment: its nodes and
// its busiest keys and the keys it blocks, from the latest observation.
func views() []subjects.View {
	return []subjects.View{
		{
			Name:  "nodes",
			Title: "Nodes",
			Rows:  "obs.state.nodes",
			Columns: []subjects.Column{
				{Title: "node", Expr: "row.id"},
				{Title: "state", Expr: `!row.reachable && row.state != "down" ? "unreachable" : (row.draining ? "draining" : row.state)`},
				{Title: "decisions", Expr: "row.checks_per_s", Unit: "/s"},
				{Title: "denied", Expr: "row.denied_per_s", Unit: "/s"},
				{Title: "check p99", Expr: "row.check_p99_ms", Unit: "ms"},
				{Title: "redis p99", Expr: "row.redis_p99_ms", Unit: "ms"},
				{Title: "clock offset", Expr: "row.clock_offset_ms", Unit: "ms"},
				{Title: "heartbeat age", Expr: "row.heartbeat_age_ms", Unit: "ms"},
				{Title: "address", Expr: "row.address"},
			},
			Status: `row.state == "down" || !row.reachable ? "bad" : (row.draining || !row.redis_up ? "warn" : "ok")`,
		},
		{
			Name:       "hot_keys",
			Title:      "Hot keys",
			Rows:       "obs.state.keys.filter(k, k.checks_per_s > 0.0 || k.blocked)",
			OrderBy:    "row.checks_per_s",
			Descending: true,
			Limit:      10,
			Columns: []subjects.Column{
				{Title: "key", Expr: "row.key"},
				{Title: "decisions", Expr: "row.checks_per_s", Unit: "/s"},
				{Title: "denied", Expr: "row.denied_per_s", Unit: "/s"},
				{Title: "limit", Expr: "row.limit"},
				{Title: "window", Expr: "row.window_ms", Unit: "ms"},
				{Title: "algorithm", Expr: "row.algorithm"},
				{Title: "allowed (last window)", Expr: "row.allowed_last_window"},
				{Title: "drift", Expr: "row.drift"},
				{Title: "blocked", Expr: `row.blocked ? "blocked" : ""`},
			},
			Status: `row.blocked ? "bad" : (row.denied_per_s > 0.0 ? "warn" : "ok")`,
		},
		{
			Name:  "blocks",
			Title: "Blocked keys",
			Rows:  "obs.state.blocks",
			Columns: []subjects.Column{
				{Title: "key", Expr: "row.key"},
				{Title: "expires in", Expr: "row.ttl_ms", Unit: "ms"},
				{Title: "reason", Expr: "row.reason"},
			},
			Status: `"warn"`,
		},
	}
}
