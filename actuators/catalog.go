package actuators

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/operator-dev/operator/internal/expr"
	"github.com/operator-dev/operator/schemas"
)

// Risk says how much harm an action can do when it is wrong.
type Risk string

// Risks, lowest first.
const (
	RiskLow    Risk = "low"
	RiskMedium Risk = "medium"
	RiskHigh   Risk = "high"
)

// TargetMatch says what values the target parameter of an action accepts.
type TargetMatch string

const (
	// TargetExact accepts one concrete resource: no wildcard character
	// ('*', '?', '>', '[') anywhere. The default.
	TargetExact TargetMatch = "exact"
	// TargetPrefix accepts a concrete resource or a "prefix*" pattern with
	// a non-empty prefix; a bare "*" and wildcards elsewhere are refused.
	TargetPrefix TargetMatch = "prefix"
)

// A Catalog is one subject's action catalog: every action the actuator may
// run against that subject. It is immutable once parsed and safe for
// concurrent use.
type Catalog struct {
	// File is the name the catalog was parsed from, for messages.
	File string
	// Subject is the subject the actions act on.
	Subject string
	// StateSchema is the state schema as written in the catalog: an
	// embedded schema name (schemas.FS) or a path relative to the catalog.
	// Empty: the subject's embedded <subject>.state.v1.json when it ships
	// one.
	StateSchema string
	// Actions in file order.
	Actions []*Action

	byName map[string]*Action
	// checkedAgainst names the state schema verify expressions were
	// checked against; empty when the subject has none.
	checkedAgainst string
}

// CheckedAgainst returns the name of the state schema that the field paths
// under obs.state in verify expressions were checked against at load, or ""
// when the subject has no state schema: those paths are then not checked
// until a verification runs, as in rule files. Callers say so when they
// load a catalog.
func (c *Catalog) CheckedAgainst() string { return c.checkedAgainst }

// Action returns the action called name.
func (c *Catalog) Action(name string) (*Action, bool) {
	a, ok := c.byName[name]
	return a, ok
}

// An Action is one catalogued action.
type Action struct {
	Name        string
	Description string
	// Line is the action's line in its file.
	Line int
	// Params is the JSON Schema (2020-12) of the action's params, as JSON.
	// It must describe an object and refuse unknown properties.
	Params json.RawMessage
	Risk   Risk
	// RequiresApproval holds a request until a person approves it with
	// `operator approve`. High-risk actions must require approval.
	RequiresApproval bool
	// Cooldown is the least time between two runs of this action on the
	// same target of the same subject instance.
	Cooldown time.Duration
	// Target names the param that identifies the resource acted on. The
	// precondition gate refuses an empty or wildcard value, and the
	// cooldown is per target. Empty: the whole subject instance is the
	// target.
	Target      string
	TargetMatch TargetMatch
	// Timeout bounds one execution attempt; 0 means Config.ExecuteTimeout.
	Timeout time.Duration
	// Verify is a CEL expression over `obs` (the data of one observation of
	// the subject instance: subject, instance, observed_at, observer,
	// state) and `params`; the action is verified when it yields true on an
	// observation made after the action, within VerifyWithin. The fields it
	// reads are checked at load against the observation envelope, the
	// subject's state schema and the params schema.
	Verify       string
	VerifyWithin time.Duration

	schema *jsonschema.Schema
	verify *verifyProgram
}

// ValidateParams checks params against the action's JSON Schema.
func (a *Action) ValidateParams(params map[string]any) error {
	if params == nil {
		params = map[string]any{}
	}
	b, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("params of %s: %w", a.Name, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("params of %s: %w", a.Name, err)
	}
	if err := a.schema.Validate(doc); err != nil {
		return fmt.Errorf("params of %s: %s", a.Name, schemas.DescribeValidationError(err))
	}
	return nil
}

// Verified evaluates the action's verify expression on the data (JSON) of
// one observation with the request's params. An error means the observation
// could not be judged (a missing field, a runtime error), never "false".
func (a *Action) Verified(observation []byte, params map[string]any) (bool, error) {
	return a.verify.eval(observation, params)
}

// TargetOf returns the value of the action's target param, or "" when the
// action has no target. It refuses an empty value and wildcards the
// action's TargetMatch does not allow, so an action can never act on
// "everything" by accident.
func (a *Action) TargetOf(params map[string]any) (string, error) {
	if a.Target == "" {
		return "", nil
	}
	v, ok := params[a.Target]
	if !ok {
		return "", fmt.Errorf("target param %q is missing", a.Target)
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("target param %q is %T, not a string", a.Target, v)
	}
	if err := checkTarget(s, a.TargetMatch); err != nil {
		return "", fmt.Errorf("target param %q: %w", a.Target, err)
	}
	return s, nil
}

// wildcardChars are the characters that make a target match more than one
// resource in the subjects Operator knows (glob, NATS, Redis patterns).
const wildcardChars = "*?>["

func checkTarget(s string, m TargetMatch) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("empty target")
	}
	if s != strings.TrimSpace(s) {
		return fmt.Errorf("target %q has surrounding whitespace", s)
	}
	switch m {
	case TargetPrefix:
		body := strings.TrimSuffix(s, "*")
		if body == "" {
			return fmt.Errorf("wildcard target %q matches every resource", s)
		}
		if strings.ContainsAny(body, wildcardChars) {
			return fmt.Errorf("target %q: only a trailing '*' is allowed", s)
		}
	default:
		if strings.ContainsAny(s, wildcardChars) {
			return fmt.Errorf("wildcard target %q where a concrete resource is required", s)
		}
	}
	return nil
}

// CatalogError is one problem in an action catalog. ParseCatalog returns
// every problem it finds, joined with errors.Join.
type CatalogError struct {
	File string
	// Line is 1-based; 0 when unknown.
	Line int
	// Action is the action's name (or actions[i]); empty for file-level
	// problems.
	Action string
	Err    error
}

// Error renders file:line: action "name": reason.
func (e *CatalogError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Action != "" {
		fmt.Fprintf(&b, "action %q: ", e.Action)
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the reason.
func (e *CatalogError) Unwrap() error { return e.Err }

var (
	actionNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	yamlLineRE   = regexp.MustCompile(`^yaml: line (\d+): `)
)

// LoadCatalog reads and parses the catalog called name in fsys (an embedded
// actions.yaml, typically). A state_schema path is read from fsys too,
// relative to the catalog.
func LoadCatalog(fsys fs.FS, name string) (*Catalog, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, &CatalogError{File: name, Err: fmt.Errorf("read catalog: %w", err)}
	}
	return parseCatalog(name, b, func(p string) ([]byte, error) {
		return fs.ReadFile(fsys, path.Join(path.Dir(name), p))
	})
}

// ParseCatalog parses and checks an action catalog. It returns every
// problem, joined, each a *CatalogError with file and line; the catalog is
// usable only when the error is nil. A state_schema path is read relative
// to file. The format:
//
//	subject: ratelimiter
//	state_schema: ratelimiter.state.v1.json  # optional: the subject's embedded one
//	actions:
//	  - name: reset_counter
//	    description: Delete a key's counter so it starts afresh.
//	    risk: low                  # low | medium | high (high needs approval)
//	    requires_approval: false
//	    cooldown: 5m               # per target; 0s for none
//	    target: key                # the param naming the resource acted on
//	    target_match: exact        # exact (default) | prefix ("user:*")
//	    timeout: 10s               # per attempt; optional
//	    params:                    # JSON Schema of params (2020-12)
//	      type: object
//	      additionalProperties: false
//	      required: [key]
//	      properties: {key: {type: string, minLength: 1}}
//	    verify: obs.state.keys.all(k, k.key != params.key || k.ttl_ms != -1)
//	    verify_within: 30s
func ParseCatalog(file string, data []byte) (*Catalog, error) {
	return parseCatalog(file, data, func(p string) ([]byte, error) {
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(file), p)
		}
		return os.ReadFile(p)
	})
}

// parseCatalog parses a catalog whose state_schema path, if any, read
// returns.
func parseCatalog(file string, data []byte, read func(string) ([]byte, error)) (*Catalog, error) {
	p := &catalogParser{file: file, read: read}
	c := p.parse(data)
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return c, nil
}

type catalogParser struct {
	file string
	read func(string) ([]byte, error)
	errs []error
	// obs is the shape of an observation of the catalog's subject.
	obs expr.Shape
}

func (p *catalogParser) errorf(line int, action, format string, args ...any) {
	p.errs = append(p.errs, &CatalogError{File: p.file, Line: line, Action: action, Err: fmt.Errorf(format, args...)})
}

// field is one key of a YAML mapping with its value node.
type field struct {
	key   *yaml.Node
	value *yaml.Node
}

// fields returns the keys of a mapping node, reporting duplicates and keys
// not in known.
func (p *catalogParser) fields(n *yaml.Node, action string, known ...string) map[string]field {
	out := map[string]field{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if _, dup := out[k.Value]; dup {
			p.errorf(k.Line, action, "duplicate key %q", k.Value)
			continue
		}
		if !contains(known, k.Value) {
			p.errorf(k.Line, action, "unknown key %q (known: %s)", k.Value, strings.Join(known, ", "))
			continue
		}
		out[k.Value] = field{key: k, value: v}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (p *catalogParser) parse(data []byte) *Catalog {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line := 0
		msg := err.Error()
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = strings.TrimPrefix(msg, m[0])
		}
		p.errorf(line, "", "invalid YAML: %s", msg)
		return nil
	}
	if len(doc.Content) == 0 {
		p.errorf(0, "", "empty catalog")
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		p.errorf(root.Line, "", "the catalog must be a mapping with subject and actions")
		return nil
	}
	top := p.fields(root, "", "subject", "state_schema", "actions")
	c := &Catalog{File: p.file, byName: map[string]*Action{}}
	if f, ok := top["subject"]; !ok {
		p.errorf(root.Line, "", "subject is required")
	} else if err := schemas.ValidToken(f.value.Value); err != nil || f.value.Kind != yaml.ScalarNode {
		p.errorf(f.value.Line, "", "subject %q is not a valid subject name", f.value.Value)
	} else {
		c.Subject = f.value.Value
	}
	state := p.stateSchema(c, top)
	if state != nil {
		c.checkedAgainst = state.Name()
	}
	obs, err := expr.ObservationShape(state)
	if err != nil {
		p.errorf(0, "", "%v", err)
	}
	p.obs = obs
	f, ok := top["actions"]
	if !ok {
		p.errorf(root.Line, "", "actions is required")
		return c
	}
	if f.value.Kind != yaml.SequenceNode || len(f.value.Content) == 0 {
		p.errorf(f.value.Line, "", "actions must be a non-empty list")
		return c
	}
	for i, n := range f.value.Content {
		a := p.action(i, n)
		if a == nil {
			continue
		}
		if prev, dup := c.byName[a.Name]; dup {
			p.errorf(a.Line, a.Name, "duplicate action name (first at line %d)", prev.Line)
			continue
		}
		c.byName[a.Name] = a
		c.Actions = append(c.Actions, a)
	}
	return c
}

var actionKeys = []string{"name", "description", "risk", "requires_approval", "cooldown", "target",
	"target_match", "timeout", "params", "verify", "verify_within"}

func (p *catalogParser) action(i int, n *yaml.Node) *Action {
	label := fmt.Sprintf("actions[%d]", i)
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, label, "an action must be a mapping")
		return nil
	}
	// Find the name first so every later message names the action.
	for j := 0; j+1 < len(n.Content); j += 2 {
		if n.Content[j].Value == "name" && n.Content[j+1].Kind == yaml.ScalarNode && n.Content[j+1].Value != "" {
			label = n.Content[j+1].Value
		}
	}
	nerr := len(p.errs)
	fs := p.fields(n, label, actionKeys...)
	a := &Action{Line: n.Line, TargetMatch: TargetExact}

	str := func(key string, required bool) (string, int) {
		f, ok := fs[key]
		if !ok {
			if required {
				p.errorf(n.Line, label, "%s is required", key)
			}
			return "", n.Line
		}
		if f.value.Kind != yaml.ScalarNode {
			p.errorf(f.value.Line, label, "%s must be a string", key)
			return "", f.value.Line
		}
		return f.value.Value, f.value.Line
	}
	dur := func(key string, required bool) (time.Duration, int, bool) {
		s, line := str(key, required)
		if _, ok := fs[key]; !ok {
			return 0, line, false
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			p.errorf(line, label, "%s: %q is not a duration (e.g. 30s, 5m)", key, s)
			return 0, line, false
		}
		if d < 0 {
			p.errorf(line, label, "%s must not be negative", key)
			return 0, line, false
		}
		return d, line, true
	}

	name, line := str("name", true)
	if name != "" && !actionNameRE.MatchString(name) {
		p.errorf(line, label, "name must match %s", actionNameRE)
	}
	a.Name = name
	if a.Description, line = str("description", true); strings.TrimSpace(a.Description) == "" && fs["description"].value != nil {
		p.errorf(line, label, "description must not be empty")
	}
	risk, line := str("risk", true)
	switch Risk(risk) {
	case RiskLow, RiskMedium, RiskHigh:
		a.Risk = Risk(risk)
	case "":
	default:
		p.errorf(line, label, "risk %q must be low, medium or high", risk)
	}
	if f, ok := fs["requires_approval"]; ok {
		if err := f.value.Decode(&a.RequiresApproval); err != nil || f.value.Tag != "!!bool" {
			p.errorf(f.value.Line, label, "requires_approval must be true or false")
		}
	}
	if a.Risk == RiskHigh && !a.RequiresApproval {
		p.errorf(n.Line, label, "a high-risk action must set requires_approval: true")
	}
	a.Cooldown, _, _ = dur("cooldown", true)
	if d, line, ok := dur("timeout", false); ok {
		if d == 0 {
			p.errorf(line, label, "timeout must be positive")
		}
		a.Timeout = d
	}

	var params *expr.Schema
	a.schema, a.Params, params = p.paramsSchema(fs, n, label)

	a.Target, line = str("target", false)
	if m, mline := str("target_match", false); m != "" {
		switch TargetMatch(m) {
		case TargetExact, TargetPrefix:
			a.TargetMatch = TargetMatch(m)
		default:
			p.errorf(mline, label, "target_match %q must be exact or prefix", m)
		}
		if a.Target == "" {
			p.errorf(mline, label, "target_match needs a target")
		}
	}
	if a.Target != "" && a.Params != nil {
		if err := checkTargetParam(a.Params, a.Target); err != nil {
			p.errorf(line, label, "target: %v", err)
		}
	}

	a.Verify, line = str("verify", true)
	if _, ok := fs["verify"]; ok {
		if strings.TrimSpace(a.Verify) == "" {
			p.errorf(line, label, "verify must not be empty: every action says how to tell that it worked")
		} else if env, err := verifyEnv(p.obs, params); err != nil {
			p.errorf(line, label, "verify: %v", err)
		} else if prg, errs := compileVerify(env, a.Verify); len(errs) > 0 {
			for _, err := range errs {
				p.errorf(line, label, "verify: %v", err)
			}
		} else {
			a.verify = prg
		}
	}
	if d, line, ok := dur("verify_within", true); ok {
		if d == 0 {
			p.errorf(line, label, "verify_within must be positive")
		}
		a.VerifyWithin = d
	}
	if len(p.errs) > nerr {
		return nil
	}
	return a
}

// paramsSchema converts the params mapping to JSON and compiles it: for
// validating params, and for checking the params fields verify reads.
func (p *catalogParser) paramsSchema(fs map[string]field, n *yaml.Node, label string) (*jsonschema.Schema, json.RawMessage, *expr.Schema) {
	f, ok := fs["params"]
	if !ok {
		p.errorf(n.Line, label, "params is required (a JSON Schema of an object; use {type: object, additionalProperties: false} for none)")
		return nil, nil, nil
	}
	line := f.value.Line
	if f.value.Kind != yaml.MappingNode {
		p.errorf(line, label, "params must be a JSON Schema object")
		return nil, nil, nil
	}
	var v any
	if err := f.value.Decode(&v); err != nil {
		p.errorf(line, label, "params: %v", err)
		return nil, nil, nil
	}
	raw, err := json.Marshal(jsonCompatible(v))
	if err != nil {
		p.errorf(line, label, "params: %v", err)
		return nil, nil, nil
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		p.errorf(line, label, "params: %v", err)
		return nil, nil, nil
	}
	obj := doc.(map[string]any)
	if obj["type"] != "object" {
		p.errorf(line, label, "params: the schema must have type: object")
	}
	if ap, ok := obj["additionalProperties"].(bool); !ok || ap {
		p.errorf(line, label, "params: the schema must set additionalProperties: false so unknown params are refused")
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	url := "https://operator.dev/catalog/" + label + ".params.json"
	if err := c.AddResource(url, doc); err != nil {
		p.errorf(line, label, "params: %v", err)
		return nil, nil, nil
	}
	s, err := c.Compile(url)
	if err != nil {
		p.errorf(line, label, "params: not a valid JSON Schema: %s", schemas.DescribeValidationError(err))
		return nil, nil, nil
	}
	shape, err := expr.CompileSchema(label+".params.json", raw)
	if err != nil {
		p.errorf(line, label, "params: %v", err)
		return nil, nil, nil
	}
	return s, raw, shape
}

// stateSchema loads the state schema the catalog names in state_schema, or
// the subject's embedded one. It returns nil when there is none.
func (p *catalogParser) stateSchema(c *Catalog, top map[string]field) *expr.Schema {
	line := 0
	if f, ok := top["state_schema"]; ok {
		line = f.value.Line
		if f.value.Kind != yaml.ScalarNode || f.value.Value == "" {
			p.errorf(line, "", "state_schema must be a schema name or a path")
			return nil
		}
		c.StateSchema = f.value.Value
	}
	name := c.StateSchema
	if name == "" {
		if name = expr.EmbeddedStateSchema(c.Subject); name == "" {
			return nil
		}
	}
	s, err := expr.LoadSchema(name, p.read)
	if err != nil {
		p.errorf(line, "", "state_schema %q: %v", name, err)
		return nil
	}
	return s
}

// checkTargetParam checks that the target names a required string property.
func checkTargetParam(schema json.RawMessage, target string) error {
	var s struct {
		Required   []string `json:"required"`
		Properties map[string]struct {
			Type any `json:"type"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(schema, &s); err != nil {
		return err
	}
	prop, ok := s.Properties[target]
	if !ok {
		names := make([]string, 0, len(s.Properties))
		for k := range s.Properties {
			names = append(names, k)
		}
		sort.Strings(names)
		return fmt.Errorf("%q is not a param (params: %s)", target, strings.Join(names, ", "))
	}
	if prop.Type != "string" {
		return fmt.Errorf("param %q must have type: string", target)
	}
	if !contains(s.Required, target) {
		return fmt.Errorf("param %q must be required", target)
	}
	return nil
}

// jsonCompatible turns YAML-decoded maps with any keys into JSON objects.
func jsonCompatible(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonCompatible(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonCompatible(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = jsonCompatible(e)
		}
		return x
	}
	return v
}
