package evaluators

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/operator-dev/operator/schemas"
)

// schemaInfo is a compiled subject state schema, used at load time to check
// the field paths expressions read.
type schemaInfo struct {
	name string
	root *jsonschema.Schema
}

func compileSchema(name string, data []byte) (*jsonschema.Schema, error) {
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
	return s, nil
}

func compileStateSchema(name string, data []byte) (*schemaInfo, error) {
	s, err := compileSchema(name, data)
	if err != nil {
		return nil, err
	}
	return &schemaInfo{name: name, root: s}, nil
}

// envelopeSchema compiles the observation envelope schema.
func envelopeSchema() (*jsonschema.Schema, error) {
	file, _ := schemas.SchemaFile(schemas.TypeObservation)
	data, err := fs.ReadFile(schemas.FS(), file)
	if err != nil {
		return nil, err
	}
	return compileSchema(file, data)
}

// shape is what is known, at load time, about the value of a CEL
// sub-expression: a schema, or nothing (unknown: not checked).
type shape struct {
	s *jsonschema.Schema
	// obs marks the root of `obs`: its "state" field is the subject's
	// state schema rather than the envelope's free-form object.
	obs   bool
	state *jsonschema.Schema
	// what names the schema in messages ("the state schema", ...).
	what string
}

func (sh shape) known() bool { return sh.s != nil }

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
func (sh shape) field(name string) (shape, bool) {
	if sh.obs && name == "state" {
		return shape{s: sh.state, what: "the state schema"}, true
	}
	if sh.s == nil {
		return shape{}, true
	}
	declares := false
	var notObject []string
	for _, c := range candidates(sh.s) {
		if c.Bool != nil {
			if *c.Bool {
				return shape{what: sh.what}, true
			}
			continue
		}
		if p, ok := c.Properties[name]; ok {
			return shape{s: p, what: sh.what}, true
		}
		for re, p := range c.PatternProperties {
			if re.MatchString(name) {
				return shape{s: p, what: sh.what}, true
			}
		}
		switch ap := c.AdditionalProperties.(type) {
		case *jsonschema.Schema:
			return shape{s: ap, what: sh.what}, true
		case bool:
			if ap {
				return shape{what: sh.what}, true
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
		return shape{what: sh.what}, true
	}
	return shape{}, false
}

// items returns the shape of the elements of a list.
func (sh shape) items() shape {
	if sh.s == nil {
		return shape{}
	}
	for _, c := range candidates(sh.s) {
		if c.Items2020 != nil {
			return shape{s: c.Items2020, what: sh.what}
		}
		if it, ok := c.Items.(*jsonschema.Schema); ok {
			return shape{s: it, what: sh.what}
		}
	}
	return shape{}
}

// values returns the shape of the values of a map (an object used as a
// dictionary).
func (sh shape) values() shape {
	if sh.s == nil {
		return shape{}
	}
	for _, c := range candidates(sh.s) {
		if ap, ok := c.AdditionalProperties.(*jsonschema.Schema); ok {
			return shape{s: ap, what: sh.what}
		}
	}
	return shape{}
}

// maxSize returns the schema's bound on the size of a list, map or string.
func (sh shape) maxSize() (uint64, bool) {
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
