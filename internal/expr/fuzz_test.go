package expr

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// gen builds a JSON document and a CEL expression over it from fuzz input,
// one byte per choice; an exhausted input chooses 0 from then on, which
// always leads to a leaf, so generation ends.
type gen struct {
	b []byte
}

func (g *gen) pick(n int) int {
	if len(g.b) == 0 {
		return 0
	}
	c := g.b[0]
	g.b = g.b[1:]
	return int(c) % n
}

func (g *gen) choose(options ...string) string { return options[g.pick(len(options))] }

// Documents are objects whose fields mostly hold one kind of value each
// (x and y numbers, s a string, b a bool, o an object, l a list, n
// anything), so that expressions over them mostly evaluate; now and then a
// field holds something else, or is missing, or repeated.

// number is a JSON number near the edges of what the decoder and the
// native path handle: signed zero, the 2^53 boundary, more than 15 digits,
// the double range, the small integers that are boxed once.
func (g *gen) number() string {
	return g.choose("1", "0", "-0", "-1", "1.5", "2", "0.1", "3", "1e308", "-1e308", "5e-324",
		"9007199254740992", "9007199254740993", "-9007199254740993", "123456789012345678", "1e16", "1023", "1024", "-1024", "0.5e1")
}

// str is a JSON string, with or without escapes and non-ASCII text.
func (g *gen) str() string {
	return g.choose(`"a"`, `""`, `"b"`, `"ü"`, `"1"`, `"a\"b"`, `"\u00e9"`, `"true"`)
}

// jsonValue writes a JSON value of any kind.
func (g *gen) jsonValue(w *strings.Builder, depth int) {
	k := g.pick(7)
	if depth <= 0 && k >= 5 {
		k = 0
	}
	switch k {
	case 0, 1:
		w.WriteString(g.number())
	case 2:
		w.WriteString(g.str())
	case 3:
		w.WriteString(g.choose("true", "false"))
	case 4:
		w.WriteString("null")
	case 5:
		w.WriteString("[")
		for i := range g.pick(4) {
			if i > 0 {
				w.WriteString(",")
			}
			g.jsonValue(w, depth-1)
		}
		w.WriteString("]")
	default:
		g.jsonObject(w, depth-1)
	}
}

// jsonObject writes an object with the usual fields, each mostly of its
// kind, sometimes repeated (the last wins), sometimes with enough filler
// fields to be indexed.
func (g *gen) jsonObject(w *strings.Builder, depth int) {
	w.WriteString("{")
	n := 0
	field := func(name string, value func()) {
		if g.pick(8) == 7 {
			return // missing
		}
		if n > 0 {
			w.WriteString(",")
		}
		n++
		fmt.Fprintf(w, "%q:", name)
		if g.pick(8) == 7 {
			g.jsonValue(w, depth-1) // of another kind
			return
		}
		value()
	}
	for _, name := range []string{"x", "y"} {
		field(name, func() { w.WriteString(g.number()) })
	}
	field("s", func() { w.WriteString(g.str()) })
	field("b", func() { w.WriteString(g.choose("true", "false")) })
	field("n", func() { g.jsonValue(w, depth-1) })
	if depth > 0 {
		field("o", func() { g.jsonObject(w, depth-1) })
		field("l", func() {
			w.WriteString("[")
			for i := range g.pick(4) {
				if i > 0 {
					w.WriteString(",")
				}
				g.jsonValue(w, depth-1)
			}
			w.WriteString("]")
		})
	}
	if g.pick(8) == 7 {
		field("x", func() { w.WriteString(g.number()) })
	}
	if g.pick(8) == 7 {
		for i := range indexFrom + 1 {
			if n > 0 || i > 0 {
				w.WriteString(",")
			}
			fmt.Fprintf(w, `"f%d":%d`, i, i)
		}
	}
	w.WriteString("}")
}

// path is a field path to a value of the kind named by field (x, s, b,
// ...), or now and then to some other field.
func (g *gen) path(field string) string {
	var b strings.Builder
	b.WriteString(g.choose("item", "obs.state", "item"))
	for range g.pick(2) {
		b.WriteString(".o")
	}
	b.WriteString(".")
	if g.pick(8) == 7 {
		field = g.choose("x", "y", "s", "b", "n", "o", "l", "f3", "missing")
	}
	b.WriteString(field)
	return b.String()
}

// numLiteral is a CEL number: a double, an int within or beyond the range
// that converts to a double exactly, or a uint.
func (g *gen) numLiteral() string {
	return g.choose("1.0", "0.0", "-0.0", "-1.0", "1.5", "2.0", "0.1", "3.0", "1e308", "-1e308", "5e-324",
		"9007199254740992.0", "9007199254740993.0", "1", "0", "-1", "2", "3", "9007199254740992", "-9007199254740992",
		"9007199254740993", "9223372036854775807", "-9223372036854775808", "0u", "1u")
}

// literal is a CEL literal of any kind.
func (g *gen) literal() string {
	switch g.pick(4) {
	case 0:
		return g.numLiteral()
	case 1:
		return g.choose(`"a"`, `""`, `"b"`, `"ü"`, `"1"`, `"a\"b"`)
	case 2:
		return g.choose("true", "false")
	}
	return "null"
}

// num is an expression meant to yield a number.
func (g *gen) num(depth int) string {
	k := g.pick(6)
	if depth <= 0 {
		k %= 2
	}
	switch k {
	case 0:
		return g.path(g.choose("x", "y"))
	case 1:
		return g.numLiteral()
	case 2, 3:
		return "(" + g.num(depth-1) + " " + g.choose("+", "-", "*", "/", "%") + " " + g.num(depth-1) + ")"
	case 4:
		return "-" + g.num(depth-1)
	}
	return g.choose("size(", "double(", "int(") + g.path(g.choose("s", "l", "x", "o")) + ")"
}

// str is an expression meant to yield a string.
func (g *gen) strExpr(depth int) string {
	switch k := g.pick(4); {
	case k == 0 || depth <= 0 && k >= 2:
		return g.path("s")
	case k == 1:
		return g.choose(`"a"`, `""`, `"b"`, `"ü"`, `"1"`, `"true"`)
	case k == 2:
		return "(" + g.strExpr(depth-1) + " + " + g.strExpr(depth-1) + ")"
	}
	return "string(" + g.path(g.choose("x", "b", "s")) + ")"
}

// expr is an expression meant to yield a bool: mostly the shapes the
// native path knows (paths, literals, comparisons, arithmetic, logic), and
// some it must decline.
func (g *gen) expr(depth int) string {
	k := g.pick(16)
	if depth <= 0 {
		k %= 2
	}
	switch k {
	case 0:
		return g.path("b")
	case 1:
		return g.choose("true", "false")
	case 2, 3, 4:
		return "(" + g.num(depth-1) + " " + g.choose("==", "!=", "<", "<=", ">", ">=") + " " + g.num(depth-1) + ")"
	case 5:
		return "(" + g.strExpr(depth-1) + " " + g.choose("==", "!=", "<", ">=") + " " + g.strExpr(depth-1) + ")"
	case 6:
		return "(" + g.expr(depth-1) + " " + g.choose("==", "!=") + " " + g.expr(depth-1) + ")"
	case 7, 8:
		return "(" + g.expr(depth-1) + " " + g.choose("&&", "||") + " " + g.expr(depth-1) + ")"
	case 9:
		return "!" + g.expr(depth-1)
	case 10:
		// Values of any kind compared: CEL's heterogeneous equality.
		any := func() string {
			if g.pick(2) == 0 {
				return g.literal()
			}
			return g.path(g.choose("x", "s", "b", "n", "o", "l"))
		}
		return "(" + any() + " " + g.choose("==", "!=", "<", ">") + " " + any() + ")"
	case 11:
		return "(" + g.expr(depth-1) + " ? " + g.expr(depth-1) + " : " + g.expr(depth-1) + ")"
	case 12:
		return "has(" + g.path(g.choose("x", "o", "missing")) + ")"
	case 13:
		return g.literal() + " in " + g.choose(g.path(g.choose("l", "o")), "["+g.literal()+", "+g.literal()+"]", "{"+g.literal()+": "+g.literal()+"}")
	case 14:
		switch g.pick(3) {
		case 0:
			return "(" + g.path("l") + "[" + g.num(depth-1) + "] == " + g.literal() + ")"
		case 1:
			return "(" + g.path("o") + ".?" + g.choose("x", "s", "missing") + ".orValue(" + g.literal() + ") == " + g.literal() + ")"
		}
		return "(" + g.path(g.choose("o", "l")) + " == " + g.choose("{}", "[]", `{"x": 1.0}`, "[1.0]", `{"x": 1}`, `["a"]`) + ")"
	}
	return g.path(g.choose("l", "o")) + g.choose(".exists(v, ", ".all(v, ") + strings.ReplaceAll(g.expr(depth-1), "item.", "v.") + ")"
}

// FuzzNative checks the fast paths against cel-go on generated documents and
// expressions: the native condition gives cel-go's answer or declines,
// never a different one; a plain field path selects what cel-go selects;
// and cel-go itself answers the same on a document decoded by ParseJSON as
// on one decoded by encoding/json.
func FuzzNative(f *testing.F) {
	// An expression's choices, then the documents'.
	f.Add([]byte{3, 0, 0, 0, 2, 13}, []byte{3, 0, 0, 1, 6})
	f.Add([]byte{6, 3, 1, 0, 1, 0, 2, 3, 0, 2, 0, 8}, []byte{2, 0, 0, 1, 1, 1, 3, 3, 0, 2, 2})
	f.Add([]byte{9, 0, 0, 0, 1, 4, 0, 0, 1, 0, 15}, []byte{3, 0, 0, 0, 1, 1, 4, 0, 2})
	f.Add([]byte{15, 0, 0, 6, 1, 0, 3, 0, 0, 1, 1, 2, 5}, []byte{2, 6, 6, 3, 0, 1, 0, 3, 0, 0, 4, 2, 3})
	env, err := NewEnv(Var{Name: "obs"}, Var{Name: "item"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, exprChoices, docChoices []byte) {
		src := (&gen{b: exprChoices}).expr(4)
		g := &gen{b: docChoices}
		var item, state strings.Builder
		g.jsonObject(&item, 2)
		g.jsonObject(&state, 2)
		obsDoc := `{"subject":"s","instance":"i","state":` + state.String() + `}`

		p, err := env.Compile(src, Options{})
		if err != nil {
			return // not a well-typed expression: nothing to compare
		}
		// Bound in the Env's order, where programs look first, or not.
		vars := []struct{ name, doc string }{{"obs", obsDoc}, {"item", item.String()}}
		if len(docChoices)%2 == 1 {
			vars[0], vars[1] = vars[1], vars[0]
		}
		act := &Activation{}
		docs := map[string]any{} // as encoding/json decodes them
		for _, v := range vars {
			val, err := ParseJSON([]byte(v.doc))
			if err != nil {
				t.Fatalf("ParseJSON(%s): %v", v.doc, err)
			}
			act.Bind(v.name, val)
			var a any
			if err := json.Unmarshal([]byte(v.doc), &a); err != nil {
				t.Fatalf("encoding/json refuses %s: %v", v.doc, err)
			}
			docs[v.name] = a
		}
		want, _, werr := p.prg.Eval(act)
		if werr == nil && types.IsError(want) {
			werr = want.(*types.Err)
		}
		where := func() string {
			return fmt.Sprintf("\nexpr: %s\nitem: %s\nobs:  %s", src, item.String(), obsDoc)
		}

		if got, ok := p.evalNative(act); ok {
			b, isBool := want.(types.Bool)
			if werr != nil || !isBool || bool(b) != got {
				t.Fatalf("native %v, cel-go %v (error %v)%s", got, want, werr, where())
			}
		}
		if p.path != nil {
			got, err := p.evalPath(act)
			if (err != nil) != (werr != nil) || err == nil && !sameValue(got, want) {
				t.Fatalf("field path %v (error %v), cel-go %v (error %v)%s", got, err, want, werr, where())
			}
		}
		viaJSON, _, jerr := p.prg.Eval(docs)
		if jerr == nil && types.IsError(viaJSON) {
			jerr = viaJSON.(*types.Err)
		}
		if (jerr != nil) != (werr != nil) || jerr == nil && !sameValue(want, viaJSON) {
			t.Fatalf("on ParseJSON's document %v (error %v), on encoding/json's %v (error %v)%s", want, werr, viaJSON, jerr, where())
		}
	})
}

// sameValue reports whether two CEL values are the same result: equal, or
// both NaN.
func sameValue(a, b ref.Val) bool {
	if x, ok := a.(types.Double); ok && math.IsNaN(float64(x)) {
		y, ok := b.(types.Double)
		return ok && math.IsNaN(float64(y))
	}
	if a.Type() != b.Type() {
		return false
	}
	return a.Equal(b) == types.True
}
