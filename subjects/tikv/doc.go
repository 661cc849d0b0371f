// Package tikv is the TiKV subject: everything Operator knows about watching
// and repairing a TiKV cluster through PD's HTTP API (package pdapi below)
// and Prometheus (package tikvmetrics), exported as one value, [Subject].
//
// It holds:
//   - the observer ([Observer]): every store (Tombstones included) with its
//     state, heartbeat age, sizes, leader and region counts, gRPC p99 and
//     evict-leader hold; the regions with down, missing, pending and offline
//     peers; PD's members and their health; PD's schedule configuration and
//     running operators, in the shape of schemas/tikv.state.v1.json. One poll
//     makes one call per PD endpoint and one query per metric, all at once,
//     whatever the size of the cluster. A source that cannot be read is
//     listed in the observation's errors and its fields are left out, so a
//     rule that reads them fails instead of taking the gap for a healthy
//     value;
//   - the rule set that judges them (rules.yaml, tested by rules_test.yaml);
//   - the action catalog (actions.yaml) and the [Executor] that runs those
//     actions through PD, with the read-before-write that makes a repeat
//     harmless and the guards that refuse a harmful request (no evicting the
//     leaders of the last Up store that could hold them). PD's errors keep
//     their own classification ([pdapi.Error] answers Transient()); the
//     executor's own refusals are permanent.
//
// It never imports PD's or TiKV's Go modules nor NATS, and no code path here
// runs a process or a shell.
package tikv
