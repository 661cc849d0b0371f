package expr

import (
	"errors"
	"fmt"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"
)

// Defaults for compiling expressions.
const (
	// DefaultCostBudget is the most a single expression may cost, both as
	// estimated at load time and as measured at run time, in CEL cost
	// units (roughly one per operation).
	DefaultCostBudget uint64 = 1_000_000
	// DefaultAssumedSize is the size the cost estimate assumes for a list,
	// map or string whose schema gives no maxItems, maxProperties or
	// maxLength.
	DefaultAssumedSize uint64 = 1000
)

// A Var is a variable expressions may read.
type Var struct {
	Name string
	// Shape is what is known of the variable's values; the field paths
	// expressions read under it are checked against it. The zero Shape
	// checks nothing.
	Shape Shape
}

// An Env is a set of variables and the CEL library every Operator
// expression has: JSON values (every number a double, compared across
// numeric types), optional fields, and the strings and math extensions. It
// is immutable and safe for concurrent use.
type Env struct {
	cel  *cel.Env
	vars []Var
}

// NewEnv declares vars, each of any type (a JSON document or part of one).
func NewEnv(vars ...Var) (*Env, error) {
	opts := []cel.EnvOption{
		cel.CrossTypeNumericComparisons(true),
		cel.OptionalTypes(),
		ext.Strings(),
		ext.Math(),
	}
	for _, v := range vars {
		opts = append(opts, cel.Variable(v.Name, cel.DynType))
	}
	ce, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("build CEL environment: %w", err)
	}
	return &Env{cel: ce, vars: append([]Var(nil), vars...)}, nil
}

// WithShape returns an Env like e in which variable name has shape sh, for
// a variable whose shape is known only once another expression is
// compiled (a rule's item is an element of its each). It shares e's CEL
// environment, so it is cheap.
func (e *Env) WithShape(name string, sh Shape) *Env {
	vars := append([]Var(nil), e.vars...)
	for i := range vars {
		if vars[i].Name == name {
			vars[i].Shape = sh
		}
	}
	return &Env{cel: e.cel, vars: vars}
}

// varSlot returns the position of the variable called name in vars, or -1.
func varSlot(vars []Var, name string) int {
	for i, v := range vars {
		if v.Name == name {
			return i
		}
	}
	return -1
}

// Want says what an expression must evaluate to. Dyn-typed expressions
// (most: JSON fields have no static type) always pass; their results are
// checked when they run.
type Want uint8

// What an expression may be asked to evaluate to.
const (
	WantAny Want = iota
	WantBool
	WantList
	// WantStringOrNumber accepts strings, integers and doubles: a key.
	WantStringOrNumber
)

// String describes the wanted result ("a bool").
func (w Want) String() string {
	switch w {
	case WantAny:
		return "anything"
	case WantBool:
		return "a bool"
	case WantList:
		return "a list"
	case WantStringOrNumber:
		return "a string or a number"
	}
	return fmt.Sprintf("Want(%d)", uint8(w))
}

func (w Want) kinds() []types.Kind {
	switch w {
	case WantBool:
		return []types.Kind{types.BoolKind}
	case WantList:
		return []types.Kind{types.ListKind}
	case WantStringOrNumber:
		return []types.Kind{types.StringKind, types.IntKind, types.UintKind, types.DoubleKind}
	}
	return nil
}

// accepts reports whether an expression of static type t may give what w
// wants.
func (w Want) accepts(t *types.Type) bool {
	if w == WantAny {
		return true
	}
	k := t.Kind()
	if k == types.DynKind || k == types.AnyKind {
		return true
	}
	for _, want := range w.kinds() {
		if k == want {
			return true
		}
	}
	return false
}

// Options tune Compile. The zero value wants anything and uses the
// defaults.
type Options struct {
	Want Want
	// CostBudget is the most the expression may cost, estimated at load
	// time and measured at run time; 0 means DefaultCostBudget.
	CostBudget uint64
	// AssumedSize is the size the estimate assumes for collections the
	// schemas do not bound; 0 means DefaultAssumedSize.
	AssumedSize uint64
	// SkipCostEstimate leaves the budget to the run-time limit alone, for
	// expressions that run too rarely for a worst case over the schemas'
	// bounds to matter.
	SkipCostEstimate bool
}

func (o Options) withDefaults() Options {
	if o.CostBudget == 0 {
		o.CostBudget = DefaultCostBudget
	}
	if o.AssumedSize == 0 {
		o.AssumedSize = DefaultAssumedSize
	}
	return o
}

// A CompileError is every problem Compile found with one expression, in
// the order found.
type CompileError struct {
	Issues []Issue
	// report is cel-go's own report of syntax and type errors, with the
	// source line and a caret under each; empty for other problems.
	report string
}

// An Issue is one problem with an expression.
type Issue struct {
	// Line and Column place a syntax or type error in the expression's
	// text, 1-based. Both are 0 for a problem with the expression as a
	// whole: its result type, a field path, its cost.
	Line, Column int
	Err          error
}

// Error returns cel-go's report for syntax and type errors, the issues
// joined with "; " otherwise.
func (e *CompileError) Error() string {
	if e.report != "" {
		return e.report
	}
	msgs := make([]string, len(e.Issues))
	for i, is := range e.Issues {
		msgs[i] = is.Err.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap returns the issues' errors, so errors.As finds a *TypeError.
func (e *CompileError) Unwrap() []error {
	errs := make([]error, len(e.Issues))
	for i, is := range e.Issues {
		errs[i] = is.Err
	}
	return errs
}

// A TypeError is an expression whose static type cannot give what the
// caller wants.
type TypeError struct {
	Want Want
	// Got is the expression's static type, as CEL names it.
	Got string
}

// Error says what was wanted and what the expression gives.
func (e *TypeError) Error() string {
	return fmt.Sprintf("must evaluate to %s, not %s", e.Want, e.Got)
}

// Compile parses and type-checks src, checks the field paths it reads
// against the variables' shapes and its estimated cost against the budget,
// and plans it. Every problem comes back in a *CompileError.
//
// When the expression compiles but reads a path the schemas lack or costs
// too much, Compile returns the Program together with the error, so that a
// caller can go on checking expressions that depend on it (through
// [Program.Shape]) and report every problem at once. Such a Program must
// not be run.
func (e *Env) Compile(src string, opts Options) (*Program, error) {
	opts = opts.withDefaults()
	a, iss := e.cel.Compile(src)
	if iss.Err() != nil {
		ce := &CompileError{report: iss.Err().Error()}
		for _, x := range iss.Errors() {
			ce.Issues = append(ce.Issues, Issue{Line: x.Location.Line(), Column: x.Location.Column() + 1, Err: errors.New(x.Message)})
		}
		return nil, ce
	}
	if t := a.OutputType(); !opts.Want.accepts(t) {
		return nil, &CompileError{Issues: []Issue{{Err: &TypeError{Want: opts.Want, Got: t.String()}}}}
	}
	var issues []Issue
	fail := func(err error) { issues = append(issues, Issue{Err: err}) }

	scope := make(map[string]resolved, len(e.vars))
	for _, v := range e.vars {
		scope[v.Name] = resolved{shape: v.Shape, path: v.Name, chain: []string{v.Name}}
	}
	pc := &pathChecker{shapes: map[int64]Shape{}, chains: &chainSet{}}
	root := a.NativeRep().Expr()
	res := pc.walk(root, scope)
	for _, msg := range pc.errs {
		fail(errors.New(msg))
	}
	if !opts.SkipCostEstimate {
		est, err := e.cel.EstimateCost(a, &estimator{shapes: pc.shapes, assume: opts.AssumedSize})
		if err != nil {
			fail(fmt.Errorf("estimate cost: %w", err))
		} else if est.Max > opts.CostBudget {
			fail(fmt.Errorf("estimated cost %d exceeds the budget of %d (bound the collections it iterates with maxItems in the state schema, or simplify it)", est.Max, opts.CostBudget))
		}
	}
	// Expressions with a comprehension run under a cost limit, since
	// their cost grows with the data; the others are bounded by their
	// size, and tracking cost would slow every evaluation.
	progOpts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if hasComprehension(root) {
		progOpts = append(progOpts, cel.CostLimit(opts.CostBudget))
	}
	prg, err := e.cel.Program(a, progOpts...)
	if err != nil {
		fail(err)
		return nil, &CompileError{Issues: issues}
	}
	p := &Program{src: src, prg: prg, native: nativeOf(root, e.vars), shape: res.shape, chains: pc.chains}
	if chain, ok := plainChain(root); ok {
		p.path = chain
		if p.pathSlot = varSlot(e.vars, chain[0]); p.pathSlot >= 0 {
			chain[0] = e.vars[p.pathSlot].Name
		}
		for _, f := range chain[1:] {
			p.pathKeys = append(p.pathKeys, types.String(f))
		}
	}
	if len(issues) > 0 {
		return p, &CompileError{Issues: issues}
	}
	return p, nil
}
