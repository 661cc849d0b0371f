package evaluators

import (
	"fmt"
	"strings"
	"testing"
)

// TestNativeAgreesWithCEL runs conditions natively and with the CEL program
// on items of every kind: wherever the native form answers, CEL must give
// the same result and no error. The plain shapes must be answered natively.
func TestNativeAgreesWithCEL(t *testing.T) {
	conds := []struct {
		expr   string
		native bool // answered natively on the first item
	}{
		{`item.x > 1.0`, true},
		{`item.x < 2`, true},
		{`2 > item.x`, true},
		{`item.x >= item.y`, true},
		{`item.x <= -1.0`, true},
		{`item.x == 1.5`, true},
		{`item.x != 2.0`, true},
		{`item.y == 2`, true},
		{`2 == item.y`, true},
		{`item.y != 0`, true},
		{`1.0 < item.x`, true},
		{`item.s == "a"`, true},
		{`item.s != "b"`, true},
		{`item.b`, true},
		{`!item.b`, true},
		{`item.b == true`, true},
		{`item.x * 1.1 > item.y`, true},
		{`item.x + item.y > 3.0`, true},
		{`item.x - item.y < 0.0`, true},
		{`item.big * 10.0 - item.big * 10.0 == 0.0`, false}, // Inf - Inf is NaN
		{`item.x > 1.0 && item.s == "a"`, true},
		{`item.x > 100.0 && item.missing > 1.0`, true},
		{`item.x > 1.0 || item.missing > 1.0`, true},
		{`item.missing > 1.0 || item.b`, false},
		{`item.o.z > 2.0`, true},
		{`obs.state.g > 0.5`, true},
		{`item.n == null`, false},
		{`item.x * 2 > 1.0`, false},
		{`item.s > "a"`, false},
		{`item.x == item.s`, false},
		{`9007199254740993 < item.x`, false},
		{`item.s.size() > 0`, false},
		{`item.x > 1.0 ? item.b : false`, false},
	}
	items := []string{
		`{"x": 1.5, "y": 2, "s": "a", "b": true, "n": null, "o": {"z": 3}, "big": 1e308}`,
		`{"x": -0, "y": 0, "s": "b", "b": false, "o": {"z": 1}}`,
		`{"x": 2, "y": 1.5, "s": "", "b": true, "o": {}}`,
		`{"x": "str", "y": true, "s": 1, "b": "true", "o": 3}`,
		`{"x": null, "y": [1], "s": {"a": 1}, "b": null, "o": null}`,
		`{}`,
	}
	var b strings.Builder
	b.WriteString("subject: t\nrules:\n")
	for i, c := range conds {
		fmt.Fprintf(&b, "  - name: r%d\n    each: obs.state.items\n    key: string(obs.state.g)\n    expr: '%s'\n", i, strings.ReplaceAll(c.expr, "'", "''"))
	}
	rs, err := ParseRuleSet("native.yaml", []byte(b.String()), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	obs, err := parseJSON([]byte(`{"state": {"g": 1.0}}`))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range conds {
		p := rs.Rules[i].c.expr
		interp := *p
		interp.native = nil
		for j, src := range items {
			item, err := parseJSON([]byte(src))
			if err != nil {
				t.Fatal(err)
			}
			act := &activation{obs: obs, item: item, hasItem: true}
			var got, ok bool
			if p.native != nil {
				got, ok = p.native(act)
			}
			want, err := interp.evalBool(act)
			if j == 0 && ok != c.native {
				t.Errorf("%s on %s: answered natively %v, want %v", c.expr, src, ok, c.native)
			}
			if !ok {
				continue
			}
			if err != nil || got != want {
				t.Errorf("%s on %s: native %v, CEL %v (error %v)", c.expr, src, got, want, err)
			}
		}
	}
}
