// Package pdfake is a fake PD for tests: an in-memory model of a TiKV
// cluster's stores, regions, PD members, schedulers and operators, served
// over HTTP with PD's real API shapes, status codes and error strings under
// /pd/api/v1, plus a fake Prometheus instant-query API (/api/v1/query) that
// answers TiKV's metrics from the same model.
//
// Time is the model's, never the wall clock: [Cluster.Step] advances it.
// state_name is derived from heartbeat age exactly as PD's BuildStoreInfo
// does (Disconnected after 20 s without a heartbeat, Down after
// max-store-down-time, 30m by default; Offline and Tombstone as the model
// sets them). Step also runs what PD and TiKV would do in the meantime: live
// stores heartbeat, operators created through the API apply, and each
// evict-leader scheduler moves a batch of leaders off its stores.
//
// Simplifications, on purpose: there are no raft elections, so a leader
// moves only through an operator, an evict-leader scheduler or
// [Cluster.SetRegionLeader], and an evict-leader scheduler moves leaders off
// a store even while that store is not heartbeating. Down and pending peers
// are derived from the age of their store's last heartbeat (pending after
// 20 s, down after 10 minutes, TiKV's max-peer-down-duration), not reported
// by a leader. The Prometheus side answers only the query forms that
// subjects/tikv/tikvmetrics sends and refuses others (including a
// histogram_quantile without sum by (le, instance)), so a wrong query fails
// loudly instead of returning nothing.
//
// A [Cluster] is safe for concurrent use. The package is for tests only; it
// imports subjects/tikv/pdapi for PD's typed values and must not import any
// subject or core package (observers, evaluators, actuators, schemas, bus).
package pdfake
