package actuators

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/operator-dev/operator/internal/expr"
)

// Variables a verify expression sees.
const (
	varObs    = "obs"
	varParams = "params"
)

// DefaultVerifyCostLimit is the most one evaluation of a verify expression
// may cost, in CEL cost units (roughly one per operation); an evaluation that
// exceeds it is an error, never a silent false. A verify runs on the few
// observations after one action, so unlike a rule's it is not refused at
// load for a worst-case estimate over the state schema's bounds.
const DefaultVerifyCostLimit uint64 = 1_000_000

// verifyProgram is a compiled verify expression.
type verifyProgram struct {
	prg *expr.Program
}

// verifyEnv declares obs, with the shape of an observation of the subject
// (state unchecked when the subject has no state schema), and params, with
// the shape of the action's params schema (unchecked when it has none).
func verifyEnv(obs expr.Shape, params *expr.Schema) (*expr.Env, error) {
	return expr.NewEnv(
		expr.Var{Name: varObs, Shape: obs},
		expr.Var{Name: varParams, Shape: params.Shape("the params schema")},
	)
}

// compileVerify compiles and checks src: a bool (or dyn) expression over
// obs and params whose field paths the schemas have. Each problem comes
// back as one error, in the order found.
func compileVerify(env *expr.Env, src string) (*verifyProgram, []error) {
	opts := expr.Options{Want: expr.WantBool, CostBudget: DefaultVerifyCostLimit, SkipCostEstimate: true}
	prg, err := env.Compile(src, opts)
	if err == nil {
		return &verifyProgram{prg: prg}, nil
	}
	var ce *expr.CompileError
	if !errors.As(err, &ce) || ce.Issues[0].Line > 0 {
		// A syntax or type error: CEL's own report, which shows where.
		return nil, []error{err}
	}
	errs := make([]error, len(ce.Issues))
	for i, is := range ce.Issues {
		errs[i] = is.Err
		if te, ok := is.Err.(*expr.TypeError); ok {
			errs[i] = fmt.Errorf("must yield %s, yields %s", te.Want, te.Got)
		}
	}
	return nil, errs
}

// eval evaluates the program against one observation's data (JSON) and the
// request's params. An error means the observation could not be judged (a
// missing field, a partial observation), never "false".
func (v *verifyProgram) eval(obsData []byte, params map[string]any) (bool, error) {
	obs, err := expr.ParseJSON(obsData)
	if err != nil {
		return false, fmt.Errorf("decode observation: %w", err)
	}
	p, err := paramsValue(params)
	if err != nil {
		return false, err
	}
	var act expr.Activation
	act.Bind(varObs, obs)
	act.Bind(varParams, p)
	ok, err := v.prg.EvalBool(&act)
	if errors.Is(err, expr.ErrNotBool) {
		return false, fmt.Errorf("verify did not yield a bool: %w", err)
	}
	return ok, err
}

// paramsValue gives params the shape they have after JSON decoding
// (numbers as doubles), whatever their Go types.
func paramsValue(params map[string]any) (expr.Value, error) {
	if params == nil {
		params = map[string]any{}
	}
	b, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("encode params: %w", err)
	}
	v, err := expr.ParseJSON(b)
	if err != nil {
		return nil, fmt.Errorf("decode params: %w", err)
	}
	return v, nil
}
