package evaluators

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadRefusals loads every testdata/bad-*.yaml and compares all the
// problems reported with testdata/bad-*.golden (go test -update rewrites
// them). Each fixture targets one family of load-time refusals.
func TestLoadRefusals(t *testing.T) {
	files, err := filepath.Glob("testdata/bad-*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			sets, err := LoadRuleSets(LoadOptions{}, f)
			if err == nil {
				t.Fatalf("%s loaded (%d sets); want it refused", f, len(sets))
			}
			var lines []string
			for _, e := range Errors(err) {
				var le *Error
				if !errors.As(e, &le) {
					t.Errorf("problem %q is not an *Error", e)
					continue
				}
				if le.File != f {
					t.Errorf("problem %q names file %q, want %q", e, le.File, f)
				}
				lines = append(lines, e.Error())
			}
			golden(t, name+".golden", []byte(strings.Join(lines, "\n")+"\n"))
		})
	}
}

// TestLoadExample checks that the example rule set loads and compiles what
// the engine needs.
func TestLoadExample(t *testing.T) {
	sets := loadTestRules(t, "rules.yaml")
	if len(sets) != 1 || sets[0].Subject != "ratelimiter" || len(sets[0].Rules) != 3 {
		t.Fatalf("sets = %+v", sets)
	}
	r := sets[0].Rules[0]
	if r.Name != "node_down" || r.KeepFiringFor.String() != "2s" || r.Severity != "critical" || r.OnMissing != OnMissingKeep {
		t.Fatalf("rule %+v", r)
	}
	if r.Remediate == nil || r.Remediate.Action != "drain_node" || r.Remediate.Params["node_id"] != "item.id" {
		t.Fatalf("remediate %+v", r.Remediate)
	}
	if r.c.key.FieldPath() == nil || strings.Join(r.c.key.FieldPath(), ".") != "item.id" {
		t.Fatalf("key item.id should take the plain-path fast path, got %v", r.c.key.FieldPath())
	}
	rd := sets[0].Rules[2]
	if got := rd.c.evidence; len(got) != 1 || strings.Join(got[0], ".") != "obs.state.redis.connected" {
		t.Fatalf("evidence paths of %s = %v", rd.Name, got)
	}
}

func TestLoadAcrossFiles(t *testing.T) {
	_, err := LoadRuleSets(LoadOptions{}, "testdata/rules.yaml", "testdata/rules.yaml")
	if err == nil || !strings.Contains(err.Error(), "duplicate rule name") {
		t.Fatalf("loading one file twice: err = %v, want duplicate rule names refused", err)
	}
	_, err = LoadRuleSets(LoadOptions{}, "testdata/nosuch.yaml")
	if err == nil || !strings.Contains(err.Error(), "testdata/nosuch.yaml") {
		t.Fatalf("missing file: err = %v", err)
	}
}

func TestCostBudgetIsConfigurable(t *testing.T) {
	src := "subject: s\nrules:\n  - name: a\n    expr: obs.state.xs.exists(x, x > 1)\n"
	if _, err := ParseRuleSet("a.yaml", []byte(src), LoadOptions{}); err != nil {
		t.Fatalf("default budget: %v", err)
	}
	_, err := ParseRuleSet("a.yaml", []byte(src), LoadOptions{CostBudget: 100})
	if err == nil || !strings.Contains(err.Error(), "exceeds the budget of 100") {
		t.Fatalf("budget 100: err = %v", err)
	}
}

func TestCheckedAgainst(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{name: "no state schema", src: "subject: demo\nrules: [{name: a, expr: obs.state.anything}]\n", want: ""},
		{name: "the subject's embedded schema", src: "subject: ratelimiter\nrules: [{name: a, expr: obs.state.redis.reachable}]\n", want: "ratelimiter.state.v1.json"},
		{name: "a file beside the rules", src: "subject: ratelimiter\nstate_schema: state.v1.json\nrules: [{name: a, expr: obs.state.redis.connected}]\n", want: "state.v1.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := ParseRuleSet("testdata/rules.yaml", []byte(tt.src), LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := rs.CheckedAgainst(); got != tt.want {
				t.Fatalf("CheckedAgainst() = %q, want %q", got, tt.want)
			}
		})
	}
}
