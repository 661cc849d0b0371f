// Package expr compiles and evaluates Operator's CEL expressions over JSON
// documents: the observations rules judge and verifications read, their
// items, and action params.
//
// At load time [Env.Compile] type-checks an expression, checks every field
// path it reads against the JSON Schemas of its variables (an observation's
// envelope and its subject's state schema, an action's params schema) and
// estimates its cost against a budget, reporting every problem with its
// place in the expression. At run time a [Program] answers the common
// shapes of condition (field paths, literals, comparisons, + - * on
// doubles, && || !) natively in Go and falls back to cel-go for everything
// else: the native path either gives cel-go's answer or declines, never a
// different one. Documents are decoded once, with [ParseJSON], straight
// into CEL values.
//
// Variables are declared by the caller ([Var]); this package knows no rule
// file or catalog format. It must not import evaluators, actuators or any
// subject package; of Operator's packages it uses only schemas, for the
// observation envelope and the embedded state schemas.
package expr
