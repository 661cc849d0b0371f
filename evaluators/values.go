package evaluators

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"
)

// nativeValue converts a CEL value back to plain JSON-able Go data.
func nativeValue(v ref.Val) (any, error) {
	switch v := v.(type) {
	case types.Null:
		return nil, nil
	case types.Bool:
		return bool(v), nil
	case types.String:
		return string(v), nil
	case types.Double:
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%v is not representable in JSON", f)
		}
		return f, nil
	case types.Int:
		return int64(v), nil
	case types.Uint:
		return uint64(v), nil
	case types.Timestamp:
		return v.Time.UTC().Format(time.RFC3339Nano), nil
	case types.Duration:
		return v.Duration.String(), nil
	case *types.Err:
		return nil, v
	case traits.Mapper:
		out := map[string]any{}
		it := v.Iterator()
		for it.HasNext() == types.True {
			k := it.Next()
			ks, ok := k.(types.String)
			if !ok {
				return nil, fmt.Errorf("map key %v is not a string", k)
			}
			e, err := nativeValue(v.Get(k))
			if err != nil {
				return nil, err
			}
			out[string(ks)] = e
		}
		return out, nil
	case traits.Lister:
		n, ok := v.Size().(types.Int)
		if !ok {
			return nil, errors.New("list without a size")
		}
		out := make([]any, int(n))
		for i := range out {
			e, err := nativeValue(v.Get(types.Int(i)))
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported value of type %s", v.Type())
}

// keyString renders a key expression's value for the fingerprint.
func keyString(v ref.Val) (string, error) {
	switch v := v.(type) {
	case types.String:
		return string(v), nil
	case types.Double:
		return strconv.FormatFloat(float64(v), 'f', -1, 64), nil
	case types.Int:
		return strconv.FormatInt(int64(v), 10), nil
	case types.Uint:
		return strconv.FormatUint(uint64(v), 10), nil
	case types.Bool:
		return strconv.FormatBool(bool(v)), nil
	}
	return "", fmt.Errorf("key must be a string or a number, not %s", v.Type())
}

// textValue renders a template part's value.
func textValue(v ref.Val) string {
	switch v := v.(type) {
	case types.String:
		return string(v)
	case types.Double:
		return strconv.FormatFloat(float64(v), 'f', -1, 64)
	}
	n, err := nativeValue(v)
	if err != nil {
		return fmt.Sprint(v.Value())
	}
	if s, ok := n.(string); ok {
		return s
	}
	b, err := json.Marshal(n)
	if err != nil {
		return fmt.Sprint(n)
	}
	return string(b)
}

// activation binds obs and item for one evaluation. It is reused across the
// items of a rule, so it must not be retained by the interpreter.
type activation struct {
	obs     ref.Val
	item    ref.Val
	hasItem bool
}

var _ interpreter.Activation = (*activation)(nil)

// ResolveName returns obs or item.
func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case varObs:
		return a.obs, true
	case varItem:
		if a.hasItem {
			return a.item, true
		}
	}
	return nil, false
}

// Parent returns nil: there is no enclosing scope.
func (a *activation) Parent() interpreter.Activation { return nil }

// eval runs the program. A CEL error value is returned as an error, never
// as a value: a failure is not a false.
func (p *program) eval(act *activation) (ref.Val, error) {
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
func (p *program) evalPath(act *activation) (ref.Val, error) {
	v, ok := act.ResolveName(p.path[0])
	if !ok {
		return nil, fmt.Errorf("no such attribute: %s", p.path[0])
	}
	cur := v.(ref.Val)
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

// evalBool runs a condition.
func (p *program) evalBool(act *activation) (bool, error) {
	if p.native != nil {
		if b, ok := p.native(act); ok {
			return b, nil
		}
	}
	v, err := p.eval(act)
	if err != nil {
		return false, err
	}
	b, ok := v.(types.Bool)
	if !ok {
		return false, fmt.Errorf("expr evaluated to %s, not bool", v.Type())
	}
	return bool(b), nil
}

// render evaluates a template. A part that fails renders as <error: ...>
// and the error is returned too, so the caller can count it.
func (t *template) render(act *activation) (string, error) {
	if t == nil {
		return "", nil
	}
	var b strings.Builder
	var errs []error
	for _, part := range t.parts {
		if part.expr == nil {
			b.WriteString(part.text)
			continue
		}
		v, err := part.expr.eval(act)
		if err != nil {
			fmt.Fprintf(&b, "<error: %v>", err)
			errs = append(errs, fmt.Errorf("template {{ %s }}: %w", part.expr.src, err))
			continue
		}
		b.WriteString(textValue(v))
	}
	return b.String(), errors.Join(errs...)
}

// pathValue selects a chain (root variable first) from act; false when a
// field is missing.
func pathValue(act *activation, chain []string) (ref.Val, bool) {
	v, ok := act.ResolveName(chain[0])
	if !ok {
		return nil, false
	}
	cur := v.(ref.Val)
	for _, f := range chain[1:] {
		m, ok := cur.(traits.Mapper)
		if !ok {
			return nil, false
		}
		if cur, ok = m.Find(types.String(f)); !ok {
			return nil, false
		}
	}
	return cur, true
}

// sortedKeys returns the keys of m, sorted.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
