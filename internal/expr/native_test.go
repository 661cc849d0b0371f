package expr

import (
	"testing"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// evalNative is what EvalBool gets from the native form of a condition
// alone; ok is false when there is none or it declines.
func (p *Program) evalNative(act *Activation) (result, ok bool) {
	if p.native == nil {
		return false, false
	}
	v, ok := p.native(act)
	if !ok || v.kind != nativeBool {
		return false, false
	}
	return v.b, true
}

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
	env, err := NewEnv(Var{Name: "obs"}, Var{Name: "item"})
	if err != nil {
		t.Fatal(err)
	}
	obs, err := ParseJSON([]byte(`{"state": {"g": 1.0}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range conds {
		p, err := env.Compile(c.expr, Options{Want: WantBool})
		if err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		interp := *p
		interp.native = nil
		for j, src := range items {
			item, err := ParseJSON([]byte(src))
			if err != nil {
				t.Fatal(err)
			}
			act := &Activation{}
			act.Bind("obs", obs)
			act.Bind("item", item)
			got, ok := p.evalNative(act)
			want, err := interp.EvalBool(act)
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

func TestActivation(t *testing.T) {
	var act Activation
	names := []string{"obs", "item", "params", "extra"}
	for i, name := range names {
		act.Bind(name, types.Int(i))
	}
	act.Bind("item", nil)
	act.Slot("params").Set(types.Int(20))
	act.Slot("late").Set(types.Int(30))
	act.Slot("extra").Set(nil)
	tests := []struct {
		name string
		want ref.Val // nil: unbound
	}{
		{name: "obs", want: types.Int(0)},
		{name: "item"},
		{name: "params", want: types.Int(20)},
		{name: "extra"},
		{name: "late", want: types.Int(30)},
		{name: "never"},
	}
	for _, tt := range tests {
		v, ok := act.ResolveName(tt.name)
		if tt.want == nil {
			if ok {
				t.Errorf("%s resolves to %v, want unbound", tt.name, v)
			}
			continue
		}
		if !ok || v.(ref.Val).Equal(tt.want) != types.True {
			t.Errorf("%s resolves to %v (%v), want %v", tt.name, v, ok, tt.want)
		}
	}
	if act.Parent() != nil {
		t.Error("an Activation has no parent")
	}
}
