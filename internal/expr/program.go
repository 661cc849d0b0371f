package expr

import (
	"errors"
	"fmt"
	"unsafe"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"
)

// ErrNotBool is wrapped by EvalBool when a dyn-typed expression yields
// something other than a bool.
var ErrNotBool = errors.New("not a bool")

// A Program is one compiled expression. It is immutable and safe for
// concurrent use.
type Program struct {
	src string
	prg cel.Program
	// path, when set, says the expression is a plain field path (root
	// variable first), evaluated without the interpreter. pathKeys are
	// path[1:] as CEL strings, converted once rather than per evaluation.
	path     []string
	pathKeys []ref.Val
	// pathSlot is the position of path[0] among the Env's variables.
	pathSlot int
	// native, when set, evaluates the expression without the interpreter
	// where it can (see nativeExpr).
	native nativeExpr
	shape  Shape
	chains *chainSet
}

// Source returns the expression's text.
func (p *Program) Source() string { return p.src }

// Shape returns what is known of the expression's results: for a list, its
// [Shape.Items] is the shape of the elements.
func (p *Program) Shape() Shape { return p.shape }

// FieldPath returns the expression's field path, root variable first, when
// it is nothing but one (item.id, obs.state.redis.connected); such a
// program selects the field without the interpreter. Otherwise nil.
func (p *Program) FieldPath() []string { return p.path }

// Paths returns the plain field paths rooted at variable root that the
// expression reads, root first, in the order first read, leaving out
// those that are a prefix of another (obs.state.redis when
// obs.state.redis.connected is read too): the fields that show what the
// expression judged.
func (p *Program) Paths(root string) [][]string {
	var cs chainSet
	for _, c := range p.chains.list {
		if c[0] == root {
			cs.add(c)
		}
	}
	return cs.maximal()
}

// Eval runs the program. A CEL error value is returned as an error, never
// as a value: a failure is not a false.
func (p *Program) Eval(act *Activation) (Value, error) {
	if p.path != nil {
		return p.evalPath(act)
	}
	v, _, err := p.prg.Eval(act)
	if err != nil {
		return nil, err
	}
	if e, ok := v.(*types.Err); ok {
		return nil, e
	}
	if types.IsUnknown(v) {
		return nil, fmt.Errorf("unknown value in %q", p.src)
	}
	return v, nil
}

// evalPath selects a plain field path without the interpreter, with the
// interpreter's errors.
func (p *Program) evalPath(act *Activation) (ref.Val, error) {
	cur, ok := act.at(p.pathSlot, p.path[0])
	if !ok {
		cur = act.lookup(p.path[0])
	}
	if cur == nil {
		return nil, fmt.Errorf("no such attribute: %s", p.path[0])
	}
	for i, f := range p.path[1:] {
		var (
			next  ref.Val
			found bool
		)
		switch m := cur.(type) {
		case *object:
			// Decoded JSON: a lookup by the Go string.
			next, found = m.lookup(f)
		case traits.Mapper:
			next, found = m.Find(p.pathKeys[i])
		default:
			return nil, fmt.Errorf("no such key: %s (selecting a field of %s)", f, cur.Type())
		}
		if !found {
			return nil, fmt.Errorf("no such key: %s", f)
		}
		cur = next
	}
	if e, ok := cur.(*types.Err); ok {
		return nil, e
	}
	return cur, nil
}

// EvalBool runs a condition: natively when it can, with the interpreter
// otherwise. An error wraps ErrNotBool when the result is not a bool.
func (p *Program) EvalBool(act *Activation) (bool, error) {
	if p.native != nil {
		if v, ok := p.native(act); ok && v.kind == nativeBool {
			return v.b, nil
		}
	}
	v, err := p.Eval(act)
	if err != nil {
		return false, err
	}
	b, ok := v.(types.Bool)
	if !ok {
		return false, fmt.Errorf("%w: evaluated to %s", ErrNotBool, v.Type())
	}
	return bool(b), nil
}

// An Activation binds variables to values for evaluations. Binding
// replaces the value, so one Activation serves many evaluations (the items
// of a list, say, through a [Slot]); the programs never retain it. Binding
// the variables first in the order the Env declares them, with the same
// name strings, lets programs find them fastest. The zero value binds
// nothing. It is not safe for concurrent use.
type Activation struct {
	// Bindings live in the Activation itself (expressions have two
	// variables: obs and item, or obs and params), so binding allocates
	// nothing; more overflow into extra.
	n     int
	vars  [2]binding
	extra []binding
}

type binding struct {
	name string
	val  ref.Val
}

var _ interpreter.Activation = (*Activation)(nil)

// Bind binds name to v; a nil v unbinds it.
func (a *Activation) Bind(name string, v Value) {
	if i := a.index(name); i >= 0 {
		a.binding(i).val = v
		return
	}
	if a.n < len(a.vars) {
		a.vars[a.n] = binding{name: name, val: v}
		a.n++
		return
	}
	a.extra = append(a.extra, binding{name: name, val: v})
}

// A Slot is a variable's place in an Activation, for rebinding it in a
// loop (once per item) without looking it up by name. It is valid as long
// as its Activation is.
type Slot struct {
	a *Activation
	i int
}

// Slot returns the place of the variable called name, binding it to
// nothing first when it is not bound yet.
func (a *Activation) Slot(name string) Slot {
	i := a.index(name)
	if i < 0 {
		a.Bind(name, nil)
		i = a.index(name)
	}
	return Slot{a: a, i: i}
}

// Set binds the slot's variable to v; a nil v unbinds it.
func (s Slot) Set(v Value) { s.a.binding(s.i).val = v }

// index returns the position of name's binding, or -1: the bindings held
// inline first, then those in extra.
func (a *Activation) index(name string) int {
	for i := range a.n {
		if a.vars[i].name == name {
			return i
		}
	}
	for i := range a.extra {
		if a.extra[i].name == name {
			return len(a.vars) + i
		}
	}
	return -1
}

// binding returns the binding at position i (see index).
func (a *Activation) binding(i int) *binding {
	if i < len(a.vars) {
		return &a.vars[i]
	}
	return &a.extra[i-len(a.vars)]
}

// lookup returns the value bound to name, or nil.
func (a *Activation) lookup(name string) ref.Val {
	if i := a.index(name); i >= 0 {
		return a.binding(i).val
	}
	return nil
}

// at returns the value at position i when it is bound to name: callers
// bind variables in the order their Env declares them, so a program that
// knows its variable's place there mostly finds it at once, and does so for
// every field path of every evaluation. Variable names are mostly the very
// same string (the caller's constant, which Compile hands to programs too),
// so at compares the strings' data rather than their bytes, and reports
// false otherwise; it inlines.
func (a *Activation) at(i int, name string) (ref.Val, bool) {
	if uint(i) >= uint(a.n) {
		return nil, false
	}
	b := &a.vars[i]
	return b.val, len(b.name) == len(name) && unsafe.StringData(b.name) == unsafe.StringData(name)
}

// ResolveName returns the value bound to name, for the interpreter.
func (a *Activation) ResolveName(name string) (any, bool) {
	if v := a.lookup(name); v != nil {
		return v, true
	}
	return nil, false
}

// Parent returns nil: there is no enclosing scope.
func (a *Activation) Parent() interpreter.Activation { return nil }
