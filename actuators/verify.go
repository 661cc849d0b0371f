package actuators

import (
	"encoding/json"
	"errors"
	"fmt"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"
)

// Variables a verify expression sees.
const (
	varObs    = "obs"
	varParams = "params"
)

// DefaultVerifyCostLimit is the most one evaluation of a verify expression
// may cost, in CEL cost units (roughly one per operation); an evaluation that
// exceeds it is an error, never a silent false.
const DefaultVerifyCostLimit uint64 = 1_000_000

// verifyProgram is a compiled verify expression.
type verifyProgram struct {
	src string
	prg cel.Program
}

func verifyEnv() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable(varObs, cel.DynType),
		cel.Variable(varParams, cel.DynType),
		cel.CrossTypeNumericComparisons(true),
		cel.OptionalTypes(),
		ext.Strings(),
		ext.Math(),
	)
}

// compileVerify compiles and type-checks src: it must be a bool (or dyn)
// expression over obs and params.
func compileVerify(src string) (*verifyProgram, error) {
	env, err := verifyEnv()
	if err != nil {
		return nil, fmt.Errorf("build CEL environment: %w", err)
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, iss.Err()
	}
	if t := ast.OutputType(); !t.IsExactType(types.BoolType) && !t.IsExactType(types.DynType) {
		return nil, fmt.Errorf("must yield a bool, yields %s", t)
	}
	prg, err := env.Program(ast, cel.CostLimit(DefaultVerifyCostLimit), cel.InterruptCheckFrequency(100))
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	return &verifyProgram{src: src, prg: prg}, nil
}

// errNotBool is returned when an expression typed dyn yields a non-bool.
var errNotBool = errors.New("verify did not yield a bool")

// eval evaluates the program against one observation's data (JSON) and the
// request's params. An error means the observation could not be judged (a
// missing field, a partial observation), never "false".
func (v *verifyProgram) eval(obsData []byte, params map[string]any) (bool, error) {
	var obs map[string]any
	if err := json.Unmarshal(obsData, &obs); err != nil {
		return false, fmt.Errorf("decode observation: %w", err)
	}
	p, err := jsonRoundTrip(params)
	if err != nil {
		return false, err
	}
	out, _, err := v.prg.Eval(map[string]any{varObs: obs, varParams: p})
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("%w: got %v", errNotBool, out.Value())
	}
	return b, nil
}

// jsonRoundTrip gives params the shape they have after JSON decoding
// (numbers as float64), whatever their Go types.
func jsonRoundTrip(params map[string]any) (map[string]any, error) {
	if params == nil {
		return map[string]any{}, nil
	}
	b, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("encode params: %w", err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("decode params: %w", err)
	}
	return out, nil
}
