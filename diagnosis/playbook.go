package diagnosis

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/schemas"
)

// Source kinds a playbook's evidence may use. Each reads and never writes.
const (
	// SourceObservations: the latest observations of the instance, each
	// projected by a CEL expression over `obs`.
	SourceObservations = "observations"
	// SourceAlerts: the other alerts firing or pending on the instance.
	SourceAlerts = "alerts"
	// SourceActions: the instance's recent action requests and outcomes.
	SourceActions = "actions"
	// SourceHTTP: a GET on the subject's API.
	SourceHTTP = "http"
	// SourcePrometheus: a Prometheus instant query.
	SourcePrometheus = "prometheus"
)

// Defaults of a playbook's sources.
const (
	DefaultObservations  = 5
	DefaultWithin        = 2 * time.Minute
	DefaultActionsFor    = 30 * time.Minute
	DefaultSourceTimeout = time.Second
)

// A Playbook is one subject's diagnosis knowledge: the evidence to gather
// for its violations and the hypotheses that evidence can support. It is
// immutable once parsed and safe for concurrent use.
type Playbook struct {
	// File is the name it was parsed from, for messages.
	File    string
	Subject string
	// Evidence sources, in file order; the ids are unique.
	Evidence []*Source
	// Hypotheses in file order (ties in ranking keep it).
	Hypotheses []*HypothesisRule
}

// A Source is one evidence source of a playbook.
type Source struct {
	ID   string
	Kind string
	Line int
	// Rules restricts the source to violations of these rules (empty: all).
	Rules []string
	// Timeout bounds the read.
	Timeout time.Duration

	// observations
	Last   int
	Within time.Duration
	// Project is CEL over `obs` (the observation's data) and `violation`:
	// what each observation contributes. Empty: its state.
	Project string
	// http: Path is a template ({{ CEL }}) of the path on the subject's
	// API. prometheus: Query is a template of the PromQL.
	Path  string
	Query string

	project *program
	path    *template
	query   *template
}

// appliesTo reports whether the source is gathered for a violation of rule.
func (s *Source) appliesTo(rule string) bool {
	return len(s.Rules) == 0 || slices.Contains(s.Rules, rule)
}

// A HypothesisRule is one known cause.
type HypothesisRule struct {
	ID   string
	Line int
	// Cause is a template ({{ CEL }}) of the root cause in one sentence.
	Cause string
	// When is CEL: false means the hypothesis is not considered for this
	// violation. Empty: always considered.
	When string
	// Signals are checks of the evidence, each a CEL bool over `violation`
	// and `ev`: true supports the hypothesis, false contradicts it, and an
	// error (evidence missing or failed) does neither.
	Signals []*Signal
	// Certainty is CEL over `supports`, `contradicts` and `signals`
	// (counts) yielding "certain", "likely", "possible" or "" (not a fit).
	// Empty: the default rule (see defaultCertainty).
	Certainty string
	// Suggest is the catalogued action the hypothesis suggests, with its
	// params as CEL.
	Suggest *Suggestion

	cause     *template
	when      *program
	certainty *program
}

// A Signal is one check of the evidence.
type Signal struct {
	// Evidence names the items the signal reads: they are cited as
	// supporting or contradicting.
	Evidence []string
	Expr     string
	Line     int
	prg      *program
}

// Suggestion is a suggested action.
type Suggestion struct {
	Action string
	Params map[string]string
	Line   int
	params map[string]*program
}

// Error is one problem in a playbook, at a line.
type Error struct {
	File       string
	Line       int
	Hypothesis string
	Err        error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	if e.Hypothesis != "" {
		b.WriteString(": " + e.Hypothesis)
	}
	b.WriteString(": " + e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// ParsePlaybook parses and checks a playbook: every source kind and field
// is known, every CEL expression and template compiles, every id is
// unique, every signal names declared evidence, and every suggested action
// is in catalog (when given) with params it declares. It returns every
// problem found, each with file and line.
func ParsePlaybook(file string, data []byte, catalog *actuators.Catalog) (*Playbook, error) {
	p := &playbookParser{file: file, catalog: catalog}
	pb := p.parse(data)
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].(*Error).Line < p.errs[j].(*Error).Line })
		return nil, errors.Join(p.errs...)
	}
	return pb, nil
}

type playbookParser struct {
	file    string
	catalog *actuators.Catalog
	env     *envs
	errs    []error
}

func (p *playbookParser) errorf(line int, hyp, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Hypothesis: hyp, Err: fmt.Errorf(format, args...)})
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

func (p *playbookParser) parse(data []byte) *Playbook {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg, line := err.Error(), 0
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = "yaml: " + msg[len(m[0]):]
		}
		p.errorf(line, "", "%s", msg)
		return nil
	}
	if len(doc.Content) == 0 {
		p.errorf(0, "", "empty playbook")
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		p.errorf(root.Line, "", "a playbook is a mapping with subject, evidence and hypotheses")
		return nil
	}
	envs, err := newEnvs()
	if err != nil {
		p.errorf(0, "", "%v", err)
		return nil
	}
	p.env = envs
	pb := &Playbook{File: p.file}
	f := p.fields(root, "", "subject", "evidence", "hypotheses")
	if n, ok := f["subject"]; !ok {
		p.errorf(root.Line, "", "subject is required")
	} else {
		pb.Subject = p.str(n, "", "subject")
		if err := schemas.ValidToken(pb.Subject); err != nil {
			p.errorf(n.Line, "", "subject: %v", err)
		} else if p.catalog != nil && p.catalog.Subject != pb.Subject {
			p.errorf(n.Line, "", "subject %q, but the catalog is for %q", pb.Subject, p.catalog.Subject)
		}
	}
	ids := map[string]int{}
	if n, ok := f["evidence"]; ok {
		for _, item := range p.list(n, "", "evidence") {
			if s := p.source(item); s != nil {
				if prev, dup := ids[s.ID]; dup {
					p.errorf(item.Line, "", "evidence id %q is also used at line %d", s.ID, prev)
				}
				ids[s.ID] = item.Line
				pb.Evidence = append(pb.Evidence, s)
			}
		}
	}
	hyps := map[string]int{}
	if n, ok := f["hypotheses"]; ok {
		for _, item := range p.list(n, "", "hypotheses") {
			if h := p.hypothesis(item, ids); h != nil {
				if prev, dup := hyps[h.ID]; dup {
					p.errorf(item.Line, h.ID, "hypothesis id is also used at line %d", prev)
				}
				hyps[h.ID] = item.Line
				pb.Hypotheses = append(pb.Hypotheses, h)
			}
		}
	}
	return pb
}

// fields returns a mapping's values by key, refusing keys not in known.
func (p *playbookParser) fields(n *yaml.Node, hyp string, known ...string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, hyp, "want a mapping")
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !slices.Contains(known, k.Value) {
			p.errorf(k.Line, hyp, "unknown field %q (known: %s)", k.Value, strings.Join(known, ", "))
			continue
		}
		if _, dup := out[k.Value]; dup {
			p.errorf(k.Line, hyp, "field %q given twice", k.Value)
		}
		out[k.Value] = v
	}
	return out
}

func (p *playbookParser) list(n *yaml.Node, hyp, what string) []*yaml.Node {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n.Line, hyp, "%s must be a list", what)
		return nil
	}
	return n.Content
}

func (p *playbookParser) str(n *yaml.Node, hyp, what string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(n.Line, hyp, "%s must be a string", what)
		return ""
	}
	return n.Value
}

func (p *playbookParser) strs(n *yaml.Node, hyp, what string) []string {
	if n.Kind == yaml.ScalarNode {
		return []string{p.str(n, hyp, what)}
	}
	var out []string
	for _, item := range p.list(n, hyp, what) {
		out = append(out, p.str(item, hyp, what))
	}
	return out
}

func (p *playbookParser) duration(n *yaml.Node, hyp, what string) time.Duration {
	d, err := time.ParseDuration(p.str(n, hyp, what))
	if err != nil || d <= 0 {
		p.errorf(n.Line, hyp, "%s: want a positive duration such as 30s, got %q", what, n.Value)
		return 0
	}
	return d
}

var sourceFields = map[string][]string{
	SourceObservations: {"last", "within", "project"},
	SourceAlerts:       {},
	SourceActions:      {"within"},
	SourceHTTP:         {"path", "project"},
	SourcePrometheus:   {"query", "project"},
}

func (p *playbookParser) source(n *yaml.Node) *Source {
	kinds := make([]string, 0, len(sourceFields))
	for k := range sourceFields {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	// The kind decides the known fields: read it first.
	kind := ""
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "source" {
				kind = n.Content[i+1].Value
			}
		}
	}
	known := append([]string{"id", "source", "rules", "timeout"}, sourceFields[kind]...)
	f := p.fields(n, "", known...)
	s := &Source{Kind: kind, Line: n.Line, Timeout: DefaultSourceTimeout}
	if v, ok := f["id"]; !ok {
		p.errorf(n.Line, "", "evidence needs an id")
	} else if s.ID = p.str(v, "", "id"); !idRE.MatchString(s.ID) {
		p.errorf(v.Line, "", "evidence id %q: want a CEL identifier (letters, digits, _)", s.ID)
	}
	switch v, ok := f["source"]; {
	case !ok:
		p.errorf(n.Line, "", "evidence %q needs a source (one of: %s)", s.ID, strings.Join(kinds, ", "))
		return nil
	case sourceFields[kind] == nil:
		p.errorf(v.Line, "", "evidence %q: unknown source %q (known: %s)", s.ID, kind, strings.Join(kinds, ", "))
		return nil
	}
	if v, ok := f["rules"]; ok {
		s.Rules = p.strs(v, "", "rules")
	}
	if v, ok := f["timeout"]; ok {
		s.Timeout = p.duration(v, "", "timeout")
	}
	switch kind {
	case SourceObservations:
		s.Last, s.Within = DefaultObservations, DefaultWithin
		if v, ok := f["last"]; ok {
			last, err := strconv.Atoi(v.Value)
			if err != nil || last < 1 || last > 100 {
				p.errorf(v.Line, "", "evidence %q: last must be a number from 1 to 100, got %q", s.ID, v.Value)
			}
			s.Last = last
		}
		if v, ok := f["within"]; ok {
			s.Within = p.duration(v, "", "within")
		}
	case SourceActions:
		s.Within = DefaultActionsFor
		if v, ok := f["within"]; ok {
			s.Within = p.duration(v, "", "within")
		}
	case SourceHTTP:
		v, ok := f["path"]
		if !ok {
			p.errorf(n.Line, "", "evidence %q: an http source needs a path", s.ID)
			break
		}
		s.Path = p.str(v, "", "path")
		if !strings.HasPrefix(s.Path, "/") {
			p.errorf(v.Line, "", "evidence %q: path %q must start with / (it is a path on the subject's API)", s.ID, s.Path)
		}
		s.path = p.template(v, "", s.Path, p.env.evidence)
	case SourcePrometheus:
		v, ok := f["query"]
		if !ok {
			p.errorf(n.Line, "", "evidence %q: a prometheus source needs a query", s.ID)
			break
		}
		s.Query = p.str(v, "", "query")
		s.query = p.template(v, "", s.Query, p.env.evidence)
	}
	if v, ok := f["project"]; ok {
		s.Project = p.str(v, "", "project")
		env := p.env.project
		if kind != SourceObservations {
			env = p.env.projectData
		}
		s.project = p.compile(v, "", s.Project, env)
	}
	return s
}

var idRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (p *playbookParser) hypothesis(n *yaml.Node, evidence map[string]int) *HypothesisRule {
	f := p.fields(n, "", "id", "cause", "when", "signals", "certainty", "suggest")
	h := &HypothesisRule{Line: n.Line}
	if v, ok := f["id"]; !ok {
		p.errorf(n.Line, "", "a hypothesis needs an id")
	} else if h.ID = p.str(v, "", "id"); !idRE.MatchString(h.ID) || h.ID == schemas.HypothesisUnknown {
		p.errorf(v.Line, "", "hypothesis id %q: want an identifier other than %q", h.ID, schemas.HypothesisUnknown)
	}
	if v, ok := f["cause"]; !ok {
		p.errorf(n.Line, h.ID, "cause is required: the root cause in one sentence")
	} else {
		h.Cause = p.str(v, h.ID, "cause")
		h.cause = p.template(v, h.ID, h.Cause, p.env.evidence)
	}
	if v, ok := f["when"]; ok {
		h.When = p.str(v, h.ID, "when")
		h.when = p.compile(v, h.ID, h.When, p.env.evidence)
	}
	if v, ok := f["signals"]; !ok {
		p.errorf(n.Line, h.ID, "signals are required: the evidence that supports or contradicts it")
	} else {
		for _, item := range p.list(v, h.ID, "signals") {
			sf := p.fields(item, h.ID, "evidence", "expr")
			sig := &Signal{Line: item.Line}
			if ev, ok := sf["evidence"]; !ok {
				p.errorf(item.Line, h.ID, "a signal names the evidence it reads")
			} else {
				sig.Evidence = p.strs(ev, h.ID, "evidence")
				for _, id := range sig.Evidence {
					if _, ok := evidence[id]; !ok {
						p.errorf(ev.Line, h.ID, "signal reads evidence %q, which the playbook does not gather", id)
					}
				}
			}
			if ex, ok := sf["expr"]; !ok {
				p.errorf(item.Line, h.ID, "a signal needs an expr")
			} else {
				sig.Expr = p.str(ex, h.ID, "expr")
				sig.prg = p.compile(ex, h.ID, sig.Expr, p.env.evidence)
			}
			h.Signals = append(h.Signals, sig)
		}
	}
	if v, ok := f["certainty"]; ok {
		h.Certainty = p.str(v, h.ID, "certainty")
		h.certainty = p.compile(v, h.ID, h.Certainty, p.env.certainty)
	}
	if v, ok := f["suggest"]; ok {
		h.Suggest = p.suggestion(v, h.ID)
	}
	return h
}

func (p *playbookParser) suggestion(n *yaml.Node, hyp string) *Suggestion {
	f := p.fields(n, hyp, "action", "params")
	s := &Suggestion{Line: n.Line, Params: map[string]string{}, params: map[string]*program{}}
	v, ok := f["action"]
	if !ok {
		p.errorf(n.Line, hyp, "suggest needs an action")
		return s
	}
	s.Action = p.str(v, hyp, "action")
	var declared map[string]bool
	if p.catalog != nil {
		a, ok := p.catalog.Action(s.Action)
		if !ok {
			p.errorf(v.Line, hyp, "suggests %q, which is not in the %s catalog (%s)", s.Action, p.catalog.Subject, p.catalog.File)
		} else {
			declared = paramNames(a)
		}
	}
	if pv, ok := f["params"]; ok {
		if pv.Kind != yaml.MappingNode {
			p.errorf(pv.Line, hyp, "params must be a mapping of name to CEL")
			return s
		}
		for i := 0; i+1 < len(pv.Content); i += 2 {
			k, e := pv.Content[i], pv.Content[i+1]
			if declared != nil && !declared[k.Value] {
				p.errorf(k.Line, hyp, "param %q is not a param of %s", k.Value, s.Action)
			}
			s.Params[k.Value] = p.str(e, hyp, "param "+k.Value)
			s.params[k.Value] = p.compile(e, hyp, s.Params[k.Value], p.env.evidence)
		}
	}
	return s
}

// Considers reports whether some hypothesis may explain a violation of
// rule: its `when` holds for such a violation, cannot be decided without
// evidence, or is absent.
func (pb *Playbook) Considers(rule string) bool {
	vars := map[string]any{"violation": map[string]any{"subject": pb.Subject, "rule": rule, "key": ""},
		"ev": map[string]any{}, "failed": map[string]string{}}
	for _, h := range pb.Hypotheses {
		if h.when == nil {
			return true
		}
		if ok, err := h.when.evalBool(vars); err != nil || ok {
			return true
		}
	}
	return false
}
