package evaluators

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/operator-dev/operator/internal/expr"
	"github.com/operator-dev/operator/schemas"
)

// Built-in rules every subject has. Their names are reserved.
const (
	// RuleObserverStale fires per subject instance when its observations
	// stop for stale_after, and resolves when they resume. Its key is "".
	RuleObserverStale = "observer_stale"
	// RuleError fires when a rule cannot be evaluated (a runtime error) and
	// resolves when it evaluates cleanly again. Its key is the failing
	// rule's name.
	RuleError = "rule_error"
)

// OnMissing says what happens to a rule's firing alerts while the subject
// instance's observations have stopped.
type OnMissing string

const (
	// OnMissingKeep leaves them firing (the default).
	OnMissingKeep OnMissing = "keep"
	// OnMissingResolve resolves them when the instance goes stale.
	OnMissingResolve OnMissing = "resolve"
)

// Defaults for loading rule sets.
const (
	// DefaultCostBudget is the most a single CEL expression may cost, both
	// as estimated at load time and as measured at run time, in CEL cost
	// units (roughly one per operation).
	DefaultCostBudget = expr.DefaultCostBudget
	// DefaultAssumedSize is the size the cost estimate assumes for a list,
	// map or string whose schema gives no maxItems, maxProperties or
	// maxLength.
	DefaultAssumedSize = expr.DefaultAssumedSize
)

// LoadOptions tunes ParseRuleSet and LoadRuleSets. The zero value uses the
// defaults.
type LoadOptions struct {
	// CostBudget is the maximum estimated and run-time CEL cost of one
	// expression; 0 means DefaultCostBudget.
	CostBudget uint64
	// AssumedSize is the assumed size of collections without a schema
	// bound; 0 means DefaultAssumedSize.
	AssumedSize uint64
}

func (o LoadOptions) withDefaults() LoadOptions {
	if o.CostBudget == 0 {
		o.CostBudget = DefaultCostBudget
	}
	if o.AssumedSize == 0 {
		o.AssumedSize = DefaultAssumedSize
	}
	return o
}

// RuleSet is one rule file: the invariants of one subject.
type RuleSet struct {
	// File is the path the rule set was read from.
	File string
	// Subject is the subject the rules judge; observations of other
	// subjects never reach them.
	Subject string
	// StateSchema is the state schema as written in the file: an embedded
	// schema name (schemas.FS) or a path relative to the file. Empty: the
	// embedded <subject>.state.v1.json when it exists.
	StateSchema string
	// StaleAfter is how long observations may stop before observer_stale
	// fires; 0 derives it (see Config.StaleAfter).
	StaleAfter time.Duration
	// Rules in file order.
	Rules []*Rule

	state *expr.Schema
}

// Rule is one invariant. Expressions are CEL over `obs` (the observation
// data: subject, instance, observed_at, observer, state) and, when Each is
// set, `item` (the current element).
type Rule struct {
	Name string
	// Line is the line of the rule in its file.
	Line int
	// Each, when set, is a CEL expression yielding a list; the rule is
	// evaluated once per element, bound as `item`.
	Each string
	// Key is a CEL expression naming the resource inside the subject
	// (required with Each); it is part of the fingerprint. Empty: "".
	Key string
	// Expr is the CEL condition; true means violated.
	Expr string
	// For is the grace period pending → firing; KeepFiringFor the
	// hysteresis firing → resolved.
	For           time.Duration
	KeepFiringFor time.Duration
	// Severity is one of schemas.Severity*.
	Severity string
	// Summary and Description are text with {{ CEL }} templates.
	Summary     string
	Description string
	// Labels are attached to every violation; values are templates too.
	Labels    map[string]string
	OnMissing OnMissing
	// Remediate, when set, requests an action when the rule fires.
	Remediate *Remediation

	c *compiledRule
}

// Timing returns the rule's grace periods.
func (r *Rule) Timing() Timing { return Timing{For: r.For, KeepFiringFor: r.KeepFiringFor} }

// Remediation is the action a rule requests when it fires.
type Remediation struct {
	Action string
	// Params maps each parameter name to a CEL expression.
	Params map[string]string
}

// Error is one problem in a rule file. LoadRuleSets and ParseRuleSet return
// every problem they find, joined with errors.Join.
type Error struct {
	File string
	// Line is 1-based; 0 when unknown.
	Line int
	// Rule is the rule's name (or its position, rules[i], when it has no
	// name); empty for file-level problems.
	Rule string
	Err  error
}

// Error renders file:line: rule "name": reason.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Rule != "" {
		fmt.Fprintf(&b, "rule %q: ", e.Rule)
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the reason.
func (e *Error) Unwrap() error { return e.Err }

// Errors returns the individual problems in err (an errors.Join of *Error,
// as LoadRuleSets returns), or err itself.
func Errors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

var (
	ruleNameRE   = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	actionNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	yamlLineRE   = regexp.MustCompile(`^yaml: line (\d+): `)
)

// LoadRuleSets reads and checks rule files. It returns every problem in
// every file, joined; the rule sets are usable only when the error is nil.
// Several files may name the same subject; rule names must then be unique
// across them.
func LoadRuleSets(opts LoadOptions, paths ...string) ([]*RuleSet, error) {
	var (
		sets []*RuleSet
		errs []error
	)
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, &Error{File: p, Err: fmt.Errorf("read rule file: %w", err)})
			continue
		}
		rs, err := ParseRuleSet(p, data, opts)
		if err != nil {
			errs = append(errs, Errors(err)...)
			continue
		}
		sets = append(sets, rs)
	}
	errs = append(errs, checkAcrossFiles(sets)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return sets, nil
}

// checkAcrossFiles refuses rule names repeated in two files of one subject
// and contradicting stale_after values.
func checkAcrossFiles(sets []*RuleSet) []error {
	var errs []error
	type seen struct {
		file string
		line int
	}
	names := map[string]seen{}
	stale := map[string]*RuleSet{}
	for _, rs := range sets {
		if rs.StaleAfter > 0 {
			if o, ok := stale[rs.Subject]; ok && o.StaleAfter != rs.StaleAfter {
				errs = append(errs, &Error{File: rs.File, Err: fmt.Errorf("stale_after %s contradicts %s in %s for subject %q", rs.StaleAfter, o.StaleAfter, o.File, rs.Subject)})
			} else {
				stale[rs.Subject] = rs
			}
		}
		for _, r := range rs.Rules {
			k := rs.Subject + "\x00" + r.Name
			if o, ok := names[k]; ok {
				errs = append(errs, &Error{File: rs.File, Line: r.Line, Rule: r.Name, Err: fmt.Errorf("duplicate rule name for subject %q (first defined at %s:%d)", rs.Subject, o.file, o.line)})
				continue
			}
			names[k] = seen{rs.File, r.Line}
		}
	}
	return errs
}

// ParseRuleSet parses and checks one rule file. file names it in errors and
// anchors a relative state_schema path. It returns every problem found,
// joined with errors.Join, each an *Error.
func ParseRuleSet(file string, data []byte, opts LoadOptions) (*RuleSet, error) {
	p := &parser{file: file, opts: opts.withDefaults()}
	rs := p.parse(data)
	if len(p.errs) > 0 {
		// In file order; problems on one line keep the order found.
		sort.SliceStable(p.errs, func(i, j int) bool {
			return p.errs[i].(*Error).Line < p.errs[j].(*Error).Line
		})
		return nil, errors.Join(p.errs...)
	}
	return rs, nil
}

type parser struct {
	file string
	opts LoadOptions
	errs []error
}

func (p *parser) errorf(line int, rule, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Rule: rule, Err: fmt.Errorf(format, args...)})
}

func (p *parser) parse(data []byte) *RuleSet {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := err.Error()
		line := 0
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = "yaml: " + msg[len(m[0]):]
		}
		p.errorf(line, "", "%s", msg)
		return nil
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		p.errorf(0, "", "empty rule file")
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		p.errorf(root.Line, "", "rule file must be a mapping with subject and rules")
		return nil
	}
	rs := &RuleSet{File: p.file}
	var rulesNode, subjectNode, schemaNode *yaml.Node
	p.fields(root, "", func(key string, k, v *yaml.Node) bool {
		switch key {
		case "subject":
			subjectNode = v
			rs.Subject = p.scalar(v, "", key)
		case "state_schema":
			schemaNode = v
			rs.StateSchema = p.scalar(v, "", key)
		case "stale_after":
			rs.StaleAfter = p.duration(v, "", key)
		case "rules":
			rulesNode = v
		default:
			return false
		}
		return true
	})
	switch {
	case subjectNode == nil:
		p.errorf(root.Line, "", "subject is required")
	case rs.Subject == "":
	default:
		if err := schemas.ValidToken(rs.Subject); err != nil {
			p.errorf(subjectNode.Line, "", "subject: %w", err)
		}
	}
	if rulesNode == nil {
		p.errorf(root.Line, "", "rules is required")
	} else if rulesNode.Kind != yaml.SequenceNode {
		p.errorf(rulesNode.Line, "", "rules must be a list")
		rulesNode = nil
	}

	rs.state = p.stateSchema(rs, schemaNode)
	names := map[string]int{}
	if rulesNode != nil {
		for i, n := range rulesNode.Content {
			r := p.rule(i, n)
			if r == nil {
				continue
			}
			if r.Name != "" {
				if first, ok := names[r.Name]; ok {
					p.errorf(r.Line, r.Name, "duplicate rule name (first defined at line %d)", first)
				} else {
					names[r.Name] = r.Line
				}
			}
			rs.Rules = append(rs.Rules, r)
		}
	}
	// Compile every rule that has an expression, even when the file has
	// other problems, so all of them are reported together.
	obs, err := expr.ObservationShape(rs.state)
	if err != nil {
		p.errorf(0, "", "%v", err)
		return rs
	}
	for _, r := range rs.Rules {
		if strings.TrimSpace(r.Expr) != "" {
			p.compile(r, obs)
		}
	}
	return rs
}

// fields walks a mapping, calling f for each key; f returns false for an
// unknown key. It reports duplicate and unknown keys.
func (p *parser) fields(m *yaml.Node, rule string, f func(key string, k, v *yaml.Node) bool) {
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errorf(k.Line, rule, "keys must be plain strings")
			continue
		}
		if first, ok := seen[k.Value]; ok {
			p.errorf(k.Line, rule, "duplicate key %q (first at line %d)", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		if !f(k.Value, k, v) {
			p.errorf(k.Line, rule, "unknown field %q", k.Value)
		}
	}
}

func (p *parser) scalar(v *yaml.Node, rule, field string) string {
	if v.Kind != yaml.ScalarNode {
		p.errorf(v.Line, rule, "%s must be a string", field)
		return ""
	}
	if v.Tag == "!!null" {
		return ""
	}
	return v.Value
}

func (p *parser) duration(v *yaml.Node, rule, field string) time.Duration {
	s := p.scalar(v, rule, field)
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		p.errorf(v.Line, rule, "%s: invalid duration %q (use Go syntax like 30s, 5m, 1h30m)", field, s)
		return 0
	}
	if d < 0 {
		p.errorf(v.Line, rule, "%s: negative duration %s", field, s)
		return 0
	}
	return d
}

func (p *parser) stringMap(v *yaml.Node, rule, field string) (map[string]string, map[string]int) {
	if v.Kind != yaml.MappingNode {
		if v.Tag != "!!null" {
			p.errorf(v.Line, rule, "%s must be a mapping", field)
		}
		return nil, nil
	}
	out := map[string]string{}
	lines := map[string]int{}
	p.fields(v, rule, func(key string, k, val *yaml.Node) bool {
		out[key] = p.scalar(val, rule, field+"."+key)
		lines[key] = val.Line
		return true
	})
	return out, lines
}

// exprLine remembers where each expression of a rule is, for CEL errors.
type exprLine struct {
	line  int
	block bool // a | or > block scalar: the text starts on the next line
}

func lineOf(v *yaml.Node) exprLine {
	return exprLine{line: v.Line, block: v.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0}
}

func (p *parser) rule(i int, n *yaml.Node) *Rule {
	label := fmt.Sprintf("rules[%d]", i)
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, label, "a rule must be a mapping")
		return nil
	}
	// Find the name first so every other error can name the rule.
	for j := 0; j+1 < len(n.Content); j += 2 {
		if n.Content[j].Value == "name" && n.Content[j+1].Kind == yaml.ScalarNode && n.Content[j+1].Value != "" {
			label = n.Content[j+1].Value
		}
	}
	r := &Rule{Line: n.Line, c: &compiledRule{lines: map[string]exprLine{}}}
	var nameNode, keyNode, exprNode, sevNode, onMissingNode, remNode *yaml.Node
	p.fields(n, label, func(key string, k, v *yaml.Node) bool {
		switch key {
		case "name":
			nameNode = v
			r.Name = p.scalar(v, label, key)
		case "each":
			r.Each = p.scalar(v, label, key)
			r.c.lines[key] = lineOf(v)
		case "key":
			keyNode = v
			r.Key = p.scalar(v, label, key)
			r.c.lines[key] = lineOf(v)
		case "expr":
			exprNode = v
			r.Expr = p.scalar(v, label, key)
			r.c.lines[key] = lineOf(v)
		case "for":
			r.For = p.duration(v, label, key)
		case "keep_firing_for":
			r.KeepFiringFor = p.duration(v, label, key)
		case "severity":
			sevNode = v
			r.Severity = p.scalar(v, label, key)
		case "summary":
			r.Summary = p.scalar(v, label, key)
			r.c.lines[key] = lineOf(v)
		case "description":
			r.Description = p.scalar(v, label, key)
			r.c.lines[key] = lineOf(v)
		case "labels":
			var lines map[string]int
			r.Labels, lines = p.stringMap(v, label, key)
			for name, l := range lines {
				r.c.lines["labels."+name] = exprLine{line: l}
			}
		case "on_missing":
			onMissingNode = v
			r.OnMissing = OnMissing(p.scalar(v, label, key))
		case "remediate":
			remNode = v
		default:
			return false
		}
		return true
	})

	switch {
	case nameNode == nil || r.Name == "":
		p.errorf(n.Line, label, "name is required")
	case !ruleNameRE.MatchString(r.Name):
		p.errorf(nameNode.Line, label, "name must match %s", ruleNameRE)
	case r.Name == RuleObserverStale || r.Name == RuleError:
		p.errorf(nameNode.Line, label, "name %q is reserved for a built-in rule", r.Name)
	}
	if exprNode == nil || strings.TrimSpace(r.Expr) == "" {
		p.errorf(n.Line, label, "expr is required")
	}
	if r.Each != "" && (keyNode == nil || strings.TrimSpace(r.Key) == "") {
		p.errorf(n.Line, label, "key is required when each is set (it names the item in the fingerprint)")
	}
	switch r.Severity {
	case "":
		r.Severity = schemas.SeverityWarning
	case schemas.SeverityCritical, schemas.SeverityWarning, schemas.SeverityInfo:
	default:
		p.errorf(sevNode.Line, label, "severity %q must be one of critical, warning, info", r.Severity)
	}
	switch r.OnMissing {
	case "":
		r.OnMissing = OnMissingKeep
	case OnMissingKeep, OnMissingResolve:
	default:
		p.errorf(onMissingNode.Line, label, "on_missing %q must be keep or resolve", r.OnMissing)
	}
	if remNode != nil {
		r.Remediate = p.remediation(remNode, label, r.c)
	}
	return r
}

func (p *parser) remediation(v *yaml.Node, label string, c *compiledRule) *Remediation {
	if v.Kind != yaml.MappingNode {
		p.errorf(v.Line, label, "remediate must be a mapping with action and params")
		return nil
	}
	rem := &Remediation{}
	var actionNode *yaml.Node
	p.fields(v, label, func(key string, k, val *yaml.Node) bool {
		switch key {
		case "action":
			actionNode = val
			rem.Action = p.scalar(val, label, "remediate.action")
		case "params":
			var lines map[string]int
			rem.Params, lines = p.stringMap(val, label, "remediate.params")
			for name, l := range lines {
				c.lines["params."+name] = exprLine{line: l}
			}
		default:
			return false
		}
		return true
	})
	switch {
	case actionNode == nil || rem.Action == "":
		p.errorf(v.Line, label, "remediate.action is required")
	case !actionNameRE.MatchString(rem.Action):
		p.errorf(actionNode.Line, label, "remediate.action %q must match %s", rem.Action, actionNameRE)
	}
	return rem
}

// stateSchema loads the subject's state schema named in the file, or the
// embedded default for the subject. It returns nil when there is none (state
// paths are then not checked).
func (p *parser) stateSchema(rs *RuleSet, n *yaml.Node) *expr.Schema {
	name := rs.StateSchema
	line := 0
	if n != nil {
		line = n.Line
	}
	if name == "" {
		if name = expr.EmbeddedStateSchema(rs.Subject); name == "" {
			return nil
		}
	}
	s, err := expr.LoadSchema(name, func(path string) ([]byte, error) {
		// A path relative to the rule file.
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(p.file), path)
		}
		return os.ReadFile(path)
	})
	if err != nil {
		p.errorf(line, "", "state_schema %q: %v", name, err)
		return nil
	}
	return s
}
