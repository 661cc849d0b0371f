package expr

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"cel.dev/cel-go/common/types"
)

func TestParseJSONAgreesWithEncodingJSON(t *testing.T) {
	docs := []string{
		`{}`, `[]`, `null`, `true`, `false`, `0`, `-1.5e3`, `1023`, `1024`, `0.5`,
		`-0`, `-7`, `-1023`, `-1024`, `999999999999999`, `1000000000000000`, `-999999999999999`, `9007199254740993`, `1e2`, `-0.0`,
		`"plain"`, `"esc\"aped\\ \u00e9 \n"`, `"ünïcödé"`,
		`{"a": 1, "b": [1, 2, {"c": null}], "d": {"e": "f"}}`,
		`{"dup": 1, "dup": 2}`,
		`[{"id": "n1", "x": 1}, {"id": "n2", "x": 2}, {"x": 3, "id": "n3"}, {"i\"d": 4}]`,
		` { "spaced" : [ 1 , 2 ] } `,
		`[{"a\"b": 1, "c\\": 2}, {"a\"b": 3, "c\\": 4}]`,
		`[{"ascii": "x"}, {"ascii": "ünï"}, {"ünï": "\u00e9"}]`,
		`{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17}`,
	}
	for _, d := range docs {
		v, err := ParseJSON([]byte(d))
		if err != nil {
			t.Errorf("ParseJSON(%s): %v", d, err)
			continue
		}
		got, err := JSONValue(v)
		if err != nil {
			t.Errorf("JSONValue(%s): %v", d, err)
			continue
		}
		var want any
		if err := json.Unmarshal([]byte(d), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ParseJSON(%s) = %#v, want %#v", d, got, want)
		}
	}
}

// TestParseJSONKeepsTheSignOfZero checks what the comparison above cannot
// see (-0 == 0): a negative zero stays negative, as encoding/json reads it,
// since 1/-0 is -Inf and 1/0 is +Inf.
func TestParseJSONKeepsTheSignOfZero(t *testing.T) {
	tests := []struct {
		doc string
		neg bool
	}{
		{doc: `0`}, {doc: `-0`, neg: true}, {doc: `0.0`}, {doc: `-0.0`, neg: true}, {doc: `-0e5`, neg: true},
		{doc: `-1e-400`, neg: true}, {doc: `1e-400`}, {doc: `-0.000`, neg: true},
	}
	for _, tt := range tests {
		v, err := ParseJSON([]byte(tt.doc))
		if err != nil {
			t.Fatalf("ParseJSON(%s): %v", tt.doc, err)
		}
		var want float64
		if err := json.Unmarshal([]byte(tt.doc), &want); err != nil {
			t.Fatal(err)
		}
		got, ok := v.(types.Double)
		if !ok || float64(got) != 0 || math.Signbit(float64(got)) != tt.neg || math.Signbit(want) != tt.neg {
			t.Errorf("ParseJSON(%s) = %v (negative %v), encoding/json negative %v; want negative %v", tt.doc, v, ok && math.Signbit(float64(got)), math.Signbit(want), tt.neg)
		}
	}
}

func TestParseJSONRefusesBadInput(t *testing.T) {
	for _, d := range []string{``, `{`, `[1,`, `{"a" 1}`, `{"a":1,}`, `tru`, `"unterminated`, "\"ctl\x01\"", `1 2`, `{"a":1}x`, `-`, `1e999`, `[{"a\"b":1},{"a"b":2}]`, `[{"c\\":1},{"c\":2}]`, strings.Repeat("[", 500)} {
		if _, err := ParseJSON([]byte(d)); err == nil {
			t.Errorf("ParseJSON(%q) accepted bad input", d)
		}
	}
}

func FuzzParseJSON(f *testing.F) {
	f.Add(`{"a":[1,"x",{"b":null}],"c":true}`)
	f.Add(`[{"id":"a"},{"id":"b"}]`)
	f.Fuzz(func(t *testing.T, d string) {
		var want any
		werr := json.Unmarshal([]byte(d), &want)
		v, err := ParseJSON([]byte(d))
		if (err == nil) != (werr == nil) {
			// encoding/json accepts deeper nesting; both refusing or
			// both accepting is all that matters otherwise.
			if werr == nil && strings.Count(d, "[")+strings.Count(d, "{") > maxJSONDepth {
				return
			}
			t.Fatalf("ParseJSON(%q) err=%v, encoding/json err=%v", d, err, werr)
		}
		if err != nil {
			return
		}
		got, err := JSONValue(v)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ParseJSON(%q) = %#v, want %#v", d, got, want)
		}
	})
}

// benchState is the state of the evaluators' BenchmarkEngine observation:
// a rate limiter with 3 nodes and 100 keys.
func benchState() map[string]any {
	nodes := []any{}
	for i := range 3 {
		nodes = append(nodes, map[string]any{"id": fmt.Sprint("n", i), "state": "up", "reachable": true, "p99_ms": 12.5, "clock_skew_ms": 3.0, "counted": 1000.0})
	}
	keys := []any{}
	for i := range 100 {
		keys = append(keys, map[string]any{"key": fmt.Sprint("user:", i), "count": 10.0, "limit": 100.0, "remaining": 90.0, "rate": 5.0})
	}
	return map[string]any{"redis": map[string]any{"reachable": true, "ping_ms": 0.4}, "nodes": nodes, "keys": keys}
}

// BenchmarkParseJSON decodes a rate limiter state of 3 nodes and 100 keys.
func BenchmarkParseJSON(b *testing.B) {
	doc, err := json.Marshal(benchState())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseJSON(doc); err != nil {
			b.Fatal(err)
		}
	}
}
