// Package diagnosis explains violations: for every new firing episode it
// gathers evidence from read-only sources that the subject's playbook
// declares (the latest observations of the instance, the other alerts
// firing or pending on it, recent actions and their outcomes, GETs on the
// subject's API, Prometheus queries), then reasons over it and publishes an
// io.operator.diagnosis.v1 event with ranked hypotheses, each citing the
// evidence that supports and contradicts it.
//
// Reasoning is deterministic by default: the playbook's hypotheses are CEL
// over the evidence (see [Playbook]). A [Reasoner] may replace it, such as
// the LLM in diagnosis/llm, which answers in the same schema. A diagnosis is
// advice: nothing executes it, and a suggested action still goes through
// action.requested and every gate of the actuator.
//
// Evidence is never silently missing: a source that fails is an item with
// an error, and data over the size cap is cut and marked truncated.
//
// This package imports no subject, no NATS and no HTTP client of a subject:
// subjects plug in their playbook and a read-only [Getter] for their API.
package diagnosis
