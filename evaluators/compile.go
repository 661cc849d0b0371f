package evaluators

import (
	"fmt"
	"sort"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
)

// Variables every expression sees.
const (
	varObs  = "obs"
	varItem = "item"
)

// compiledRule is the checked, ready-to-run form of a Rule.
type compiledRule struct {
	lines       map[string]exprLine
	each        *program
	key         *program
	expr        *program
	summary     *template
	description *template
	labelNames  []string
	labels      map[string]*template
	paramNames  []string
	params      map[string]*program
	// evidence lists the select chains rooted at obs that the condition
	// reads, for the evidence of rules without each.
	evidence [][]string
}

// program is one compiled CEL expression.
type program struct {
	src string
	prg cel.Program
	// path, when set, says the expression is a plain field path (root
	// variable first), evaluated without the interpreter. pathKeys are
	// path[1:] as CEL strings, converted once rather than per evaluation.
	path     []string
	pathKeys []ref.Val
	// native, when set, evaluates the expression as a condition without
	// the interpreter where it can (see nativeCond).
	native nativeCond
}

// template is text with {{ CEL }} parts.
type template struct {
	parts []templatePart
}

type templatePart struct {
	text string
	expr *program // nil for literal text
}

// newEnv builds the CEL environment: obs, and item for per-item rules. All
// JSON numbers are doubles; comparisons across int and double work.
func newEnv(withItem bool) (*cel.Env, error) {
	opts := []cel.EnvOption{
		cel.Variable(varObs, cel.DynType),
		cel.CrossTypeNumericComparisons(true),
		cel.OptionalTypes(),
		ext.Strings(),
		ext.Math(),
	}
	if withItem {
		opts = append(opts, cel.Variable(varItem, cel.DynType))
	}
	return cel.NewEnv(opts...)
}

// compiler holds what compiling one rule needs.
type compiler struct {
	p      *parser
	rule   *Rule
	env    *cel.Env
	scope  map[string]resolved
	budget uint64
	assume uint64
}

// compile compiles and checks every expression of r, reporting problems to
// p. state is the subject's state schema, nil when it has none.
func (p *parser) compile(rs *RuleSet, r *Rule, state *schemaInfo) {
	label := r.Name
	env, err := newEnv(r.Each != "")
	if err != nil {
		p.errorf(r.Line, label, "build CEL environment: %v", err)
		return
	}
	obs := shape{obs: true, what: "the observation schema"}
	if env, err := envelopeSchema(); err == nil {
		obs.s = env
	}
	if state != nil {
		obs.state = state.root
	}
	c := &compiler{p: p, rule: r, env: env, budget: p.opts.CostBudget, assume: p.opts.AssumedSize,
		scope: map[string]resolved{varObs: {shape: obs, path: varObs, chain: []string{varObs}}}}
	cr := r.c

	if r.Each != "" {
		var each shape
		cr.each, each = c.expr("each", r.Each, func(t *types.Type) error {
			return wantKinds(t, "a list", types.ListKind)
		})
		c.scope[varItem] = resolved{shape: each.items(), path: varItem}
		if strings.TrimSpace(r.Key) != "" {
			cr.key, _ = c.expr("key", r.Key, keyKinds)
		}
	} else if strings.TrimSpace(r.Key) != "" {
		cr.key, _ = c.expr("key", r.Key, keyKinds)
	}
	var chains *chainSet
	cr.expr, _ = c.exprWith("expr", r.Expr, func(t *types.Type) error {
		return wantKinds(t, "a bool", types.BoolKind)
	}, func(pc *pathChecker) { chains = pc.chains })
	if chains != nil {
		cr.evidence = chains.maximal()
	}
	cr.summary = c.template("summary", r.Summary)
	cr.description = c.template("description", r.Description)
	cr.labels = map[string]*template{}
	for name, v := range r.Labels {
		cr.labelNames = append(cr.labelNames, name)
		cr.labels[name] = c.template("labels."+name, v)
	}
	sort.Strings(cr.labelNames)
	if r.Remediate != nil {
		cr.params = map[string]*program{}
		for name, src := range r.Remediate.Params {
			cr.paramNames = append(cr.paramNames, name)
			if strings.TrimSpace(src) == "" {
				p.errorf(cr.lines["params."+name].line, label, "remediate.params.%s: empty expression", name)
				continue
			}
			cr.params[name], _ = c.expr("params."+name, src, nil)
		}
		sort.Strings(cr.paramNames)
	}
}

func keyKinds(t *types.Type) error {
	return wantKinds(t, "a string or a number", types.StringKind, types.IntKind, types.UintKind, types.DoubleKind)
}

// wantKinds accepts dyn and any of kinds.
func wantKinds(t *types.Type, what string, kinds ...types.Kind) error {
	k := t.Kind()
	if k == types.DynKind || k == types.AnyKind {
		return nil
	}
	for _, want := range kinds {
		if k == want {
			return nil
		}
	}
	return fmt.Errorf("must evaluate to %s, not %s", what, t)
}

func (c *compiler) expr(field, src string, check func(*types.Type) error) (*program, shape) {
	return c.exprWith(field, src, check, nil)
}

// exprWith compiles src, type-checks it, checks its field paths against the
// schemas and its estimated cost against the budget.
func (c *compiler) exprWith(field, src string, check func(*types.Type) error, after func(*pathChecker)) (*program, shape) {
	at := c.rule.c.lines[field]
	a, iss := c.env.Compile(src)
	if iss != nil && iss.Err() != nil {
		for _, e := range iss.Errors() {
			line := at.line
			if at.block {
				line++
			}
			line += e.Location.Line() - 1
			c.p.errorf(line, c.rule.Name, "%s: %s (column %d)", field, e.Message, e.Location.Column()+1)
		}
		return nil, shape{}
	}
	if check != nil {
		if err := check(a.OutputType()); err != nil {
			c.p.errorf(at.line, c.rule.Name, "%s: %v", field, err)
			return nil, shape{}
		}
	}
	pc := &pathChecker{shapes: map[int64]shape{}, chains: &chainSet{}}
	root := a.NativeRep().Expr()
	res := pc.walk(root, c.scope)
	for _, e := range pc.errs {
		c.p.errorf(at.line, c.rule.Name, "%s: %s", field, e)
	}
	if after != nil {
		after(pc)
	}
	est, err := c.env.EstimateCost(a, &estimator{shapes: pc.shapes, assume: c.assume})
	if err != nil {
		c.p.errorf(at.line, c.rule.Name, "%s: estimate cost: %v", field, err)
	} else if est.Max > c.budget {
		c.p.errorf(at.line, c.rule.Name, "%s: estimated cost %d exceeds the budget of %d (bound the collections it iterates with maxItems in the state schema, or simplify it)", field, est.Max, c.budget)
	}
	// Expressions with a comprehension run under a cost limit, since
	// their cost grows with the data; the others are bounded by their
	// size, and tracking cost would slow every evaluation.
	progOpts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if hasComprehension(root) {
		progOpts = append(progOpts, cel.CostLimit(c.budget))
	}
	prg, err := c.env.Program(a, progOpts...)
	if err != nil {
		c.p.errorf(at.line, c.rule.Name, "%s: %v", field, err)
		return nil, shape{}
	}
	pr := &program{src: src, prg: prg, native: compileNative(root)}
	if chain, ok := plainChain(root); ok {
		pr.path = chain
		for _, f := range chain[1:] {
			pr.pathKeys = append(pr.pathKeys, types.String(f))
		}
	}
	return pr, res.shape
}

// template parses text with {{ expr }} parts.
func (c *compiler) template(field, text string) *template {
	t := &template{}
	rest := text
	for rest != "" {
		i := strings.Index(rest, "{{")
		if i < 0 {
			t.parts = append(t.parts, templatePart{text: rest})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, templatePart{text: rest[:i]})
		}
		rest = rest[i+2:]
		j := strings.Index(rest, "}}")
		if j < 0 {
			c.p.errorf(c.rule.c.lines[field].line, c.rule.Name, "%s: unterminated {{ in template", field)
			return t
		}
		src := strings.TrimSpace(rest[:j])
		rest = rest[j+2:]
		if src == "" {
			c.p.errorf(c.rule.c.lines[field].line, c.rule.Name, "%s: empty {{ }} in template", field)
			continue
		}
		pr, _ := c.expr(field, src, nil)
		if pr != nil {
			t.parts = append(t.parts, templatePart{expr: pr})
		}
	}
	return t
}

// hasComprehension reports whether e contains a comprehension (a macro
// such as all, exists, map or filter).
func hasComprehension(e ast.Expr) bool {
	found := false
	ast.PreOrderVisit(e, ast.NewExprVisitor(func(x ast.Expr) {
		if x.Kind() == ast.ComprehensionKind {
			found = true
		}
	}))
	return found
}

// plainChain reports whether e is a plain field path like item.id or
// obs.state.redis.connected, and returns it root first.
func plainChain(e ast.Expr) ([]string, bool) {
	var rev []string
	for {
		switch e.Kind() {
		case ast.IdentKind:
			rev = append(rev, e.AsIdent())
			for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
				rev[i], rev[j] = rev[j], rev[i]
			}
			return rev, true
		case ast.SelectKind:
			s := e.AsSelect()
			if s.IsTestOnly() {
				return nil, false
			}
			rev = append(rev, s.FieldName())
			e = s.Operand()
		default:
			return nil, false
		}
	}
}

// estimator sizes collections for the cost estimate: from the schema's
// maxItems/maxProperties/maxLength where the expression's path has one,
// otherwise the assumed size.
type estimator struct {
	shapes map[int64]shape
	assume uint64
}

func (e *estimator) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

func (e *estimator) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	if n.ComputedSize() != nil {
		return nil
	}
	if n.Expr() == nil {
		return &cost.SizeEstimate{Min: 0, Max: e.assume}
	}
	if sh, ok := e.shapes[n.Expr().ID()]; ok {
		if m, ok := sh.maxSize(); ok {
			return &cost.SizeEstimate{Min: 0, Max: m}
		}
	}
	return &cost.SizeEstimate{Min: 0, Max: e.assume}
}

// pathChecker walks an expression, resolving the shape of every field path
// rooted at obs or item (directly or through comprehension variables), and
// reports paths the schemas do not have.
type pathChecker struct {
	errs   []string
	shapes map[int64]shape
	chains *chainSet
}

type resolved struct {
	shape shape
	// path is the field path as text, e.g. obs.state.nodes[].id; empty
	// when the value is not a path into obs or item.
	path string
	// chain is set for a plain chain rooted at obs.
	chain []string
}

func (pc *pathChecker) walk(e ast.Expr, scope map[string]resolved) resolved {
	r := pc.resolve(e, scope)
	if r.shape.known() {
		pc.shapes[e.ID()] = r.shape
	}
	return r
}

func (pc *pathChecker) selectField(base resolved, field string) resolved {
	if base.path == "" {
		return resolved{}
	}
	path := base.path + "." + field
	var chain []string
	if base.chain != nil {
		chain = append(append([]string(nil), base.chain...), field)
		pc.chains.add(chain)
	}
	child, ok := base.shape.field(field)
	if !ok {
		pc.errs = append(pc.errs, fmt.Sprintf("field %s: %s has no field %q", path, base.shape.what, field))
		return resolved{}
	}
	return resolved{shape: child, path: path, chain: chain}
}

func (pc *pathChecker) resolve(e ast.Expr, scope map[string]resolved) resolved {
	switch e.Kind() {
	case ast.IdentKind:
		return scope[e.AsIdent()]
	case ast.SelectKind:
		s := e.AsSelect()
		base := pc.walk(s.Operand(), scope)
		return pc.selectField(base, s.FieldName())
	case ast.CallKind:
		call := e.AsCall()
		if call.IsMemberFunction() {
			pc.walk(call.Target(), scope)
		}
		args := call.Args()
		var first resolved
		for i, a := range args {
			r := pc.walk(a, scope)
			if i == 0 {
				first = r
			}
		}
		switch call.FunctionName() {
		case operators.OptSelect:
			// obs.state.?field
			if len(args) == 2 && args[1].Kind() == ast.LiteralKind {
				if f, ok := args[1].AsLiteral().Value().(string); ok {
					return pc.selectField(first, f)
				}
			}
		case operators.Index, operators.OptIndex:
			if len(args) == 2 {
				if args[1].Kind() == ast.LiteralKind {
					if f, ok := args[1].AsLiteral().Value().(string); ok {
						return pc.selectField(first, f)
					}
				}
				if first.path == "" {
					return resolved{}
				}
				// A computed index: a list element or a map value.
				if it := first.shape.items(); it.known() {
					return resolved{shape: it, path: first.path + "[]"}
				}
				return resolved{shape: first.shape.values(), path: first.path + "[]"}
			}
		}
		return resolved{}
	case ast.ComprehensionKind:
		comp := e.AsComprehension()
		rng := pc.walk(comp.IterRange(), scope)
		pc.walk(comp.AccuInit(), scope)
		inner := make(map[string]resolved, len(scope)+3)
		for k, v := range scope {
			inner[k] = v
		}
		// Iteration and accumulator variables shadow outer names; they
		// resolve to the element shape when the range has one, shown as
		// range[] in messages.
		delete(inner, comp.AccuVar())
		delete(inner, comp.IterVar())
		var elem resolved
		if rng.path != "" {
			elem = resolved{shape: rng.shape.items(), path: rng.path + "[]"}
		}
		if comp.HasIterVar2() {
			// (index, value) over a list or (key, value) over a map.
			delete(inner, comp.IterVar2())
			if elem.path != "" && !elem.shape.known() {
				elem.shape = rng.shape.values()
			}
			if elem.path != "" {
				inner[comp.IterVar2()] = elem
			}
		} else if elem.path != "" && rng.shape.items().known() {
			inner[comp.IterVar()] = elem
		}
		pc.walk(comp.LoopCondition(), inner)
		pc.walk(comp.LoopStep(), inner)
		pc.walk(comp.Result(), inner)
		return resolved{}
	case ast.ListKind:
		for _, el := range e.AsList().Elements() {
			pc.walk(el, scope)
		}
	case ast.MapKind:
		for _, en := range e.AsMap().Entries() {
			me := en.AsMapEntry()
			pc.walk(me.Key(), scope)
			pc.walk(me.Value(), scope)
		}
	case ast.StructKind:
		for _, f := range e.AsStruct().Fields() {
			pc.walk(f.AsStructField().Value(), scope)
		}
	}
	return resolved{}
}

// chainSet collects the field paths rooted at obs that an expression reads.
type chainSet struct {
	list [][]string
}

func (cs *chainSet) add(chain []string) { cs.list = append(cs.list, chain) }

// maximal returns the longest chains, dropping those that are a prefix of
// another, in first-seen order.
func (cs *chainSet) maximal() [][]string {
	var out [][]string
	for i, a := range cs.list {
		keep := true
		for j, b := range cs.list {
			if i == j || len(b) < len(a) {
				continue
			}
			if len(b) == len(a) && j > i {
				// duplicate: keep the first
				if equalChain(a, b) {
					continue
				}
			}
			if len(b) == len(a) && j < i && equalChain(a, b) {
				keep = false
				break
			}
			if len(b) > len(a) && equalChain(a, b[:len(a)]) {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, a)
		}
	}
	return out
}

func equalChain(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
