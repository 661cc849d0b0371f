package expr

import (
	"math"

	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// nativeVal is a value in a native evaluation.
type nativeVal struct {
	kind nativeKind
	num  float64 // nativeDouble, and nativeInt (an exactly representable literal)
	str  string
	b    bool
}

type nativeKind uint8

const (
	nativeDouble nativeKind = iota + 1
	nativeInt
	nativeString
	nativeBool
)

// A nativeExpr evaluates an expression of the common shape (field paths,
// literals, comparisons, + - * on doubles, && || !) directly in Go, which is
// several times faster than the CEL interpreter and allocates nothing. It
// handles only values whose CEL result it reproduces exactly: doubles that
// are not NaN, strings and bools. On anything else (a missing field, a null,
// a NaN, a type CEL would refuse or convert) it returns ok false, "ask
// CEL", and the caller runs the CEL program, so results and errors stay
// CEL's.
type nativeExpr func(act *Activation) (v nativeVal, ok bool)

// maxExactInt bounds the int literals compared natively: up to 2^53 an int
// converts to a double exactly, so comparing it as a double is what CEL's
// double-int comparison does.
const maxExactInt = 1 << 53

// nativeOf returns the native form of e over vars, or nil when its shape is
// not one nativeOf knows.
func nativeOf(e ast.Expr, vars []Var) nativeExpr {
	switch e.Kind() {
	case ast.LiteralKind:
		return nativeLiteral(e.AsLiteral())
	case ast.SelectKind:
		chain, ok := plainChain(e)
		if !ok {
			return nil
		}
		return nativePath(chain, vars)
	case ast.CallKind:
		c := e.AsCall()
		if c.IsMemberFunction() {
			return nil
		}
		args := make([]nativeExpr, len(c.Args()))
		for i, a := range c.Args() {
			if args[i] = nativeOf(a, vars); args[i] == nil {
				return nil
			}
		}
		return nativeCall(c.FunctionName(), args)
	}
	return nil
}

func nativeLiteral(v ref.Val) nativeExpr {
	var nv nativeVal
	switch v := v.(type) {
	case types.Double:
		if math.IsNaN(float64(v)) {
			return nil
		}
		nv = nativeVal{kind: nativeDouble, num: float64(v)}
	case types.Int:
		if v > maxExactInt || v < -maxExactInt {
			return nil
		}
		nv = nativeVal{kind: nativeInt, num: float64(v)}
	case types.String:
		nv = nativeVal{kind: nativeString, str: string(v)}
	case types.Bool:
		nv = nativeVal{kind: nativeBool, b: bool(v)}
	default:
		return nil
	}
	return func(*Activation) (nativeVal, bool) { return nv, true }
}

// nativePath selects a field path, rooted at one of vars, through decoded
// JSON objects.
func nativePath(chain []string, vars []Var) nativeExpr {
	fields := chain[1:]
	slot := varSlot(vars, chain[0])
	if slot < 0 {
		return nil
	}
	// The caller's name for the variable rather than the parser's copy:
	// binding uses the same string, which compares fastest.
	root := vars[slot].Name
	return func(act *Activation) (nativeVal, bool) {
		cur, ok := act.at(slot, root)
		if !ok {
			cur = act.lookup(root)
		}
		if cur == nil {
			return nativeVal{}, false
		}
		for _, f := range fields {
			o, ok := cur.(*object)
			if !ok {
				return nativeVal{}, false
			}
			if cur, ok = o.lookup(f); !ok {
				return nativeVal{}, false
			}
		}
		switch v := cur.(type) {
		case types.Double:
			if math.IsNaN(float64(v)) {
				return nativeVal{}, false
			}
			return nativeVal{kind: nativeDouble, num: float64(v)}, true
		case types.String:
			return nativeVal{kind: nativeString, str: string(v)}, true
		case types.Bool:
			return nativeVal{kind: nativeBool, b: bool(v)}, true
		}
		return nativeVal{}, false
	}
}

func nativeCall(fn string, args []nativeExpr) nativeExpr {
	switch {
	case fn == operators.LogicalNot && len(args) == 1:
		x := args[0]
		return func(act *Activation) (nativeVal, bool) {
			v, ok := x(act)
			if !ok || v.kind != nativeBool {
				return nativeVal{}, false
			}
			return nativeVal{kind: nativeBool, b: !v.b}, true
		}
	case len(args) != 2:
		return nil
	}
	l, r := args[0], args[1]
	switch fn {
	case operators.LogicalAnd, operators.LogicalOr:
		// CEL's && and || give the deciding value of either side even
		// when the other fails; deciding on the left one and asking CEL
		// whenever a side is not native keeps to that.
		decides := fn == operators.LogicalOr
		return func(act *Activation) (nativeVal, bool) {
			a, ok := l(act)
			if !ok || a.kind != nativeBool {
				return nativeVal{}, false
			}
			if a.b == decides {
				return a, true
			}
			b, ok := r(act)
			if !ok || b.kind != nativeBool {
				return nativeVal{}, false
			}
			return b, true
		}
	case operators.Add, operators.Subtract, operators.Multiply:
		// On two doubles CEL does IEEE arithmetic, as Go does; a NaN
		// result is refused by whatever uses it.
		return func(act *Activation) (nativeVal, bool) {
			a, ok := l(act)
			if !ok || a.kind != nativeDouble {
				return nativeVal{}, false
			}
			b, ok := r(act)
			if !ok || b.kind != nativeDouble {
				return nativeVal{}, false
			}
			var n float64
			switch fn {
			case operators.Add:
				n = a.num + b.num
			case operators.Subtract:
				n = a.num - b.num
			default:
				n = a.num * b.num
			}
			if math.IsNaN(n) {
				return nativeVal{}, false
			}
			return nativeVal{kind: nativeDouble, num: n}, true
		}
	case operators.Equals, operators.NotEquals:
		want := fn == operators.Equals
		return func(act *Activation) (nativeVal, bool) {
			a, ok := l(act)
			if !ok {
				return nativeVal{}, false
			}
			b, ok := r(act)
			if !ok {
				return nativeVal{}, false
			}
			var eq bool
			switch {
			case isNumber(a) && isNumber(b) && (a.kind == nativeDouble || b.kind == nativeDouble):
				eq = a.num == b.num
			case a.kind == nativeString && b.kind == nativeString:
				eq = a.str == b.str
			case a.kind == nativeBool && b.kind == nativeBool:
				eq = a.b == b.b
			default:
				return nativeVal{}, false
			}
			return nativeVal{kind: nativeBool, b: eq == want}, true
		}
	case operators.Less, operators.LessEquals, operators.Greater, operators.GreaterEquals:
		return func(act *Activation) (nativeVal, bool) {
			a, ok := l(act)
			if !ok || !isNumber(a) {
				return nativeVal{}, false
			}
			b, ok := r(act)
			if !ok || !isNumber(b) || (a.kind != nativeDouble && b.kind != nativeDouble) {
				return nativeVal{}, false
			}
			var res bool
			switch fn {
			case operators.Less:
				res = a.num < b.num
			case operators.LessEquals:
				res = a.num <= b.num
			case operators.Greater:
				res = a.num > b.num
			default:
				res = a.num >= b.num
			}
			return nativeVal{kind: nativeBool, b: res}, true
		}
	}
	return nil
}

// isNumber reports a double, or an int literal that converts exactly: CEL
// compares a double with an int as doubles (with
// CrossTypeNumericComparisons), which is exact for such an int.
func isNumber(v nativeVal) bool { return v.kind == nativeDouble || v.kind == nativeInt }
