// Package pdapi is a small hand-written client for PD's HTTP API
// (/pd/api/v1), the control plane of a TiKV cluster. It reads stores,
// regions, members, health and the schedule configuration, and it adds and
// removes evict-leader schedulers, creates transfer-leader and transfer-peer
// operators, and sets store state and store limits.
//
// It knows PD's quirks so callers don't have to: error and success bodies are
// JSON string literals; store capacity and available space are humanised
// strings ("49.98GiB") that [ByteSize] turns into bytes; last_heartbeat is
// unix nanoseconds; state_name is one of the [StoreState] constants, and a
// killed store stays Disconnected until max-store-down-time (30m by default)
// before PD calls it Down; a leaderless region has a leader object without an
// id ([Region.HasLeader]); GET /stores hides Tombstone stores
// ([Client.StoresByState] does not); and deleting an evict-leader scheduler
// that is already gone answers 404, which [Client.RemoveEvictLeader] treats as
// done. Every PD member answers the API (followers proxy to the leader), so
// the client takes several URLs and fails over between them, remembering the
// last one that answered.
//
// Errors from PD are [*Error] values carrying the HTTP status and PD's own
// message; [IsTransient] tells a retryable failure from a permanent one.
//
// The package owns no goroutines and no global state; a [Client] is safe for
// concurrent use. It imports only the standard library. It must never import
// PD's or TiKV's own Go modules, nor any Operator package (schemas, bus,
// observers, evaluators, actuators, ratelimiter).
package pdapi
