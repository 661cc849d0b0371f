// Package subjectstest checks that a subject keeps the contract of package
// subjects. Each subject's own tests call [Check] on its [subjects.Subject],
// run from the subject's folder, so a new subject gets the same checks for
// free.
package subjectstest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/operator-dev/operator/evaluators"
	"github.com/operator-dev/operator/internal/importcheck"
	"github.com/operator-dev/operator/statuspage"
	"github.com/operator-dev/operator/subjects"
)

// A Fence is a dependency of a subject's folder that its actions never use
// (the rate limiter's embedded Redis for `operator up`): the check that no
// code path runs a process does not look inside it. Why says what it is for.
type Fence struct{ Package, Why string }

// Check runs the contract's checks on s as subtests. It must run in the
// subject's folder (the package directory of its tests), where the shipped
// files live.
func Check(t *testing.T, s subjects.Subject, fences ...Fence) {
	t.Helper()
	if _, err := subjects.NewRegistry(s); err != nil {
		t.Fatalf("incomplete subject: %v", err)
	}
	t.Run("embedded files are the files in the folder", func(t *testing.T) {
		for _, f := range []subjects.File{s.Rules, s.RulesTest, s.Catalog, s.Playbook} {
			if f.Path == "" {
				continue
			}
			disk, err := os.ReadFile(filepath.Base(f.Path))
			if err != nil {
				t.Fatalf("%s: %v", f.Path, err)
			}
			if !bytes.Equal(disk, f.Data) {
				t.Errorf("embedded %s differs from the file", f.Path)
			}
		}
	})
	t.Run("views compile against the state schema", func(t *testing.T) {
		if _, err := statuspage.CompileViews(s.Name, s.Views); err != nil {
			t.Error(err)
		}
	})
	rs, err := s.RuleSet(evaluators.LoadOptions{})
	if err != nil {
		t.Fatalf("rule set: %v", err)
	}
	t.Run("the rule set judges this subject", func(t *testing.T) {
		if rs.Subject != s.Name {
			t.Errorf("%s is for subject %q, want %q", s.Rules.Path, rs.Subject, s.Name)
		}
	})
	t.Run("rule tests pass", func(t *testing.T) {
		if s.RulesTest.Path == "" {
			t.Fatal("no rule tests: every shipped rule set has them")
		}
		var out bytes.Buffer
		ok, err := evaluators.RunTests(context.Background(), &out, evaluators.LoadOptions{}, filepath.Base(s.RulesTest.Path))
		if err != nil || !ok {
			t.Fatalf("rule tests failed (%v):\n%s", err, out.String())
		}
	})
	t.Run("every rule is expected to fire in a rule test", func(t *testing.T) {
		var tf evaluators.TestFile
		if err := yaml.Unmarshal(s.RulesTest.Data, &tf); err != nil {
			t.Fatal(err)
		}
		fired := map[string]bool{}
		for _, tc := range tf.Tests {
			for _, ex := range tc.Expect {
				if ex.Firing != nil {
					for _, a := range *ex.Firing {
						fired[a.Rule] = true
					}
				}
			}
		}
		for _, r := range rs.Rules {
			if !fired[r.Name] {
				t.Errorf("rule %s (%s:%d) is never expected to fire in %s", r.Name, s.Rules.Path, r.Line, s.RulesTest.Path)
			}
		}
	})
	t.Run("the catalog acts on this subject and has every remediation", func(t *testing.T) {
		if len(s.Catalog.Data) == 0 {
			for _, r := range rs.Rules {
				if r.Remediate != nil {
					t.Errorf("rule %s remediates with %s, but the subject ships no catalog", r.Name, r.Remediate.Action)
				}
			}
			return
		}
		cat, err := s.ActionCatalog()
		if err != nil {
			t.Fatal(err)
		}
		if cat.Subject != s.Name {
			t.Errorf("%s is for subject %q, want %q", s.Catalog.Path, cat.Subject, s.Name)
		}
		for _, r := range rs.Rules {
			if r.Remediate == nil {
				continue
			}
			if _, ok := cat.Action(r.Remediate.Action); !ok {
				t.Errorf("rule %s remediates with %s, which %s lacks", r.Name, r.Remediate.Action, s.Catalog.Path)
			}
		}
	})
	t.Run("the playbook explains every rule with known actions", func(t *testing.T) {
		pb, err := s.DiagnosisPlaybook()
		if err != nil {
			t.Fatal(err)
		}
		if pb == nil {
			t.Skip("the subject ships no playbook: its violations get the default evidence")
		}
		if pb.Subject != s.Name {
			t.Errorf("%s is for subject %q, want %q", s.Playbook.Path, pb.Subject, s.Name)
		}
		for _, r := range rs.Rules {
			if !pb.Considers(r.Name) {
				t.Errorf("no hypothesis of %s considers a violation of %s", s.Playbook.Path, r.Name)
			}
		}
	})
	t.Run("no code path runs a process", func(t *testing.T) {
		fence := map[string]string{}
		for _, f := range fences {
			fence[f.Package] = f.Why
		}
		for _, dir := range importcheck.PackageDirs(t, ".") {
			importcheck.ForbidBeyond(t, "./"+filepath.ToSlash(dir), ".", fence, importcheck.NoProcess)
		}
		importcheck.NoProcessInSource(t, ".")
	})
	t.Run("flags register without clashing", func(t *testing.T) {
		// The commands add their own flags beside the subject's: a clash
		// would panic at start-up.
		fs := pflag.NewFlagSet("observe", pflag.PanicOnError)
		for _, common := range []string{"nats", "instance", "interval", "metrics-listen", "subject-prefix", "replicas"} {
			fs.String(common, "", "")
		}
		if s.Observer.Flags(fs) == nil {
			t.Error("the observer's Flags returned no constructor")
		}
		for _, name := range s.Observer.Required {
			if fs.Lookup(name) == nil {
				t.Errorf("required observer flag --%s is not registered", name)
			}
		}
		if s.Executor.Flags != nil && s.Executor.Flags(pflag.NewFlagSet("actuate", pflag.PanicOnError)) == nil {
			t.Error("the executor's Flags returned no constructor")
		}
		if s.Local.Flags != nil && s.Local.Flags(pflag.NewFlagSet("up", pflag.PanicOnError)) == nil {
			t.Error("the local deployment's Flags returned no constructor")
		}
	})
}
