package ratelimiter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/operator-dev/operator/ratelimiter/api"
)

// sameAsGeneral checks that the check endpoint's hand-written decoder
// answers body exactly as the general decoder does: the same request, or
// the same refusal in the same words.
func sameAsGeneral(t testing.TB, body []byte) {
	fast, ferr := decodeCheck(body)
	slow, serr := decodeCheckRequest(bytes.NewReader(body))
	if fmt.Sprint(ferr) != fmt.Sprint(serr) || fast != slow {
		t.Errorf("body %q: fast %+v, %v; general %+v, %v", body, fast, ferr, slow, serr)
	}
}

func TestDecodeCheckMatchesTheGeneralDecoder(t *testing.T) {
	for _, body := range []string{
		`{"key":"user:42","cost":1}`,
		`{"key":"user:42"}`,
		`{"cost":3,"key":"user:42"}`,
		" { \"key\" : \"a\" ,\n \"cost\" : 12 } \n",
		`{"key":"tab\there"}`,
		`{"key":"esc\"aped"}`,
		`{"key":"é:ünïcode"}`,
		"{\"key\":\"bad\xffutf8\"}",
		`{"key":""}`,
		`{"key":"a","cost":0}`,
		`{"key":"a","cost":-1}`,
		`{"key":"a","cost":01}`,
		`{"key":"a","cost":1.5}`,
		`{"key":"a","cost":"1"}`,
		`{"key":"a","cost":99999999999999999999}`,
		`{"key":"a","key":"b"}`,
		`{"key":"a","extra":1}`,
		`{"cost":1}`,
		`{"key":5}`,
		`{"key":"a"} trailing`,
		`{"key":"a"}{"key":"b"}`,
		`["key","a"]`,
		``,
		`{`,
		`{"key":"` + string(bytes.Repeat([]byte("k"), 300)) + `"}`,
		`{"key":"a b"}`,
	} {
		sameAsGeneral(t, []byte(body))
	}
}

// FuzzDecodeCheck: whatever the body, the hand-written decoder agrees with
// the general one.
func FuzzDecodeCheck(f *testing.F) {
	for _, s := range []string{`{"key":"user:42","cost":1}`, `{"cost":2,"key":"k"}`, `{"key":"a\u0041"}`, `{"key":"a","cost":1e2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { sameAsGeneral(t, body) })
}

func TestAppendDecisionJSONMatchesEncodingJSON(t *testing.T) {
	for _, d := range []api.Decision{
		{Allowed: true, Key: "user:42", Limit: 100, Remaining: 99, WindowMS: 60000, Algorithm: "fixed_window", ResetAfterMS: 1200, Node: "n1"},
		{Key: "a<b>&c", Limit: 1, WindowMS: 1000, Algorithm: "gcra", RetryAfterMS: 5, Blocked: true},
		{Allowed: true, Key: "quote\"back\\slash\tctl", Degraded: true, Node: "n-ü"},
		{Key: "line\u2028sep", Remaining: -1},
	} {
		want, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendDecisionJSON(nil, d); !bytes.Equal(got, want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}

func BenchmarkDecodeCheck(b *testing.B) {
	body := []byte(`{"key":"bench:123","cost":1}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeCheck(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendDecisionJSON(b *testing.B) {
	d := api.Decision{Allowed: true, Key: "bench:123", Limit: 100, Remaining: 99, WindowMS: 60000, Algorithm: "fixed_window", ResetAfterMS: 1200, Node: "n1"}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendDecisionJSON(buf[:0], d)
	}
}
