package diagnosis

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/operator-dev/operator/actuators"
)

// costLimit bounds one evaluation: evidence is capped, so an expression
// that needs more is looping over something it should not.
const costLimit = 1_000_000

// envs are the CEL environments of a playbook's expressions.
type envs struct {
	// evidence: `violation`, `ev` (evidence id → data) and `failed`
	// (evidence id → why it could not be read).
	evidence *cel.Env
	// project: `obs` (one observation's data) and `violation`.
	project *cel.Env
	// projectData: `data` (what a GET or query answered) and `violation`.
	projectData *cel.Env
	// certainty: the counts of a hypothesis's signals.
	certainty *cel.Env
}

func newEnvs() (*envs, error) {
	common := []cel.EnvOption{
		cel.CrossTypeNumericComparisons(true),
		cel.OptionalTypes(),
		ext.Strings(),
		ext.Math(),
		ext.Lists(),
		ext.Encoders(),
	}
	mk := func(vars ...cel.EnvOption) (*cel.Env, error) {
		return cel.NewEnv(append(append([]cel.EnvOption{}, common...), vars...)...)
	}
	var e envs
	var err error
	if e.evidence, err = mk(cel.Variable("violation", cel.DynType), cel.Variable("ev", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("failed", cel.MapType(cel.StringType, cel.StringType))); err != nil {
		return nil, err
	}
	if e.project, err = mk(cel.Variable("violation", cel.DynType), cel.Variable("obs", cel.DynType)); err != nil {
		return nil, err
	}
	if e.projectData, err = mk(cel.Variable("violation", cel.DynType), cel.Variable("data", cel.DynType)); err != nil {
		return nil, err
	}
	if e.certainty, err = mk(cel.Variable("supports", cel.IntType), cel.Variable("contradicts", cel.IntType),
		cel.Variable("signals", cel.IntType), cel.Variable("violation", cel.DynType)); err != nil {
		return nil, err
	}
	return &e, nil
}

// jsonValueType is what CEL values convert to for JSON.
var jsonValueType = reflect.TypeFor[*structpb.Value]()

// program is a compiled expression.
type program struct {
	src string
	prg cel.Program
}

func (p *playbookParser) compile(n *yaml.Node, hyp, src string, env *cel.Env) *program {
	prg, err := compileExpr(env, src)
	if err != nil {
		p.errorf(n.Line, hyp, "%q: %v", src, err)
		return nil
	}
	return prg
}

func compileExpr(env *cel.Env, src string) (*program, error) {
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, errors.New(strings.ReplaceAll(iss.Err().Error(), "\n", " "))
	}
	prg, err := env.Program(ast, cel.CostLimit(costLimit), cel.InterruptCheckFrequency(100))
	if err != nil {
		return nil, err
	}
	return &program{src: src, prg: prg}, nil
}

// eval evaluates the program and returns the result as plain Go values
// (JSON-shaped).
func (p *program) eval(vars map[string]any) (any, error) {
	out, _, err := p.prg.Eval(vars)
	if err != nil {
		return nil, err
	}
	return native(out)
}

// native converts a CEL value to JSON-shaped Go values.
func native(v ref.Val) (any, error) {
	if types.IsError(v) {
		return nil, fmt.Errorf("%v", v)
	}
	// JSON round trip through structpb gives the JSON shape of any CEL
	// value a playbook can build (maps, lists, numbers, strings, bools).
	pb, err := v.ConvertToNative(jsonValueType)
	if err != nil {
		return nil, fmt.Errorf("result is not JSON: %w", err)
	}
	b, err := json.Marshal(pb)
	if err != nil {
		return nil, err
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// evalBool evaluates a condition.
func (p *program) evalBool(vars map[string]any) (bool, error) {
	out, _, err := p.prg.Eval(vars)
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("%q yields %v, not a bool", p.src, out.Value())
	}
	return b, nil
}

// template is text with {{ CEL }} parts.
type template struct {
	parts []templatePart
}

type templatePart struct {
	text string
	expr *program
}

func (p *playbookParser) template(n *yaml.Node, hyp, text string, env *cel.Env) *template {
	t, err := compileTemplate(env, text)
	if err != nil {
		p.errorf(n.Line, hyp, "%v", err)
		return nil
	}
	return t
}

func compileTemplate(env *cel.Env, text string) (*template, error) {
	t := &template{}
	rest := text
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			if strings.Contains(rest, "}}") {
				return nil, fmt.Errorf("template %q: }} without {{", text)
			}
			t.parts = append(t.parts, templatePart{text: rest})
			return t, nil
		}
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			return nil, fmt.Errorf("template %q: {{ without }}", text)
		}
		src := strings.TrimSpace(rest[i+2 : i+j])
		prg, err := compileExpr(env, src)
		if err != nil {
			return nil, fmt.Errorf("template %q: {{ %s }}: %w", text, src, err)
		}
		t.parts = append(t.parts, templatePart{text: rest[:i]}, templatePart{expr: prg})
		rest = rest[i+j+2:]
	}
}

// literal is a template of text alone, whatever braces it holds.
func literal(text string) *template { return &template{parts: []templatePart{{text: text}}} }

// render fills the template; escape, when set, encodes each value (a URL
// path segment, say).
func (t *template) render(vars map[string]any, escape func(string) string) (string, error) {
	var b strings.Builder
	for _, part := range t.parts {
		if part.expr == nil {
			b.WriteString(part.text)
			continue
		}
		v, err := part.expr.eval(vars)
		if err != nil {
			return "", fmt.Errorf("{{ %s }}: %w", part.expr.src, err)
		}
		s := display(v)
		if escape != nil {
			s = escape(s)
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

// display renders a value for text: strings as they are, whole numbers
// without a fraction, others as JSON.
func display(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	case nil:
		return "null"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// paramNames returns the params an action's schema declares.
func paramNames(a *actuators.Action) map[string]bool {
	var schema struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	_ = json.Unmarshal(a.Params, &schema)
	out := map[string]bool{}
	for k := range schema.Properties {
		out[k] = true
	}
	return out
}
