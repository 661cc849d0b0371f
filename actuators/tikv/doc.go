// Package tikv is TiKV's part of the actuator: its action catalog
// (actions.yaml, embedded; see [Catalog]) and the [Executor] that runs those
// actions through PD's HTTP API (internal/pdapi).
//
// It owns what each action means for a TiKV cluster: which PD call, which
// read-before-write makes a repeat harmless (a transfer whose leader or
// replica is already in place is done without an operator; releasing a store
// that is not held is done), and which guard refuses a harmful request (no
// evicting the leaders of the last Up store that could hold them). PD's
// errors keep their own classification ([pdapi.Error] answers Transient():
// no answer, 429, 5xx are transient, except PD's 500s for requests that can
// never succeed as sent; 4xx are permanent); the executor's own refusals are
// permanent.
//
// It imports the generic actuator, the contracts in schemas and
// internal/pdapi only: never the observer (observers/tikv), PD's or TiKV's
// Go modules, NATS or internal/bus, and no code path in it runs a process
// or a shell.
package tikv
