package tikv

import "github.com/operator-dev/operator/subjects"

// views are the tables the status page shows of a cluster: its stores, the
// health of its regions and its PD members, from the latest observation.
func views() []subjects.View {
	return []subjects.View{
		{
			Name:  "stores",
			Title: "Stores",
			Rows:  "obs.state.stores",
			// Serving stores last, so a store in trouble is the first row.
			OrderBy: `row.state_name == "Up" || row.state_name == "Serving" ? 1 : 0`,
			Columns: []subjects.Column{
				{Title: "store", Expr: "row.id"},
				{Title: "state", Expr: "row.state_name"},
				{Title: "address", Expr: "row.address"},
				{Title: "heartbeat age", Expr: `has(row.last_heartbeat_age_s) && row.last_heartbeat_age_s != null ? row.last_heartbeat_age_s : "–"`, Unit: "s"},
				{Title: "leaders", Expr: "row.leader_count"},
				{Title: "regions", Expr: "row.region_count"},
				{Title: "available", Expr: "row.capacity_bytes > 0 ? 100.0 * double(row.available_bytes) / double(row.capacity_bytes) : 0.0", Unit: "%"},
				{Title: "p99", Expr: `has(row.p99_ms) && row.p99_ms != null ? row.p99_ms : "–"`, Unit: "ms"},
				{Title: "evict leader", Expr: `row.evict_leader ? "evicting" : ""`},
			},
			Status: `row.state_name == "Down" || row.state_name == "Disconnected" ? "bad" : (row.state_name == "Offline" || row.state_name == "Removing" || row.evict_leader ? "warn" : "ok")`,
		},
		{
			Name:  "regions",
			Title: "Region health",
			Rows:  "[obs.state.regions]",
			Columns: []subjects.Column{
				{Title: "regions", Expr: "row.count"},
				{Title: "down peer", Expr: "row.down_peer.count"},
				{Title: "missing peer", Expr: "row.miss_peer.count"},
				{Title: "pending peer", Expr: "row.pending_peer.count"},
				{Title: "offline peer", Expr: "row.offline_peer.count"},
				{Title: "leaderless", Expr: "row.leaderless.count"},
			},
			Status: `row.leaderless.count > 0 ? "bad" : (row.down_peer.count + row.miss_peer.count + row.pending_peer.count + row.offline_peer.count > 0 ? "warn" : "ok")`,
		},
		{
			Name:  "members",
			Title: "PD members",
			Rows:  "obs.state.members",
			Columns: []subjects.Column{
				{Title: "member", Expr: "row.name"},
				{Title: "leader", Expr: `row.leader ? "leader" : ""`},
				{Title: "health", Expr: `row.health ? "healthy" : "unhealthy"`},
				{Title: "client URL", Expr: `size(row.client_urls) > 0 ? row.client_urls[0] : ""`},
			},
			Status: `row.health ? "ok" : "bad"`,
		},
	}
}
