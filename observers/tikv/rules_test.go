package tikv_test

import (
	"bytes"
	"context"
	"os"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/operator-dev/operator/evaluators"
	"github.com/operator-dev/operator/observers/tikv"
)

// TestRuleFile runs rules_test.yaml as `operator rules test` does.
func TestRuleFile(t *testing.T) {
	var out bytes.Buffer
	ok, err := evaluators.RunTests(context.Background(), &out, evaluators.LoadOptions{}, "rules_test.yaml")
	if err != nil || !ok {
		t.Fatalf("rules test failed (%v):\n%s", err, out.String())
	}
	t.Log(out.String())
}

// TestEveryRuleIsTested: every rule of rules.yaml is expected to fire or be
// pending in at least one test case.
func TestEveryRuleIsTested(t *testing.T) {
	sets, err := evaluators.LoadRuleSets(evaluators.LoadOptions{}, "rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("rules_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var tf evaluators.TestFile
	if err := yaml.Unmarshal(data, &tf); err != nil {
		t.Fatal(err)
	}
	tested := map[string]bool{}
	for _, tc := range tf.Tests {
		for _, ex := range tc.Expect {
			for _, list := range []*[]evaluators.TestAlert{ex.Firing, ex.Pending} {
				if list == nil {
					continue
				}
				for _, a := range *list {
					tested[a.Rule] = true
				}
			}
		}
	}
	for _, r := range sets[0].Rules {
		if !tested[r.Name] {
			t.Errorf("rule %s (rules.yaml:%d) is never expected to fire or be pending in %s", r.Name, r.Line, tikv.RulesTestFile)
		}
	}
}

// TestEmbeddedFilesAreTheSourceFiles guards against a stale embed.
func TestEmbeddedFilesAreTheSourceFiles(t *testing.T) {
	for name, embedded := range map[string][]byte{"rules.yaml": tikv.Rules(), "rules_test.yaml": tikv.RulesTest()} {
		disk, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(embedded, disk) {
			t.Errorf("embedded %s differs from the file", name)
		}
	}
	rs, err := evaluators.ParseRuleSet(tikv.RulesFile, tikv.Rules(), evaluators.LoadOptions{})
	if err != nil {
		t.Fatalf("embedded rule set: %v", err)
	}
	if rs.Subject != tikv.Subject {
		t.Errorf("rules.yaml is for subject %q, want %q", rs.Subject, tikv.Subject)
	}
}
