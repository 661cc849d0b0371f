package expr

import (
	"fmt"

	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/operators"
)

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
	shapes map[int64]Shape
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
// rooted at a variable (directly or through comprehension variables), and
// reports paths the schemas do not have.
type pathChecker struct {
	errs   []string
	shapes map[int64]Shape
	chains *chainSet
}

type resolved struct {
	shape Shape
	// path is the field path as text, e.g. obs.state.nodes[].id; empty
	// when the value is not a path into a variable.
	path string
	// chain is set for a plain chain of selections rooted at a variable.
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
				if it := first.shape.Items(); it.known() {
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
			elem = resolved{shape: rng.shape.Items(), path: rng.path + "[]"}
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
		} else if elem.path != "" && rng.shape.Items().known() {
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

// chainSet collects the plain field paths rooted at variables that an
// expression reads.
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
