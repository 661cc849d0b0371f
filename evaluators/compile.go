package evaluators

import (
	"errors"
	"sort"
	"strings"

	"github.com/operator-dev/operator/evaluators/rulefmt"
	"github.com/operator-dev/operator/internal/expr"
)

// Variables every expression sees.
const (
	varObs  = "obs"
	varItem = "item"
)

// compiledRule is the checked, ready-to-run form of a Rule.
type compiledRule struct {
	// src is the rule as parsed, with the lines of its expressions.
	src         *rulefmt.Rule
	each        *expr.Program
	key         *expr.Program
	expr        *expr.Program
	summary     *template
	description *template
	labelNames  []string
	labels      map[string]*template
	paramNames  []string
	params      map[string]*expr.Program
	// evidence lists the select chains rooted at obs that the condition
	// reads, for the evidence of rules without each.
	evidence [][]string
}

// template is text with {{ CEL }} parts.
type template struct {
	parts []templatePart
}

type templatePart struct {
	text string
	expr *expr.Program // nil for literal text
}

// compiler holds what compiling one rule needs.
type compiler struct {
	p    *parser
	rule *Rule
	env  *expr.Env
	opts expr.Options
}

// compile compiles and checks every expression of r, reporting problems to
// p. obs is the shape of the observation, with the subject's state schema
// when it has one.
func (p *parser) compile(r *Rule, obs expr.Shape) {
	label := r.Name
	vars := []expr.Var{{Name: varObs, Shape: obs}}
	if r.Each != "" {
		vars = append(vars, expr.Var{Name: varItem})
	}
	env, err := expr.NewEnv(vars...)
	if err != nil {
		p.errorf(r.Line, label, "%v", err)
		return
	}
	c := &compiler{p: p, rule: r, env: env, opts: expr.Options{CostBudget: p.opts.CostBudget, AssumedSize: p.opts.AssumedSize}}
	cr := r.c
	src := cr.src
	if r.Each != "" {
		cr.each = c.expr("each", src.Each, expr.WantList)
		if cr.each != nil {
			c.env = env.WithShape(varItem, cr.each.Shape().Items())
		}
	}
	if strings.TrimSpace(r.Key) != "" {
		cr.key = c.expr("key", src.Key, expr.WantStringOrNumber)
	}
	cr.expr = c.expr("expr", src.Expr, expr.WantBool)
	if cr.expr != nil {
		cr.evidence = cr.expr.Paths(varObs)
	}
	cr.summary = c.template("summary", src.Summary)
	cr.description = c.template("description", src.Description)
	cr.labels = map[string]*template{}
	for name, v := range src.Labels {
		cr.labelNames = append(cr.labelNames, name)
		cr.labels[name] = c.template("labels."+name, v)
	}
	sort.Strings(cr.labelNames)
	if r.Remediate != nil {
		cr.params = map[string]*expr.Program{}
		for name, e := range src.Remediate.Params {
			cr.paramNames = append(cr.paramNames, name)
			if strings.TrimSpace(e.Text) == "" {
				p.errorf(e.Line, label, "remediate.params.%s: empty expression", name)
				continue
			}
			cr.params[name] = c.expr("params."+name, e, expr.WantAny)
		}
		sort.Strings(cr.paramNames)
	}
}

// expr compiles at, the rule's field, reporting every problem at its line
// in the file. It returns the program even when its field paths or cost
// are refused, so expressions that depend on it are checked too; the rule
// set is refused anyway.
func (c *compiler) expr(field string, at rulefmt.Expr, want expr.Want) *expr.Program {
	return c.compileText(field, at.Text, at, want)
}

// compileText compiles src, which is at or a part of it.
func (c *compiler) compileText(field, src string, at rulefmt.Expr, want expr.Want) *expr.Program {
	opts := c.opts
	opts.Want = want
	prg, err := c.env.Compile(src, opts)
	var ce *expr.CompileError
	if errors.As(err, &ce) {
		for _, is := range ce.Issues {
			if is.Line == 0 {
				c.p.errorf(at.Line, c.rule.Name, "%s: %v", field, is.Err)
				continue
			}
			// A syntax or type error: its line within the text.
			line := at.Line
			if at.Block {
				line++
			}
			line += is.Line - 1
			c.p.errorf(line, c.rule.Name, "%s: %v (column %d)", field, is.Err, is.Column)
		}
	} else if err != nil {
		c.p.errorf(at.Line, c.rule.Name, "%s: %v", field, err)
	}
	return prg
}

// template parses text with {{ expr }} parts.
func (c *compiler) template(field string, at rulefmt.Expr) *template {
	t := &template{}
	rest := at.Text
	for rest != "" {
		i := strings.Index(rest, "{{")
		if i < 0 {
			t.parts = append(t.parts, templatePart{text: rest})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, templatePart{text: rest[:i]})
		}
		rest = rest[i+2:]
		j := strings.Index(rest, "}}")
		if j < 0 {
			c.p.errorf(at.Line, c.rule.Name, "%s: unterminated {{ in template", field)
			return t
		}
		src := strings.TrimSpace(rest[:j])
		rest = rest[j+2:]
		if src == "" {
			c.p.errorf(at.Line, c.rule.Name, "%s: empty {{ }} in template", field)
			continue
		}
		if pr := c.compileText(field, src, at, expr.WantAny); pr != nil {
			t.parts = append(t.parts, templatePart{expr: pr})
		}
	}
	return t
}
