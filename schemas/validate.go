package schemas

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

//go:embed *.json
var files embed.FS

// FS returns the embedded JSON Schema files, named <name>.v1.json. The same
// files sit beside this package's source, readable by any tool.
func FS() fs.FS { return files }

// SchemaFile returns the file name of the data schema of the CloudEvents
// type t.
func SchemaFile(t string) (string, bool) {
	switch t {
	case TypeObservation:
		return "observation.v1.json", true
	case TypeViolation:
		return "violation.v1.json", true
	case TypeActionRequested:
		return "action_request.v1.json", true
	case TypeActionCompleted:
		return "action_result.v1.json", true
	case TypeActionVerified:
		return "action_verification.v1.json", true
	case TypeDiagnosis:
		return "diagnosis.v1.json", true
	}
	return "", false
}

// StateSchemaFile returns the file name of a subject's state schema.
func StateSchemaFile(subject string) string { return subject + ".state.v1.json" }

// ErrInvalid is wrapped by every validation failure, so callers can tell bad
// data (terminate, never retry) from other errors.
var ErrInvalid = errors.New("invalid event data")

// ErrUnknownType is returned for a CloudEvents type with no schema.
var ErrUnknownType = errors.New("unknown event type")

// A Validator checks event data against the embedded schemas. It is safe for
// concurrent use; build one at start-up and share it.
type Validator struct {
	byFile map[string]*jsonschema.Schema
}

// NewValidator compiles every embedded schema, plus any *.json schema files
// found in extra (for subject state schemas shipped outside this package).
func NewValidator(extra ...fs.FS) (*Validator, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	var names []string
	add := func(fsys fs.FS) error {
		matches, err := fs.Glob(fsys, "*.json")
		if err != nil {
			return err
		}
		for _, name := range matches {
			b, err := fs.ReadFile(fsys, name)
			if err != nil {
				return fmt.Errorf("read schema %s: %w", name, err)
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				return fmt.Errorf("parse schema %s: %w", name, err)
			}
			if err := c.AddResource(resourceURL(name), doc); err != nil {
				return fmt.Errorf("add schema %s: %w", name, err)
			}
			names = append(names, name)
		}
		return nil
	}
	for _, fsys := range append([]fs.FS{files}, extra...) {
		if err := add(fsys); err != nil {
			return nil, err
		}
	}
	v := &Validator{byFile: make(map[string]*jsonschema.Schema, len(names))}
	for _, name := range names {
		s, err := c.Compile(resourceURL(name))
		if err != nil {
			return nil, fmt.Errorf("compile schema %s: %w", name, err)
		}
		v.byFile[name] = s
	}
	return v, nil
}

// resourceURL is the URL a schema file is registered under; files refer to
// each other by these names.
func resourceURL(name string) string { return "https://operator.dev/schemas/" + path.Base(name) }

// Files returns the names of the schemas the validator knows, sorted.
func (v *Validator) Files() []string {
	out := make([]string, 0, len(v.byFile))
	for n := range v.byFile {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// HasStateSchema reports whether the subject ships a state schema.
func (v *Validator) HasStateSchema(subject string) bool {
	_, ok := v.byFile[StateSchemaFile(subject)]
	return ok
}

// Validate checks data (the JSON body of an event) against the schema of the
// CloudEvents type t. For an observation it also checks the state against the
// subject's state schema when the subject ships one. Failures wrap ErrInvalid.
func (v *Validator) Validate(t string, data []byte) error {
	file, ok := SchemaFile(t)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownType, t)
	}
	doc, err := v.check(file, data)
	if err != nil {
		return err
	}
	if t != TypeObservation {
		return nil
	}
	obj := doc.(map[string]any) // the envelope schema requires an object
	subject, _ := obj["subject"].(string)
	s, ok := v.byFile[StateSchemaFile(subject)]
	if !ok {
		return nil
	}
	if err := s.Validate(obj["state"]); err != nil {
		return fmt.Errorf("%w: %s state: %s", ErrInvalid, subject, DescribeValidationError(err))
	}
	return nil
}

// ValidateFile checks data against the named schema file.
func (v *Validator) ValidateFile(file string, data []byte) error {
	_, err := v.check(file, data)
	return err
}

func (v *Validator) check(file string, data []byte) (any, error) {
	s, ok := v.byFile[file]
	if !ok {
		return nil, fmt.Errorf("no schema %s", file)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: not JSON: %v", ErrInvalid, err)
	}
	if err := s.Validate(doc); err != nil {
		return nil, fmt.Errorf("%w: %s: %s", ErrInvalid, strings.TrimSuffix(file, ".json"), DescribeValidationError(err))
	}
	return doc, nil
}

// DescribeValidationError renders a JSON Schema error (of a document, or of
// a schema against its metaschema) on one line: the leaf causes with their
// locations, at most five.
func DescribeValidationError(err error) string {
	var sve *jsonschema.SchemaValidationError
	if errors.As(err, &sve) {
		return "against the JSON Schema metaschema: " + DescribeValidationError(sve.Err)
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	printer := message.NewPrinter(language.English)
	var parts []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			loc := "/" + strings.Join(e.InstanceLocation, "/")
			parts = append(parts, fmt.Sprintf("at %s: %s", loc, e.ErrorKind.LocalizedString(printer)))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	if len(parts) > 5 {
		parts = append(parts[:5], fmt.Sprintf("and %d more", len(parts)-5))
	}
	return strings.Join(parts, "; ")
}
