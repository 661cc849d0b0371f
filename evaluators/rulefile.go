package evaluators

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/operator-dev/operator/evaluators/rulefmt"
	"github.com/operator-dev/operator/internal/expr"
)

// Built-in rules every subject has. Their names are reserved.
const (
	// RuleObserverStale fires per subject instance when its observations
	// stop for stale_after, and resolves when they resume. Its key is "".
	RuleObserverStale = rulefmt.ObserverStale
	// RuleError fires when a rule cannot be evaluated (a runtime error) and
	// resolves when it evaluates cleanly again. Its key is the failing
	// rule's name.
	RuleError = rulefmt.RuleError
)

// OnMissing says what happens to a rule's firing alerts while the subject
// instance's observations have stopped.
type OnMissing string

const (
	// OnMissingKeep leaves them firing (the default).
	OnMissingKeep OnMissing = rulefmt.OnMissingKeep
	// OnMissingResolve resolves them when the instance goes stale.
	OnMissingResolve OnMissing = rulefmt.OnMissingResolve
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

// CheckedAgainst returns the name of the state schema that the field paths
// under obs.state were checked against at load, or "" when the subject has
// none: those paths are then not checked until the rules run. Callers say
// so when they load a rule set.
func (rs *RuleSet) CheckedAgainst() string {
	if rs.state == nil {
		return ""
	}
	return rs.state.Name()
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

// Error is one problem in a rule file, found parsing it (package rulefmt)
// or compiling its expressions: it renders as file:line: rule "name":
// reason. LoadRuleSets and ParseRuleSet return every problem they find,
// joined with errors.Join.
type Error = rulefmt.Error

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

// ParseRuleSet parses and checks one rule file: its structure (package
// rulefmt), then its expressions, compiled against the subject's state
// schema. file names it in errors and anchors a relative state_schema
// path. It returns every problem found, in line order, joined with
// errors.Join, each an *Error.
func ParseRuleSet(file string, data []byte, opts LoadOptions) (*RuleSet, error) {
	rf, errs := rulefmt.Parse(file, data)
	p := &parser{file: file, opts: opts.withDefaults(), errs: errs}
	rs := p.compileFile(rf)
	if len(p.errs) > 0 {
		// In file order; problems on one line keep the order found.
		sort.SliceStable(p.errs, func(i, j int) bool {
			return p.errs[i].(*Error).Line < p.errs[j].(*Error).Line
		})
		return nil, errors.Join(p.errs...)
	}
	return rs, nil
}

// parser turns a parsed rule file into a checked RuleSet, collecting
// problems.
type parser struct {
	file string
	opts LoadOptions
	errs []error
}

func (p *parser) errorf(line int, rule, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Rule: rule, Err: fmt.Errorf(format, args...)})
}

// compileFile loads the state schema and compiles every rule that has an
// expression, even when the file has other problems, so all of them are
// reported together.
func (p *parser) compileFile(rf *rulefmt.RuleFile) *RuleSet {
	if rf == nil {
		return nil
	}
	rs := &RuleSet{File: p.file, Subject: rf.Subject, StateSchema: rf.StateSchema, StaleAfter: rf.StaleAfter}
	rs.state = p.stateSchema(rs, rf.StateSchemaLine)
	for _, fr := range rf.Rules {
		rs.Rules = append(rs.Rules, newRule(fr))
	}
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

// newRule is the Rule of a parsed one, not yet compiled.
func newRule(fr *rulefmt.Rule) *Rule {
	r := &Rule{
		Name:          fr.Name,
		Line:          fr.Line,
		Each:          fr.Each.Text,
		Key:           fr.Key.Text,
		Expr:          fr.Expr.Text,
		For:           fr.For,
		KeepFiringFor: fr.KeepFiringFor,
		Severity:      fr.Severity,
		Summary:       fr.Summary.Text,
		Description:   fr.Description.Text,
		OnMissing:     OnMissing(fr.OnMissing),
		c:             &compiledRule{src: fr},
	}
	if fr.Labels != nil {
		r.Labels = make(map[string]string, len(fr.Labels))
		for k, v := range fr.Labels {
			r.Labels[k] = v.Text
		}
	}
	if fr.Remediate != nil {
		r.Remediate = &Remediation{Action: fr.Remediate.Action}
		if fr.Remediate.Params != nil {
			r.Remediate.Params = make(map[string]string, len(fr.Remediate.Params))
			for k, v := range fr.Remediate.Params {
				r.Remediate.Params[k] = v.Text
			}
		}
	}
	return r
}

// stateSchema loads the subject's state schema named in the file (at
// line), or the embedded default for the subject. It returns nil when there
// is none (state paths are then not checked).
func (p *parser) stateSchema(rs *RuleSet, line int) *expr.Schema {
	name := rs.StateSchema
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
		p.errorf(line, "", "state_schema %q: %w", name, err)
		return nil
	}
	return s
}
