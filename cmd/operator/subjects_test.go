package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/observers"
	"github.com/operator-dev/operator/subjects"
)

// TestCommandsLoopOverTheRegistry builds the command tree with one more
// subject than the binary ships, and finds it wherever a subject belongs:
// its own observe command and flags, actuate's --subjects, act's catalog
// and up's flags. No command names a subject.
func TestCommandsLoopOverTheRegistry(t *testing.T) {
	files, err := subjects.ShippedFiles(os.DirFS("../../tests/testdata/toy"), "tests/testdata/toy")
	if err != nil {
		t.Fatal(err)
	}
	toy := subjects.Subject{
		Name: "toy", Title: "toy queue", Files: files,
		Observer: subjects.Observer{Short: "Observe a toy queue", DefaultInterval: time.Second,
			Flags: func(fs *pflag.FlagSet) subjects.NewSource {
				fs.String("queue-url", "", "where the queue is")
				return func(context.Context, *slog.Logger) (observers.Source, func() error, error) { return nil, nil, nil }
			}},
		Executor: subjects.Executor{Flags: func(fs *pflag.FlagSet) subjects.NewExecutor {
			fs.String("toy-url", "", "where the queue's API is")
			return func() (actuators.Executor, error) { return nil, subjects.ErrNotConfigured }
		}},
		Local: subjects.Local{Flags: func(fs *pflag.FlagSet) subjects.StartLocal {
			fs.Int("toy-depth", 0, "starting depth")
			return func(context.Context, subjects.Env) (*subjects.Deployment, error) { return nil, nil }
		}},
	}
	reg, err := subjects.NewRegistry(append(builtinSubjects(), toy)...)
	if err != nil {
		t.Fatal(err)
	}
	root := newRootCmdFor(reg)
	find := func(path ...string) bool {
		c, rest, err := root.Find(path)
		return err == nil && len(rest) == 0 && c.Name() == path[len(path)-1]
	}
	if !find("observe", "toy") {
		t.Fatal("no observe toy command")
	}
	obs, _, _ := root.Find([]string{"observe", "toy"})
	for _, f := range []string{"queue-url", "instance", "interval", "nats"} {
		if obs.Flags().Lookup(f) == nil {
			t.Errorf("observe toy has no --%s", f)
		}
	}
	if obs.Flags().Lookup("pd") != nil || obs.Flags().Lookup("ratelimiter-url") != nil {
		t.Error("observe toy carries another subject's flags")
	}
	act, _, _ := root.Find([]string{"actuate"})
	if act.Flags().Lookup("toy-url") == nil || !strings.Contains(act.Flags().Lookup("subjects").Usage, "toy") {
		t.Error("actuate lacks the toy's endpoint flag or does not list it")
	}
	up, _, _ := root.Find([]string{"up"})
	if up.Flags().Lookup("toy-depth") == nil || up.Flags().Lookup("pd") == nil || up.Flags().Lookup("nodes") == nil {
		t.Error("up lacks a subject's flags")
	}

	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"actions", "catalog", "toy"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "drain") || strings.Contains(out.String(), "reset_counter") {
		t.Errorf("actions catalog toy:\n%s", out.String())
	}

	// An actuator in observe mode needs no endpoint; in execute mode the
	// toy's own refusal comes back.
	var sf subjectFlags
	addSubjectFlags(&cobra.Command{}, reg, &sf)
	sf.names = []string{"toy"}
	if _, err := actuatorSubjects(sf, false); err != nil {
		t.Errorf("observe mode: %v", err)
	}
	if _, err := actuatorSubjects(sf, true); err == nil || !strings.Contains(err.Error(), "toy") {
		t.Errorf("execute mode without an endpoint: %v", err)
	}
}
