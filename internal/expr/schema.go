package expr

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/operator-dev/operator/schemas"
)

// A Schema is a compiled JSON Schema (2020-12): the contract of a JSON
// document that expressions read, such as a subject's state or an action's
// params. Safe for concurrent use.
type Schema struct {
	name string
	root *jsonschema.Schema
}

// CompileSchema compiles the JSON Schema in data. name identifies it in
// messages; its base name is the schema's URL, so schemas refer to each
// other by file name as the embedded ones do.
func CompileSchema(name string, data []byte) (*Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	url := "https://operator.dev/schemas/" + path.Base(name)
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("add: %w", err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	return &Schema{name: name, root: s}, nil
}

// Name returns the name the schema was compiled under.
func (s *Schema) Name() string { return s.name }

// Validate checks v, a document as encoding/json decodes it into any
// (numbers as json.Number or float64), against the schema.
func (s *Schema) Validate(v any) error { return s.root.Validate(v) }

// Shape returns the shape of the documents the schema describes; what
// names the schema in refusals ("the state schema"). A nil Schema gives the
// zero Shape, which checks nothing.
func (s *Schema) Shape(what string) Shape {
	if s == nil {
		return Shape{what: what}
	}
	return Shape{s: s.root, what: what}
}

// EmbeddedStateSchema returns the name in schemas.FS of the subject's state
// schema, or "" when the subject ships none.
func EmbeddedStateSchema(subject string) string {
	if subject == "" {
		return ""
	}
	name := schemas.StateSchemaFile(subject)
	if _, err := fs.Stat(schemas.FS(), name); err != nil {
		return ""
	}
	return name
}

// LoadSchema compiles the schema called name, as a rule file or catalog
// names it in state_schema: the schema of that name embedded in package
// schemas when name is a bare file name found there, otherwise the file
// read returns for name (a path, which read resolves).
func LoadSchema(name string, read func(name string) ([]byte, error)) (*Schema, error) {
	var (
		data []byte
		err  error
	)
	if !strings.ContainsAny(name, `/\`) {
		data, err = fs.ReadFile(schemas.FS(), name)
	}
	if name != filepath.Base(name) || err != nil {
		var rerr error
		if data, rerr = read(name); rerr != nil {
			return nil, fmt.Errorf("neither an embedded schema (schemas.FS) nor a readable file: %w", rerr)
		}
	}
	return CompileSchema(name, data)
}

// ObservationShape returns the shape of `obs`, an observation's data: the
// envelope (subject, instance, observed_at, observer, state) with state
// described by the subject's state schema. A nil state leaves obs.state
// unchecked; the envelope's fields are checked all the same.
func ObservationShape(state *Schema) (Shape, error) {
	file, _ := schemas.SchemaFile(schemas.TypeObservation)
	data, err := fs.ReadFile(schemas.FS(), file)
	if err != nil {
		return Shape{}, fmt.Errorf("observation schema: %w", err)
	}
	env, err := CompileSchema(file, data)
	if err != nil {
		return Shape{}, fmt.Errorf("observation schema: %w", err)
	}
	sh := env.Shape("the observation schema")
	sh.fields = map[string]Shape{"state": state.Shape("the state schema")}
	return sh, nil
}

// A Shape is what is known, at load time, about the values of a variable
// or sub-expression: where they sit in a JSON Schema, or nothing (the zero
// Shape: paths under it are not checked).
type Shape struct {
	s *jsonschema.Schema
	// what names the schema in messages ("the state schema", ...).
	what string
	// fields override the schema for some fields: the envelope's
	// free-form state is the subject's state schema.
	fields map[string]Shape
}

func (sh Shape) known() bool { return sh.s != nil }

// candidates expands s into the schemas that constrain the same instance:
// itself, what it references, and its allOf/anyOf/oneOf/then/else branches.
func candidates(s *jsonschema.Schema) []*jsonschema.Schema {
	var out []*jsonschema.Schema
	seen := map[*jsonschema.Schema]bool{}
	var walk func(*jsonschema.Schema)
	walk = func(s *jsonschema.Schema) {
		if s == nil || seen[s] {
			return
		}
		seen[s] = true
		out = append(out, s)
		walk(s.Ref)
		walk(s.RecursiveRef)
		if s.DynamicRef != nil {
			walk(s.DynamicRef.Ref)
		}
		for _, l := range [][]*jsonschema.Schema{s.AllOf, s.AnyOf, s.OneOf} {
			for _, c := range l {
				walk(c)
			}
		}
		walk(s.Then)
		walk(s.Else)
	}
	walk(s)
	return out
}

// field returns the shape of field name of sh, and false when the schema
// says the object cannot have that field. A schema that declares no
// properties at all leaves the object open (unknown). A schema that declares
// properties is treated as closed unless additionalProperties or
// patternProperties allow the name: the state schema is meant to list every
// field an observer publishes.
func (sh Shape) field(name string) (Shape, bool) {
	if f, ok := sh.fields[name]; ok {
		return f, true
	}
	if sh.s == nil {
		return Shape{}, true
	}
	declares := false
	var notObject []string
	for _, c := range candidates(sh.s) {
		if c.Bool != nil {
			if *c.Bool {
				return Shape{what: sh.what}, true
			}
			continue
		}
		if p, ok := c.Properties[name]; ok {
			return Shape{s: p, what: sh.what}, true
		}
		for re, p := range c.PatternProperties {
			if re.MatchString(name) {
				return Shape{s: p, what: sh.what}, true
			}
		}
		switch ap := c.AdditionalProperties.(type) {
		case *jsonschema.Schema:
			return Shape{s: ap, what: sh.what}, true
		case bool:
			if ap {
				return Shape{what: sh.what}, true
			}
			declares = true
		}
		if len(c.Properties) > 0 || len(c.PatternProperties) > 0 {
			declares = true
		}
		if c.Types != nil && !c.Types.IsEmpty() {
			notObject = c.Types.ToStrings()
			for _, t := range notObject {
				if t == "object" {
					notObject = nil
					break
				}
			}
			if notObject != nil {
				declares = true
			}
		}
	}
	if !declares {
		return Shape{what: sh.what}, true
	}
	return Shape{}, false
}

// Items returns the shape of the elements of a list: the shape of the
// items a rule's each yields, for instance.
func (sh Shape) Items() Shape {
	if sh.s == nil {
		return Shape{}
	}
	for _, c := range candidates(sh.s) {
		if c.Items2020 != nil {
			return Shape{s: c.Items2020, what: sh.what}
		}
		if it, ok := c.Items.(*jsonschema.Schema); ok {
			return Shape{s: it, what: sh.what}
		}
	}
	return Shape{}
}

// values returns the shape of the values of a map (an object used as a
// dictionary).
func (sh Shape) values() Shape {
	if sh.s == nil {
		return Shape{}
	}
	for _, c := range candidates(sh.s) {
		if ap, ok := c.AdditionalProperties.(*jsonschema.Schema); ok {
			return Shape{s: ap, what: sh.what}
		}
	}
	return Shape{}
}

// maxSize returns the schema's bound on the size of a list, map or string.
func (sh Shape) maxSize() (uint64, bool) {
	if sh.s == nil {
		return 0, false
	}
	for _, c := range candidates(sh.s) {
		for _, m := range []*int{c.MaxItems, c.MaxProperties, c.MaxLength} {
			if m != nil && *m >= 0 {
				return uint64(*m), true
			}
		}
	}
	return 0, false
}
