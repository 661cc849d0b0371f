package rulefmt

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	src := `subject: ratelimiter
state_schema: state.v1.json
stale_after: 30s
rules:
  - name: node_down
    each: obs.state.nodes
    key: item.id
    expr: |
      item.state == "down"
        || !item.reachable
    for: 10s
    keep_firing_for: 5s
    severity: critical
    summary: 'node {{ item.id }} is down'
    labels: {team: limiter}
    on_missing: resolve
    remediate:
      action: drain_node
      params: {node_id: item.id}
  - name: redis_down
    expr: '!obs.state.redis.reachable &&'
`
	rf, errs := Parse("rules.yaml", []byte(src))
	if len(errs) > 0 {
		t.Fatalf("errors: %v (the format does not compile expressions)", errs)
	}
	want := &RuleFile{
		File: "rules.yaml", Subject: "ratelimiter", StateSchema: "state.v1.json", StateSchemaLine: 2, StaleAfter: 30 * time.Second,
		Rules: []*Rule{{
			Name:          "node_down",
			Line:          5,
			Each:          Expr{Text: "obs.state.nodes", Line: 6},
			Key:           Expr{Text: "item.id", Line: 7},
			Expr:          Expr{Text: "item.state == \"down\"\n  || !item.reachable\n", Line: 8, Block: true},
			For:           10 * time.Second,
			KeepFiringFor: 5 * time.Second,
			Severity:      "critical",
			Summary:       Expr{Text: "node {{ item.id }} is down", Line: 14},
			Labels:        map[string]Expr{"team": {Text: "limiter", Line: 15}},
			OnMissing:     OnMissingResolve,
			Remediate:     &Remediation{Action: "drain_node", Params: map[string]Expr{"node_id": {Text: "item.id", Line: 19}}},
		}, {
			Name:      "redis_down",
			Line:      20,
			Expr:      Expr{Text: "!obs.state.redis.reachable &&", Line: 21},
			Severity:  "warning",
			OnMissing: OnMissingKeep,
		}},
	}
	if !reflect.DeepEqual(rf, want) {
		t.Fatalf("Parse =\n%+v\nwant\n%+v", rf, want)
	}
}

// TestParseRefusals checks each structural refusal: the problems, in line
// order, with file, line and rule.
func TestParseRefusals(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{name: "empty", src: "", want: []string{"f.yaml: empty rule file"}},
		{name: "not yaml", src: "rules:\n  - name: a\n   x: 1\n", want: []string{"f.yaml:1: yaml: did not find expected '-' indicator"}},
		{name: "not a mapping", src: "[1]\n", want: []string{"f.yaml:1: rule file must be a mapping with subject and rules"}},
		{name: "missing subject and rules", src: "stale_after: 1s\n", want: []string{
			"f.yaml:1: subject is required",
			"f.yaml:1: rules is required",
		}},
		{name: "rules not a list", src: "subject: s\nrules: {a: 1}\n", want: []string{"f.yaml:2: rules must be a list"}},
		{name: "bad subject", src: "subject: a.b\nrules: []\n", want: []string{`f.yaml:1: subject: invalid subject token: "a.b" contains '.'`}},
		{name: "rule not a mapping", src: "subject: s\nrules: [x]\n", want: []string{`f.yaml:2: rule "rules[0]": a rule must be a mapping`}},
		{name: "unknown and duplicate keys", src: "subject: s\nrules:\n  - name: a\n    expr: x\n    expr: y\n    exp: z\n", want: []string{
			`f.yaml:5: rule "a": duplicate key "expr" (first at line 4)`,
			`f.yaml:6: rule "a": unknown field "exp"`,
		}},
		{name: "duplicate rule name", src: "subject: s\nrules:\n  - {name: a, expr: x}\n  - {name: a, expr: y}\n", want: []string{
			`f.yaml:4: rule "a": duplicate rule name (first defined at line 3)`,
		}},
		{name: "reserved name", src: "subject: s\nrules:\n  - {name: rule_error, expr: x}\n", want: []string{
			`f.yaml:3: rule "rule_error": name "rule_error" is reserved for a built-in rule`,
		}},
		{name: "each without key", src: "subject: s\nrules:\n  - {name: a, each: xs, expr: x}\n", want: []string{
			`f.yaml:3: rule "a": key is required when each is set (it names the item in the fingerprint)`,
		}},
		{name: "values", src: "subject: s\nrules:\n  - name: a\n    expr: ' '\n    for: 1 day\n    severity: page\n    on_missing: drop\n    labels: [x]\n    remediate: {params: {p: q}}\n", want: []string{
			`f.yaml:3: rule "a": expr is required`,
			`f.yaml:5: rule "a": for: invalid duration "1 day" (use Go syntax like 30s, 5m, 1h30m)`,
			`f.yaml:6: rule "a": severity "page" must be one of critical, warning, info`,
			`f.yaml:7: rule "a": on_missing "drop" must be keep or resolve`,
			`f.yaml:8: rule "a": labels must be a mapping`,
			`f.yaml:9: rule "a": remediate.action is required`,
		}},
		{name: "remediate not a mapping", src: "subject: s\nrules:\n  - {name: a, expr: x, remediate: drain}\n", want: []string{
			`f.yaml:3: rule "a": remediate must be a mapping with action and params`,
		}},
		{name: "expression not a string", src: "subject: s\nrules:\n  - {name: a, expr: [x]}\n", want: []string{
			`f.yaml:3: rule "a": expr must be a string`,
			`f.yaml:3: rule "a": expr is required`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := Parse("f.yaml", []byte(tt.src))
			var got []string
			for _, err := range errs {
				var fe *Error
				if !errors.As(err, &fe) || fe.File != "f.yaml" {
					t.Errorf("problem %v is not an *Error naming the file", err)
				}
				got = append(got, err.Error())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestParseFileReadError(t *testing.T) {
	_, errs := ParseFile("testdata/nosuch.yaml")
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "testdata/nosuch.yaml: read rule file:") {
		t.Fatalf("errors %v, want one naming the file", errs)
	}
}
