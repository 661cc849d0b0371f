package expr

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

const testState = `{
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "nodes": {"type": "array", "maxItems": 10, "items": {
      "type": "object", "additionalProperties": false,
      "properties": {"id": {"type": "string"}, "up": {"type": "boolean"}}}},
    "keys": {"type": "array", "items": {"type": "object", "properties": {"key": {"type": "string"}}}},
    "limits": {"type": "object", "additionalProperties": {"type": "object", "properties": {"limit": {"type": "number"}}}},
    "free": {"type": "object"}
  }
}`

func testEnv(t *testing.T) *Env {
	t.Helper()
	state, err := CompileSchema("test.state.json", []byte(testState))
	if err != nil {
		t.Fatal(err)
	}
	obs, err := ObservationShape(state)
	if err != nil {
		t.Fatal(err)
	}
	params, err := CompileSchema("params.json", []byte(`{"type": "object", "additionalProperties": false, "properties": {"id": {"type": "string"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	env, err := NewEnv(Var{Name: "obs", Shape: obs}, Var{Name: "params", Shape: params.Shape("the params schema")}, Var{Name: "item"})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// TestCompileRefusals checks each load-time check: syntax and type errors
// placed in the text, the result type, field paths against each schema,
// and the estimated cost.
func TestCompileRefusals(t *testing.T) {
	env := testEnv(t)
	tests := []struct {
		name    string
		src     string
		opts    Options
		want    []string // the issues, in order
		program bool     // a program comes back with the error
	}{
		{name: "syntax", src: "obs.state.nodes &&\n  ", want: []string{"2:3: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}"}},
		{name: "undeclared", src: "obs.state.nodes == x", want: []string{"1:20: undeclared reference to 'x'"}},
		{name: "result type", src: `"up"`, opts: Options{Want: WantBool}, want: []string{"must evaluate to a bool, not string"}},
		{name: "state field", src: "size(obs.state.nodez) > 0", want: []string{`field obs.state.nodez: the state schema has no field "nodez"`}, program: true},
		{name: "envelope field", src: "obs.observed == null", want: []string{`field obs.observed: the observation schema has no field "observed"`}, program: true},
		{name: "params field", src: "params.ident == 'a'", want: []string{`field params.ident: the params schema has no field "ident"`}, program: true},
		{name: "item fields", src: "obs.state.nodes.exists(n, n.upp) || obs.state.limits.exists(k, obs.state.limits[k].limt > 0)", want: []string{
			`field obs.state.nodes[].upp: the state schema has no field "upp"`,
			`field obs.state.limits[].limt: the state schema has no field "limt"`,
		}, program: true},
		{name: "cost", src: "obs.state.keys.exists(a, obs.state.keys.exists(b, a.key == b.key))", opts: Options{CostBudget: 10_000}, want: []string{
			"estimated cost 108008004 exceeds the budget of 10000 (bound the collections it iterates with maxItems in the state schema, or simplify it)",
		}, program: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := env.Compile(tt.src, tt.opts)
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v, want a *CompileError", err)
			}
			var got []string
			for _, is := range ce.Issues {
				msg := is.Err.Error()
				if is.Line > 0 {
					msg = fmt.Sprintf("%d:%d: %s", is.Line, is.Column, msg)
				}
				got = append(got, msg)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("issues:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if (p != nil) != tt.program {
				t.Errorf("program %v, want one: %v", p, tt.program)
			}
		})
	}
}

func TestCompileErrorReport(t *testing.T) {
	env := testEnv(t)
	_, err := env.Compile("obs.state.nodes ==", Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "ERROR: <input>:1:19: Syntax error:") || !strings.Contains(err.Error(), "\n | obs.state.nodes ==\n") {
		t.Fatalf("error %q, want cel-go's report with the source line", err)
	}
	_, err = env.Compile("obs.state.a || obs.state.b", Options{})
	if err == nil || err.Error() != `field obs.state.a: the state schema has no field "a"; field obs.state.b: the state schema has no field "b"` {
		t.Fatalf("error %q, want the issues joined", err)
	}
	var te *TypeError
	if _, err := env.Compile("[1]", Options{Want: WantStringOrNumber}); !errors.As(err, &te) || te.Want != WantStringOrNumber || te.Got != "list(int)" {
		t.Fatalf("error %v, want a *TypeError", err)
	}
}

func TestSkipCostEstimate(t *testing.T) {
	env := testEnv(t)
	src := "obs.state.keys.exists(a, obs.state.keys.exists(b, a.key == b.key))"
	if _, err := env.Compile(src, Options{CostBudget: 10_000, SkipCostEstimate: true}); err != nil {
		t.Fatalf("refused without an estimate: %v", err)
	}
}

// TestProgramFacts checks what a program tells its caller: the shape of its
// result, the paths it reads and whether it is a plain field path.
func TestProgramFacts(t *testing.T) {
	env := testEnv(t)
	each, err := env.Compile("obs.state.nodes", Options{Want: WantList})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(each.FieldPath(), "."); got != "obs.state.nodes" {
		t.Errorf("FieldPath = %q", got)
	}
	itemEnv := env.WithShape("item", each.Shape().Items())
	if _, err := itemEnv.Compile("item.upp", Options{}); err == nil || !strings.Contains(err.Error(), `field item.upp: the state schema has no field "upp"`) {
		t.Errorf("item's shape from each: error %v", err)
	}
	if _, err := env.Compile("item.upp", Options{}); err != nil {
		t.Errorf("item without a shape is not checked: %v", err)
	}
	cond, err := env.Compile(`obs.state.free.x > 1.0 && obs.state.free.x < obs.state.free.y.z && obs.state.free.y.z != 0.0 && params.id == ""`, Options{Want: WantBool})
	if err != nil {
		t.Fatal(err)
	}
	if cond.FieldPath() != nil {
		t.Errorf("FieldPath of a condition = %v", cond.FieldPath())
	}
	want := [][]string{{"obs", "state", "free", "x"}, {"obs", "state", "free", "y", "z"}}
	if got := cond.Paths("obs"); !reflect.DeepEqual(got, want) {
		t.Errorf("Paths(obs) = %v, want %v", got, want)
	}
	if got := cond.Paths("params"); !reflect.DeepEqual(got, [][]string{{"params", "id"}}) {
		t.Errorf("Paths(params) = %v", got)
	}
}

func TestLoadSchema(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/local.json", []byte(`{"type": "object"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	read := func(name string) ([]byte, error) { return os.ReadFile(dir + "/" + name) }
	tests := []struct {
		name    string
		wantErr string
	}{
		{name: "ratelimiter.state.v1.json"},
		{name: "local.json"},
		{name: "nosuch.json", wantErr: "neither an embedded schema (schemas.FS) nor a readable file: open "},
	}
	for _, tt := range tests {
		s, err := LoadSchema(tt.name, read)
		if tt.wantErr != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("LoadSchema(%s): error %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil || s.Name() != tt.name {
			t.Errorf("LoadSchema(%s) = %v, %v", tt.name, s, err)
		}
	}
	if got := EmbeddedStateSchema("tikv"); got != "tikv.state.v1.json" {
		t.Errorf("EmbeddedStateSchema(tikv) = %q", got)
	}
	if got := EmbeddedStateSchema("nosuch"); got != "" {
		t.Errorf("EmbeddedStateSchema(nosuch) = %q", got)
	}
}
