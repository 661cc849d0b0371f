// Package llm is a diagnosis.Reasoner that asks a model of the Messages
// API (through the official Go SDK) for the ranked hypotheses of a
// violation, in the same schema as the deterministic reasoner.
//
// The model gets the violation, the gathered evidence, the playbook's
// known causes and the subject's action catalog, and it may call the
// read-only tools of the input for more evidence. It is given no tool that
// acts, runs commands or writes: its answer is advice, and a suggested
// action still goes through action.requested and every gate of the
// actuator. It answers by calling the submit_diagnosis tool, whose input
// is checked against a JSON Schema, against the evidence (cited ids must
// exist) and against the catalog (suggested actions and their params);
// free text is never taken as an answer.
//
// # Redaction
//
// With Config.Redact, the names in the violation, the evidence and the
// tool results are replaced with placeholders such as <k1> before a
// request is built, and the placeholders in the answer (causes, params)
// and in tool inputs are mapped back, so the published diagnosis and the
// tools see the real names. A name is:
//   - the instance and the violation's key, numbered first (<k1>, <k2>);
//   - any string under a field that names something: id, key, node,
//     instance, store, address, host, pattern, target, url, name, and
//     fields ending in _id, _key, _addr, _address, _host, _url or
//     _instance;
//   - any other word of a string shaped like an identifier, with a digit
//     or one of : @ . * in it (node-1, user:42, 10.0.0.1:6379,
//     redis.internal, user:*).
//
// Numbers, times, durations, numbers with a unit and API versions are
// kept, as are field names and plain words, so the model can still read
// the data. A plain word that names something is hidden wherever it
// appears once it has been seen in a name field, and not otherwise. The
// same name gets the same placeholder throughout one diagnosis, its
// URL-escaped forms included; the playbook's and the catalog's own text
// is scanned only for the names found in the data.
//
// This package imports no subject and no NATS; it makes no request but
// to the Messages API, and it reads no environment variable: the command
// passes the API key in.
package llm
