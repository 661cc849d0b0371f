// Package subjects is the contract between Operator's generic pipeline and
// the systems it watches. A subject (the rate limiter, TiKV) lives in one
// folder under subjects/ and exports one [Subject] value: its name, its
// observer's flags and constructor, its rule set and rule tests, its action
// catalog, its executor's flags and constructor, how `operator up` runs
// or reaches one instance of it, and the tables the status page shows of it. cmd/operator and the pipeline loop over a
// list of Subjects; nothing else names a subject, so adding one changes no
// core package.
//
// This package imports the generic runtime (observers, actuators,
// evaluators) and never a subject.
package subjects

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/diagnosis"
	"github.com/operator-dev/operator/evaluators"
	"github.com/operator-dev/operator/observers"
	"github.com/operator-dev/operator/schemas"
)

// A File is a file a subject ships, embedded in the binary.
type File struct {
	// Path is the file's path in the repository, so messages point at the
	// file a person edits ("subjects/tikv/rules.yaml").
	Path string
	Data []byte
}

// A Subject is everything one kind of system plugs into the pipeline.
type Subject struct {
	// Name is the token in NATS subjects, rule files and catalogs.
	Name string
	// Title names one instance in help texts ("rate limiter deployment").
	Title string
	// Files are the files the subject ships (see ShippedFiles).
	Files

	Observer Observer
	Executor Executor
	// API is how diagnosis reads the subject's API, GET only.
	API   API
	Local Local

	// Views are the tables the status page shows for each instance, from
	// its latest observation; the page knows no subject, so these are all
	// it shows beyond the instance's health.
	Views []View
}

// Files are a subject's shipped files.
type Files struct {
	// Rules is the rule set (rules.yaml) and RulesTest its unit tests
	// (rules_test.yaml).
	Rules     File
	RulesTest File
	// Catalog is the action catalog (actions.yaml).
	Catalog File
	// Playbook is the diagnosis playbook (diagnosis.yaml): the evidence to
	// gather for a violation and the causes it can support. Empty: the
	// default evidence and no known cause.
	Playbook File
}

// The names of a subject's files in its folder.
const (
	RulesName     = "rules.yaml"
	RulesTestName = "rules_test.yaml"
	CatalogName   = "actions.yaml"
	PlaybookName  = "diagnosis.yaml"
)

// ShippedFiles reads a subject's files by their names from fsys (its
// folder, embedded); dir is the folder's path in the repository, which
// messages name. A file the subject does not ship stays empty.
func ShippedFiles(fsys fs.FS, dir string) (Files, error) {
	var f Files
	for _, x := range []struct {
		name string
		file *File
	}{{RulesName, &f.Rules}, {RulesTestName, &f.RulesTest}, {CatalogName, &f.Catalog}, {PlaybookName, &f.Playbook}} {
		data, err := fs.ReadFile(fsys, x.name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return Files{}, fmt.Errorf("%s: %w", path.Join(dir, x.name), err)
		}
		*x.file = File{Path: path.Join(dir, x.name), Data: data}
	}
	return f, nil
}

// A View is a table made from one instance's latest observation: a row per
// element of a list in it. Its expressions are CEL, checked against the
// subject's state schema when the status page loads them.
type View struct {
	// Name identifies the view among the subject's (a subject token).
	Name string
	// Title heads the table.
	Title string
	// Rows is CEL over obs (the observation's data) yielding a list; each
	// element is bound as row for the other expressions.
	Rows string
	// OrderBy, when set, is CEL over obs and row yielding a number or a
	// string to sort the rows by, ascending unless Descending.
	OrderBy    string
	Descending bool
	// Limit caps the rows shown, after sorting (0: all).
	Limit   int
	Columns []Column
	// Status, when set, is CEL over obs and row yielding "ok", "warn" or
	// "bad": how the page marks the row.
	Status string
}

// A Column is one column of a [View].
type Column struct {
	Title string
	// Expr is CEL over obs and row; its value is shown as it is, numbers
	// rounded.
	Expr string
	// Unit follows numbers ("ms", "/s").
	Unit string
}

// validate checks what can be checked without compiling: names, and that
// there is something to show.
func (v View) validate() error {
	var errs []error
	if err := schemas.ValidToken(v.Name); err != nil {
		errs = append(errs, fmt.Errorf("name: %w", err))
	}
	if strings.TrimSpace(v.Rows) == "" {
		errs = append(errs, errors.New("no rows expression"))
	}
	if len(v.Columns) == 0 {
		errs = append(errs, errors.New("no columns"))
	}
	for i, c := range v.Columns {
		if c.Title == "" || strings.TrimSpace(c.Expr) == "" {
			errs = append(errs, fmt.Errorf("column %d needs a title and an expression", i+1))
		}
	}
	if v.Limit < 0 {
		errs = append(errs, fmt.Errorf("limit %d is negative", v.Limit))
	}
	return errors.Join(errs...)
}

// RuleSet parses the shipped rule set.
func (s Subject) RuleSet(opts evaluators.LoadOptions) (*evaluators.RuleSet, error) {
	return evaluators.ParseRuleSet(s.Rules.Path, s.Rules.Data, opts)
}

// ActionCatalog parses the shipped action catalog.
func (s Subject) ActionCatalog() (*actuators.Catalog, error) {
	return actuators.ParseCatalog(s.Catalog.Path, s.Catalog.Data)
}

// DiagnosisPlaybook parses the shipped playbook, checking its suggestions
// against the catalog; nil, nil when the subject ships none.
func (s Subject) DiagnosisPlaybook() (*diagnosis.Playbook, error) {
	if len(s.Playbook.Data) == 0 {
		return nil, nil
	}
	var cat *actuators.Catalog
	if len(s.Catalog.Data) > 0 {
		var err error
		if cat, err = s.ActionCatalog(); err != nil {
			return nil, err
		}
	}
	return diagnosis.ParsePlaybook(s.Playbook.Path, s.Playbook.Data, cat)
}

// Observer is how `operator observe NAME` runs the subject's observer.
type Observer struct {
	// Short, Long and Example are the command's help.
	Short, Long, Example string
	// DefaultInstance is --instance's default; empty makes it required.
	DefaultInstance string
	// DefaultInterval is --interval's default.
	DefaultInterval time.Duration
	// Required lists the observer's own flags that must be given.
	Required []string
	// Flags registers the observer's own flags on fs and returns the
	// constructor to call once they are parsed.
	Flags func(fs *pflag.FlagSet) NewSource
}

// NewSource builds an observer's source from its parsed flags. close
// releases what the source holds (connections) once it is no longer polled.
type NewSource func(ctx context.Context, log *slog.Logger) (src observers.Source, close func() error, err error)

// Executor is how `operator actuate` reaches the subject's API.
type Executor struct {
	// Flags registers the flags that reach the subject's API on fs and
	// returns the constructor to call once they are parsed.
	Flags func(fs *pflag.FlagSet) NewExecutor
}

// NewExecutor builds an executor from its parsed flags. It returns an
// error wrapping [ErrNotConfigured] when no endpoint was given: an actuator
// in observe mode needs none.
type NewExecutor func() (actuators.Executor, error)

// ErrNotConfigured is wrapped by a [NewExecutor] whose endpoint flags were
// not given; its message names them.
var ErrNotConfigured = errors.New("no endpoint configured")

// API is how `operator diagnose` reaches the subject's API, read-only.
type API struct {
	// Flags registers the flags that reach the API on fs and returns the
	// constructor to call once they are parsed.
	Flags func(fs *pflag.FlagSet) NewGetter
}

// NewGetter builds a read-only client of the subject's API from its parsed
// flags; nil, nil when none was given (http evidence then fails, and says
// why).
type NewGetter func() (diagnosis.Getter, error)

// Local is how `operator up` runs the subject in its one process: it may
// start a sandbox of the subject (the rate limiter starts Redis and nodes)
// or reach a real one (TiKV, through PD URLs given as flags).
type Local struct {
	// Flags registers the subject's flags on `operator up` and returns the
	// function that starts it once they are parsed. Nil: `up` does not run
	// the subject.
	Flags func(fs *pflag.FlagSet) StartLocal
}

// StartLocal starts or reaches one instance of the subject for the
// one-process pipeline. It returns nil, nil when the flags leave the
// subject out of this run (TiKV without PD URLs).
type StartLocal func(ctx context.Context, env Env) (*Deployment, error)

// Env is what `operator up` tells a subject it starts.
type Env struct {
	Logger *slog.Logger
	// Version is the binary's version, for the services a subject starts.
	Version string
}

// A Deployment is one instance of a subject the pipeline watches and acts
// on: the source its observer polls and the executor its actions run
// through. The pipeline that is given a Deployment owns it and calls Close.
type Deployment struct {
	Subject  Subject
	Instance string
	// Interval is the observer's poll interval (0: the observer's default).
	Interval time.Duration
	Source   observers.Source
	// Executor may be nil for a deployment that is only watched.
	Executor actuators.Executor
	// API reads the subject's API for diagnosis (nil: none), and
	// Prometheus, when set, answers the playbook's queries.
	API        diagnosis.Getter
	Prometheus diagnosis.Querier
	// Endpoints describe, one line each, what was started or reached, for
	// `operator up` to print.
	Endpoints []string
	// Close releases what the deployment started; nil when nothing.
	Close func() error
}

// Validate checks that the deployment names its subject and instance and
// has a source.
func (d *Deployment) Validate() error {
	var errs []error
	if err := schemas.ValidToken(d.Subject.Name); err != nil {
		errs = append(errs, fmt.Errorf("subject: %w", err))
	}
	if err := schemas.ValidToken(d.Instance); err != nil {
		errs = append(errs, fmt.Errorf("%s instance: %w", d.Subject.Name, err))
	}
	if d.Source == nil {
		errs = append(errs, fmt.Errorf("%s/%s: no observer source", d.Subject.Name, d.Instance))
	}
	return errors.Join(errs...)
}

// A Registry is the list of subjects one binary knows, in a stable order.
type Registry []Subject

// NewRegistry checks that every subject is complete and named once.
func NewRegistry(list ...Subject) (Registry, error) {
	var errs []error
	seen := map[string]bool{}
	for _, s := range list {
		if err := schemas.ValidToken(s.Name); err != nil {
			errs = append(errs, fmt.Errorf("subject %q: %w", s.Name, err))
			continue
		}
		if seen[s.Name] {
			errs = append(errs, fmt.Errorf("subject %q registered twice", s.Name))
		}
		seen[s.Name] = true
		if s.Observer.Flags == nil {
			errs = append(errs, fmt.Errorf("subject %q: no observer", s.Name))
		}
		if len(s.Rules.Data) == 0 {
			errs = append(errs, fmt.Errorf("subject %q: no rule set", s.Name))
		}
		views := map[string]bool{}
		for _, v := range s.Views {
			if err := v.validate(); err != nil {
				errs = append(errs, fmt.Errorf("subject %q view %q: %w", s.Name, v.Name, err))
			}
			if views[v.Name] {
				errs = append(errs, fmt.Errorf("subject %q: view %q declared twice", s.Name, v.Name))
			}
			views[v.Name] = true
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return slices.Clone(Registry(list)), nil
}

// Names returns the subjects' names in order.
func (r Registry) Names() []string {
	out := make([]string, 0, len(r))
	for _, s := range r {
		out = append(out, s.Name)
	}
	return out
}

// Lookup returns the subject called name.
func (r Registry) Lookup(name string) (Subject, bool) {
	for _, s := range r {
		if s.Name == name {
			return s, true
		}
	}
	return Subject{}, false
}

// Get returns the subject called name, or an error listing the known ones.
func (r Registry) Get(name string) (Subject, error) {
	if s, ok := r.Lookup(name); ok {
		return s, nil
	}
	return Subject{}, fmt.Errorf("unknown subject %q (known: %s)", name, strings.Join(r.Names(), ", "))
}

// Catalogs parses every subject's action catalog, by subject name.
// Subjects that ship none are left out.
func (r Registry) Catalogs() (map[string]*actuators.Catalog, error) {
	out := map[string]*actuators.Catalog{}
	for _, s := range r {
		if len(s.Catalog.Data) == 0 {
			continue
		}
		c, err := s.ActionCatalog()
		if err != nil {
			return nil, err
		}
		out[s.Name] = c
	}
	return out, nil
}
