package rulefmt

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/operator-dev/operator/schemas"
)

// Names reserved for the built-in rules every subject has.
const (
	// ObserverStale fires when a subject instance's observations stop.
	ObserverStale = "observer_stale"
	// RuleError fires when a rule cannot be evaluated.
	RuleError = "rule_error"
)

// Values of on_missing: what happens to a rule's firing alerts while the
// subject instance's observations have stopped.
const (
	// OnMissingKeep leaves them firing (the default).
	OnMissingKeep = "keep"
	// OnMissingResolve resolves them when the instance goes stale.
	OnMissingResolve = "resolve"
)

// A RuleFile is one rule file as written: the invariants of one subject.
// The format:
//
//	subject: ratelimiter
//	state_schema: ratelimiter.state.v1.json  # optional: embedded name or path
//	stale_after: 30s                         # optional
//	rules:
//	  - name: node_down
//	    each: obs.state.nodes                # optional: one instance per item
//	    key: item.id                         # required with each
//	    expr: item.state == "down"
//	    for: 0s
//	    keep_firing_for: 5s
//	    severity: critical                   # critical | warning (default) | info
//	    summary: 'node {{ item.id }} is down'
//	    description: '...'
//	    labels: {team: limiter}
//	    on_missing: keep                     # keep (default) | resolve
//	    remediate:
//	      action: drain_node
//	      params: {node_id: item.id}
type RuleFile struct {
	// File is the name the file was parsed under.
	File    string
	Subject string
	// StateSchema is state_schema as written: an embedded schema name or
	// a path relative to the file; empty when left out.
	StateSchema string
	// StateSchemaLine is the line of state_schema, 0 when left out.
	StateSchemaLine int
	// StaleAfter is 0 when left out.
	StaleAfter time.Duration
	// Rules in file order.
	Rules []*Rule
}

// A Rule is one invariant as written. Severity and OnMissing hold their
// defaults when left out.
type Rule struct {
	Name string
	// Line is the line the rule starts on.
	Line          int
	Each          Expr
	Key           Expr
	Expr          Expr
	For           time.Duration
	KeepFiringFor time.Duration
	Severity      string
	// Summary, Description and the values of Labels are templates: text
	// with {{ CEL }} parts.
	Summary     Expr
	Description Expr
	Labels      map[string]Expr
	OnMissing   string
	Remediate   *Remediation
}

// A Remediation is the action a rule requests when it fires.
type Remediation struct {
	Action string
	// Params maps each parameter name to a CEL expression.
	Params map[string]Expr
}

// An Expr is a CEL expression or a template as written, with its place in
// the file, so that problems found in it can name their line.
type Expr struct {
	Text string
	// Line is the line of the value; 0 when the field is left out.
	Line int
	// Block is set for a | or > block scalar, whose text starts on the
	// line after Line.
	Block bool
}

// An Error is one problem in a rule file.
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

var (
	nameRE     = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)
)

// ParseFile reads and parses the rule file at path; see Parse.
func ParseFile(path string) (*RuleFile, []error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, []error{&Error{File: path, Err: fmt.Errorf("read rule file: %w", err)}}
	}
	return Parse(path, data)
}

// Parse parses a rule file and checks its structure; file names it in
// errors. It returns every problem, each an *Error, in line order, with
// whatever it could read: the rules that are mappings, with the fields that
// parsed, so that a caller can check their expressions too and report all
// problems at once. The file is usable only when there are none.
func Parse(file string, data []byte) (*RuleFile, []error) {
	p := &parser{file: file}
	rf := p.parse(data)
	// In file order; problems on one line keep the order found.
	sort.SliceStable(p.errs, func(i, j int) bool {
		return p.errs[i].(*Error).Line < p.errs[j].(*Error).Line
	})
	return rf, p.errs
}

type parser struct {
	file string
	errs []error
}

func (p *parser) errorf(line int, rule, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Rule: rule, Err: fmt.Errorf(format, args...)})
}

func (p *parser) parse(data []byte) *RuleFile {
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
	rf := &RuleFile{File: p.file}
	var rulesNode, subjectNode *yaml.Node
	p.fields(root, "", func(key string, k, v *yaml.Node) bool {
		switch key {
		case "subject":
			subjectNode = v
			rf.Subject = p.scalar(v, "", key)
		case "state_schema":
			rf.StateSchemaLine = v.Line
			rf.StateSchema = p.scalar(v, "", key)
		case "stale_after":
			rf.StaleAfter = p.duration(v, "", key)
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
	case rf.Subject == "":
	default:
		if err := schemas.ValidToken(rf.Subject); err != nil {
			p.errorf(subjectNode.Line, "", "subject: %w", err)
		}
	}
	if rulesNode == nil {
		p.errorf(root.Line, "", "rules is required")
	} else if rulesNode.Kind != yaml.SequenceNode {
		p.errorf(rulesNode.Line, "", "rules must be a list")
		rulesNode = nil
	}
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
			rf.Rules = append(rf.Rules, r)
		}
	}
	return rf
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

// expr reads a scalar holding an expression or a template.
func (p *parser) expr(v *yaml.Node, rule, field string) Expr {
	return Expr{
		Text:  p.scalar(v, rule, field),
		Line:  v.Line,
		Block: v.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0,
	}
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

// exprMap reads a mapping of names to expressions or templates.
func (p *parser) exprMap(v *yaml.Node, rule, field string) map[string]Expr {
	if v.Kind != yaml.MappingNode {
		if v.Tag != "!!null" {
			p.errorf(v.Line, rule, "%s must be a mapping", field)
		}
		return nil
	}
	out := map[string]Expr{}
	p.fields(v, rule, func(key string, k, val *yaml.Node) bool {
		out[key] = p.expr(val, rule, field+"."+key)
		return true
	})
	return out
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
	r := &Rule{Line: n.Line}
	var nameNode, keyNode, exprNode, sevNode, onMissingNode, remNode *yaml.Node
	p.fields(n, label, func(key string, k, v *yaml.Node) bool {
		switch key {
		case "name":
			nameNode = v
			r.Name = p.scalar(v, label, key)
		case "each":
			r.Each = p.expr(v, label, key)
		case "key":
			keyNode = v
			r.Key = p.expr(v, label, key)
		case "expr":
			exprNode = v
			r.Expr = p.expr(v, label, key)
		case "for":
			r.For = p.duration(v, label, key)
		case "keep_firing_for":
			r.KeepFiringFor = p.duration(v, label, key)
		case "severity":
			sevNode = v
			r.Severity = p.scalar(v, label, key)
		case "summary":
			r.Summary = p.expr(v, label, key)
		case "description":
			r.Description = p.expr(v, label, key)
		case "labels":
			r.Labels = p.exprMap(v, label, key)
		case "on_missing":
			onMissingNode = v
			r.OnMissing = p.scalar(v, label, key)
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
	case !nameRE.MatchString(r.Name):
		p.errorf(nameNode.Line, label, "name must match %s", nameRE)
	case r.Name == ObserverStale || r.Name == RuleError:
		p.errorf(nameNode.Line, label, "name %q is reserved for a built-in rule", r.Name)
	}
	if exprNode == nil || strings.TrimSpace(r.Expr.Text) == "" {
		p.errorf(n.Line, label, "expr is required")
	}
	if r.Each.Text != "" && (keyNode == nil || strings.TrimSpace(r.Key.Text) == "") {
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
		r.Remediate = p.remediation(remNode, label)
	}
	return r
}

func (p *parser) remediation(v *yaml.Node, label string) *Remediation {
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
			rem.Params = p.exprMap(val, label, "remediate.params")
		default:
			return false
		}
		return true
	})
	switch {
	case actionNode == nil || rem.Action == "":
		p.errorf(v.Line, label, "remediate.action is required")
	case !nameRE.MatchString(rem.Action):
		p.errorf(actionNode.Line, label, "remediate.action %q must match %s", rem.Action, nameRE)
	}
	return rem
}
