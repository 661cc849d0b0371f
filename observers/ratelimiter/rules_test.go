package ratelimiter

import (
	"bytes"
	"context"
	"os"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/operator-dev/operator/evaluators"
)

func TestRules(t *testing.T) {
	var out bytes.Buffer
	ok, err := evaluators.RunTests(context.Background(), &out, evaluators.LoadOptions{}, "rules_test.yaml")
	if err != nil || !ok {
		t.Fatalf("rule tests failed (%v):\n%s", err, out.String())
	}
}

func TestEmbeddedRulesLoad(t *testing.T) {
	rs, err := evaluators.ParseRuleSet(RulesFile, Rules(), evaluators.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rs.Subject != "ratelimiter" || len(rs.Rules) < 10 {
		t.Fatalf("rule set %s with %d rules", rs.Subject, len(rs.Rules))
	}
}

// TestEveryRuleIsTestedFiring makes a rule without a firing test fail the
// suite: no invariant ships untested.
func TestEveryRuleIsTestedFiring(t *testing.T) {
	rs, err := evaluators.ParseRuleSet(RulesFile, Rules(), evaluators.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("rules_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var tf struct {
		Tests []struct {
			Expect []struct {
				Firing []struct {
					Rule string `yaml:"rule"`
				} `yaml:"firing"`
			} `yaml:"expect"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(data, &tf); err != nil {
		t.Fatal(err)
	}
	tested := map[string]bool{}
	for _, tc := range tf.Tests {
		for _, e := range tc.Expect {
			for _, f := range e.Firing {
				tested[f.Rule] = true
			}
		}
	}
	for _, r := range rs.Rules {
		if !tested[r.Name] {
			t.Errorf("rule %s has no test expecting it to fire", r.Name)
		}
	}
}
