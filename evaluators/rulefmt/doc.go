// Package rulefmt reads Operator's rule files: YAML that names a subject
// and lists its invariants, each with CEL expressions kept as text.
//
// It parses a file and checks its structure (required fields, names,
// durations, enumerations, duplicate names and keys, unknown fields) and
// returns plain data that carries the line of every rule and expression,
// with every problem as an [*Error] naming the file, line, rule and reason.
// It does not compile expressions: package evaluators does that, against
// the subject's state schema, and runs the rules.
//
// It must not import evaluators, internal/expr, NATS or any subject
// package; of Operator's packages it uses only schemas.
package rulefmt
