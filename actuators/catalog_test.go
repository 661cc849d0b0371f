package actuators

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

var update = flag.Bool("update", false, "rewrite the golden files of the catalog tests")

func loadTestCatalog(t testing.TB) *Catalog {
	t.Helper()
	c, err := LoadCatalog(os.DirFS("testdata"), "actions.yaml")
	if err != nil {
		t.Fatalf("load test catalog: %v", err)
	}
	return c
}

func TestParseCatalog(t *testing.T) {
	c := loadTestCatalog(t)
	if c.Subject != "fake" || len(c.Actions) != 4 {
		t.Fatalf("subject %q with %d actions, want fake with 4", c.Subject, len(c.Actions))
	}
	tests := []struct {
		name     string
		risk     Risk
		approval bool
		target   string
		match    TargetMatch
		line     int
	}{
		{name: "poke", risk: RiskLow, target: "key", match: TargetExact, line: 4},
		{name: "tune", risk: RiskMedium, target: "pattern", match: TargetPrefix, line: 18},
		{name: "nuke", risk: RiskHigh, approval: true, target: "key", match: TargetExact, line: 33},
		{name: "flush", risk: RiskMedium, match: TargetExact, line: 47},
	}
	for _, tt := range tests {
		a, ok := c.Action(tt.name)
		if !ok {
			t.Fatalf("action %s missing", tt.name)
		}
		if a.Risk != tt.risk || a.RequiresApproval != tt.approval || a.Target != tt.target || a.TargetMatch != tt.match || a.Line != tt.line {
			t.Errorf("%s: got risk=%s approval=%v target=%q match=%s line=%d", tt.name, a.Risk, a.RequiresApproval, a.Target, a.TargetMatch, a.Line)
		}
	}
	if a, _ := c.Action("flush"); a.Timeout.String() != "2s" {
		t.Errorf("flush timeout %s, want 2s", a.Timeout)
	}
}

// TestParseCatalogRefusals checks every load-time refusal against golden
// messages: each names the file, the line and the action.
func TestParseCatalogRefusals(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad catalogs: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			c, err := ParseCatalog(file, data)
			if err == nil {
				t.Fatalf("parsed %d actions, want an error", len(c.Actions))
			}
			var ce *CatalogError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *CatalogError: %v", err, err)
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s:\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

func TestValidateParams(t *testing.T) {
	c := loadTestCatalog(t)
	tests := []struct {
		name    string
		action  string
		params  map[string]any
		wantErr string
	}{
		{name: "valid", action: "poke", params: map[string]any{"key": "user:1", "force": true}},
		{name: "missing required", action: "poke", params: map[string]any{}, wantErr: "missing property 'key'"},
		{name: "nil params", action: "poke", params: nil, wantErr: "missing property 'key'"},
		{name: "unknown param", action: "poke", params: map[string]any{"key": "a", "all": true}, wantErr: "additional properties 'all' not allowed"},
		{name: "wrong type", action: "poke", params: map[string]any{"key": 7}, wantErr: "want string"},
		{name: "integer from JSON", action: "tune", params: map[string]any{"pattern": "a*", "limit": float64(5)}},
		{name: "not an integer", action: "tune", params: map[string]any{"pattern": "a*", "limit": 1.5}, wantErr: "want integer"},
		{name: "below minimum", action: "tune", params: map[string]any{"pattern": "a*", "limit": 0}, wantErr: "minimum"},
		{name: "no params", action: "flush", params: map[string]any{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := c.Action(tt.action)
			err := a.ValidateParams(tt.params)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestTargetOf(t *testing.T) {
	c := loadTestCatalog(t)
	tests := []struct {
		name    string
		action  string
		value   any
		want    string
		wantErr string
	}{
		{name: "concrete key", action: "poke", value: "user:42", want: "user:42"},
		{name: "empty", action: "poke", value: "", wantErr: "empty target"},
		{name: "blank", action: "poke", value: "  ", wantErr: "empty target"},
		{name: "padded", action: "poke", value: " user:1", wantErr: "surrounding whitespace"},
		{name: "star", action: "poke", value: "*", wantErr: "wildcard target"},
		{name: "prefix on exact target", action: "poke", value: "user:*", wantErr: "wildcard target"},
		{name: "glob", action: "poke", value: "user:?", wantErr: "wildcard target"},
		{name: "nats wildcard", action: "poke", value: "a.>", wantErr: "wildcard target"},
		{name: "class", action: "poke", value: "user:[0-9]", wantErr: "wildcard target"},
		{name: "not a string", action: "poke", value: 42.0, wantErr: "not a string"},
		{name: "prefix pattern", action: "tune", value: "user:*", want: "user:*"},
		{name: "exact key on prefix target", action: "tune", value: "user:1", want: "user:1"},
		{name: "bare star on prefix target", action: "tune", value: "*", wantErr: "matches every resource"},
		{name: "double star", action: "tune", value: "**", wantErr: "only a trailing"},
		{name: "inner star", action: "tune", value: "us*er", wantErr: "only a trailing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := c.Action(tt.action)
			got, err := a.TargetOf(map[string]any{a.Target: tt.value})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("TargetOf(%v) = %q, %v; want error containing %q", tt.value, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("TargetOf(%v) = %q, %v; want %q", tt.value, got, err, tt.want)
			}
		})
	}
	if a, _ := c.Action("flush"); a.Target != "" {
		t.Fatal("flush has a target")
	} else if got, err := a.TargetOf(nil); got != "" || err != nil {
		t.Fatalf("untargeted action: %q, %v", got, err)
	}
}

func TestVerifyEval(t *testing.T) {
	c := loadTestCatalog(t)
	tests := []struct {
		name    string
		action  string
		params  map[string]any
		obs     string
		want    bool
		wantErr bool
	}{
		{name: "holds", action: "poke", params: map[string]any{"key": "a"}, obs: `{"state":{"fixed":["a","b"]}}`, want: true},
		{name: "does not hold", action: "poke", params: map[string]any{"key": "c"}, obs: `{"state":{"fixed":["a","b"]}}`},
		{name: "missing field is an error, not false", action: "poke", params: map[string]any{"key": "a"}, obs: `{"state":{}}`, wantErr: true},
		{name: "int param against JSON number", action: "tune", params: map[string]any{"pattern": "a*", "limit": 5}, obs: `{"state":{"limits":{"a*":5}}}`, want: true},
		{name: "negated", action: "nuke", params: map[string]any{"key": "a"}, obs: `{"state":{"keys":["b"]}}`, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := c.Action(tt.action)
			got, err := a.verify.eval([]byte(tt.obs), tt.params)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("eval = %v, %v; want %v (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestCatalogStateSchema checks which state schema verify expressions are
// checked against: the subject's embedded one, one named in state_schema
// (embedded or a file beside the catalog), or none.
func TestCatalogStateSchema(t *testing.T) {
	const schema = `{"type": "object", "additionalProperties": false, "properties": {"fixed": {"type": "array"}}}`
	catalog := func(header, verify string) string {
		return header + `
actions:
  - name: poke
    description: Poke.
    risk: low
    cooldown: 0s
    params: {type: object, additionalProperties: false}
    verify: ` + verify + `
    verify_within: 1s
`
	}
	tests := []struct {
		name    string
		catalog string
		want    string // CheckedAgainst
		wantErr string
	}{
		{name: "no state schema: state unchecked", catalog: catalog("subject: fake", "obs.state.anything"), want: ""},
		{name: "the subject's embedded schema", catalog: catalog("subject: ratelimiter", "obs.state.redis.reachable"), want: "ratelimiter.state.v1.json"},
		{name: "the embedded schema refuses", catalog: catalog("subject: ratelimiter", "obs.state.redis.reachble"),
			wantErr: `actions.yaml:8: action "poke": verify: field obs.state.redis.reachble: the state schema has no field "reachble"`},
		{name: "an embedded schema by name", catalog: catalog("subject: fake\nstate_schema: tikv.state.v1.json", "size(obs.state.stores) > 0"), want: "tikv.state.v1.json"},
		{name: "a file beside the catalog", catalog: catalog("subject: fake\nstate_schema: schemas/fake.json", "size(obs.state.fixed) > 0"), want: "schemas/fake.json"},
		{name: "a file beside the catalog refuses", catalog: catalog("subject: fake\nstate_schema: schemas/fake.json", "obs.state.fixd == []"),
			wantErr: `actions.yaml:9: action "poke": verify: field obs.state.fixd: the state schema has no field "fixd"`},
		{name: "a missing file", catalog: catalog("subject: fake\nstate_schema: schemas/nosuch.json", "true"),
			wantErr: `catalogs/actions.yaml:2: state_schema "schemas/nosuch.json": neither an embedded schema (schemas.FS) nor a readable file: open catalogs/schemas/nosuch.json: file does not exist`},
		{name: "not a name", catalog: catalog("subject: fake\nstate_schema: [a]", "true"),
			wantErr: `catalogs/actions.yaml:2: state_schema must be a schema name or a path`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{
				"catalogs/actions.yaml":      {Data: []byte(tt.catalog)},
				"catalogs/schemas/fake.json": {Data: []byte(schema)},
			}
			c, err := LoadCatalog(fsys, "catalogs/actions.yaml")
			if tt.wantErr != "" {
				if err == nil || !strings.HasSuffix(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one ending in %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.CheckedAgainst(); got != tt.want {
				t.Fatalf("CheckedAgainst() = %q, want %q", got, tt.want)
			}
		})
	}
}
