package statuspage

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/traits"

	"github.com/operator-dev/operator/internal/expr"
	"github.com/operator-dev/operator/subjects"
)

// Variables of view expressions.
const (
	varObs = "obs"
	varRow = "row"
)

// Views are one subject's views, compiled. They are immutable and safe for
// concurrent use.
type Views struct {
	views []compiledView
}

type compiledView struct {
	src    subjects.View
	rows   *expr.Program
	order  *expr.Program
	status *expr.Program
	cols   []*expr.Program
}

// CompileViews compiles a subject's views, checking the fields they read
// against the subject's state schema as rules are checked. Every problem
// comes back, each naming its view and expression.
func CompileViews(subject string, views []subjects.View) (*Views, error) {
	var state *expr.Schema
	if name := expr.EmbeddedStateSchema(subject); name != "" {
		var err error
		if state, err = expr.LoadSchema(name, func(string) ([]byte, error) { return nil, errors.New("not embedded") }); err != nil {
			return nil, fmt.Errorf("%s state schema: %w", subject, err)
		}
	}
	obs, err := expr.ObservationShape(state)
	if err != nil {
		return nil, err
	}
	env, err := expr.NewEnv(expr.Var{Name: varObs, Shape: obs}, expr.Var{Name: varRow})
	if err != nil {
		return nil, err
	}
	out := &Views{}
	var errs []error
	for _, v := range views {
		fail := func(what, src string, err error) {
			errs = append(errs, fmt.Errorf("%s view %s: %s %q: %w", subject, v.Name, what, src, err))
		}
		cv := compiledView{src: v}
		rows, err := env.Compile(v.Rows, expr.Options{Want: expr.WantList})
		if err != nil {
			fail("rows", v.Rows, err)
			continue
		}
		cv.rows = rows
		rowEnv := env.WithShape(varRow, rows.Shape().Items())
		compile := func(what, src string, want expr.Want) *expr.Program {
			if src == "" {
				return nil
			}
			p, err := rowEnv.Compile(src, expr.Options{Want: want})
			if err != nil {
				fail(what, src, err)
			}
			return p
		}
		cv.order = compile("order_by", v.OrderBy, expr.WantStringOrNumber)
		cv.status = compile("status", v.Status, expr.WantAny)
		for _, c := range v.Columns {
			cv.cols = append(cv.cols, compile("column "+c.Title, c.Expr, expr.WantAny))
		}
		out.views = append(out.views, cv)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// A Table is one view of an instance's latest observation.
type Table struct {
	Name    string        `json:"name"`
	Title   string        `json:"title"`
	Columns []TableColumn `json:"columns"`
	Rows    []TableRow    `json:"rows"`
	// Total is the number of rows before the view's limit.
	Total int `json:"total"`
	// Error says why the table could not be made; Rows is then empty.
	Error string `json:"error,omitempty"`
}

// A TableColumn heads one column.
type TableColumn struct {
	Title string `json:"title"`
	Unit  string `json:"unit,omitempty"`
}

// A TableRow is one row: a value per column (null where the expression
// failed) and how to mark it ("ok", "warn", "bad" or "").
type TableRow struct {
	Cells  []any  `json:"cells"`
	Status string `json:"status,omitempty"`
}

// Tables makes every view's table from an observation's data.
func (v *Views) Tables(obsData []byte) []Table {
	if v == nil || len(v.views) == 0 {
		return nil
	}
	out := make([]Table, 0, len(v.views))
	obs, err := expr.ParseJSON(obsData)
	for _, cv := range v.views {
		t := Table{Name: cv.src.Name, Title: cv.src.Title, Rows: []TableRow{}}
		for _, c := range cv.src.Columns {
			t.Columns = append(t.Columns, TableColumn{Title: c.Title, Unit: c.Unit})
		}
		if err != nil {
			t.Error = fmt.Sprintf("observation is not JSON: %v", err)
		} else if terr := cv.fill(&t, obs); terr != nil {
			t.Error = terr.Error()
		}
		out = append(out, t)
	}
	return out
}

// fill evaluates the view over obs into t.
func (cv compiledView) fill(t *Table, obs expr.Value) error {
	var act expr.Activation
	act.Bind(varObs, obs)
	list, err := cv.rows.Eval(&act)
	if err != nil {
		return fmt.Errorf("rows: %w", err)
	}
	lister, ok := list.(traits.Lister)
	if !ok {
		return fmt.Errorf("rows yield %s, not a list", list.Type())
	}
	n, _ := lister.Size().(types.Int)
	type keyed struct {
		row TableRow
		key any
	}
	rows := make([]keyed, 0, int(n))
	row := act.Slot(varRow)
	for i := range int(n) {
		row.Set(lister.Get(types.Int(i)))
		var k keyed
		for _, col := range cv.cols {
			k.row.Cells = append(k.row.Cells, cell(col, &act))
		}
		if cv.status != nil {
			if s, ok := cell(cv.status, &act).(string); ok && (s == "ok" || s == "warn" || s == "bad") {
				k.row.Status = s
			}
		}
		if cv.order != nil {
			k.key = cell(cv.order, &act)
		}
		rows = append(rows, k)
	}
	if cv.order != nil {
		slices.SortStableFunc(rows, func(a, b keyed) int {
			c := compareKeys(a.key, b.key)
			if cv.src.Descending {
				return -c
			}
			return c
		})
	}
	t.Total = len(rows)
	if cv.src.Limit > 0 && len(rows) > cv.src.Limit {
		rows = rows[:cv.src.Limit]
	}
	for _, k := range rows {
		t.Rows = append(t.Rows, k.row)
	}
	return nil
}

// cell evaluates p to a JSON value; nil when it fails or has no JSON form.
func cell(p *expr.Program, act *expr.Activation) any {
	v, err := p.Eval(act)
	if err != nil {
		return nil
	}
	out, err := expr.JSONValue(v)
	if err != nil {
		return nil
	}
	return out
}

// compareKeys orders numbers before strings before anything else (nil
// last), numbers by value and strings by bytes.
func compareKeys(a, b any) int {
	rank := func(v any) (int, float64, string) {
		switch x := v.(type) {
		case float64:
			return 0, x, ""
		case int64:
			return 0, float64(x), ""
		case uint64:
			return 0, float64(x), ""
		case string:
			return 1, 0, x
		}
		return 2, 0, ""
	}
	ra, fa, sa := rank(a)
	rb, fb, sb := rank(b)
	if c := cmp.Compare(ra, rb); c != 0 {
		return c
	}
	if ra == 0 {
		if math.IsNaN(fa) || math.IsNaN(fb) {
			return 0
		}
		return cmp.Compare(fa, fb)
	}
	return cmp.Compare(sa, sb)
}
