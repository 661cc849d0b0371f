package tests

import (
	"bytes"
	"context"
	"testing"

	"github.com/operator-dev/operator/evaluators"
	"github.com/operator-dev/operator/internal/redistest"
	"github.com/operator-dev/operator/pipeline/scenario"
	srl "github.com/operator-dev/operator/subjects/ratelimiter"
)

// redisProcess lets a scenario stop and restart the test's redis-server.
type redisProcess struct{ s *redistest.Server }

func (p redisProcess) Stop() error  { p.s.Stop(); return nil }
func (p redisProcess) Start() error { p.s.Restart(); return nil }

// TestScenarios injects every fault for real into a fresh pipeline on a
// real redis-server and checks that the expected rule fires within its
// bound, the repair (where there is one) succeeds and is verified, the
// violation resolves, and no unexpected rule fires.
func TestScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end scenarios take minutes")
	}
	for _, sc := range scenario.All() {
		t.Run(sc.Name, func(t *testing.T) {
			srv := redistest.Start(t)
			cfg := scenario.DefaultConfig()
			cfg.Sandbox.RedisURL = srv.URL()
			cfg.Sandbox.RedisProcess = redisProcess{srv}
			ctx, cancel := context.WithTimeout(context.Background(), scenario.Deadline(sc))
			defer cancel()
			var out bytes.Buffer
			res := scenario.RunFresh(ctx, cfg, sc, &out, scenario.Options{})
			t.Logf("timeline:\n%s", out.String())
			if !res.OK() {
				t.Fatalf("%s: %v", sc.Name, res.Err)
			}
			if !res.Fired || !res.Resolved {
				t.Fatalf("fired=%v resolved=%v", res.Fired, res.Resolved)
			}
			// The diagnosis names the fault's true cause first.
			if !res.Correct {
				t.Errorf("diagnosed %s (%s), the root cause is %s", res.Diagnosis, res.Certainty, sc.RootCause)
			}
		})
	}
}

// TestEveryRuleHasAScenario fails when a rule of the shipped rate limiter
// rule set is not expected to fire in some scenario: with TestScenarios,
// which fails when an expected rule does not fire, it proves that every
// invariant fires for a real fault.
func TestEveryRuleHasAScenario(t *testing.T) {
	rs, err := srl.Subject().RuleSet(evaluators.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, sc := range scenario.All() {
		covered[sc.Rule] = true
		for _, r := range sc.AlsoFires {
			covered[r] = true
		}
	}
	for _, r := range rs.Rules {
		if !covered[r.Name] {
			t.Errorf("rule %s fires in no scenario", r.Name)
		}
	}
}
