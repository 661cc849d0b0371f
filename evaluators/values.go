package evaluators

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"

	"github.com/operator-dev/operator/internal/expr"
)

// keyString renders a key expression's value for the fingerprint.
func keyString(v ref.Val) (string, error) {
	switch v := v.(type) {
	case types.String:
		return string(v), nil
	case types.Double:
		f := float64(v)
		if f == 0 {
			f = 0 // -0 and 0 are one number, so one resource
		}
		return strconv.FormatFloat(f, 'f', -1, 64), nil
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
	n, err := expr.JSONValue(v)
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

// render evaluates a template. A part that fails renders as <error: ...>
// and the error is returned too, so the caller can count it.
func (t *template) render(act *expr.Activation) (string, error) {
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
		v, err := part.expr.Eval(act)
		if err != nil {
			fmt.Fprintf(&b, "<error: %v>", err)
			errs = append(errs, fmt.Errorf("template {{ %s }}: %w", part.expr.Source(), err))
			continue
		}
		b.WriteString(textValue(v))
	}
	return b.String(), errors.Join(errs...)
}

// pathValue selects a chain (root variable first) from act; false when a
// field is missing.
func pathValue(act *expr.Activation, chain []string) (ref.Val, bool) {
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
