package ratelimiter

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecodeCheckRequest checks that decoding never panics, that every error
// is an ErrInvalid, and that every accepted request is valid and survives a
// round trip.
func FuzzDecodeCheckRequest(f *testing.F) {
	for _, seed := range []string{
		`{"key":"user:42","cost":1}`, `{"key":"a"}`, `{"key":""}`, `{"key":"a","cost":0}`,
		`{"key":"a","cost":1.5}`, `{"key":"a","cost":"1"}`, `{"key":"a","cost":9223372036854775808}`,
		`{"key":"a","extra":1}`, `[]`, `null`, `{"key":"a"} x`, `{"key":"\u0000"}`, `{"key":"{x}"}`,
		`{"key":"a","cost":1e3}`, `{"key":"a","cost":-0}`, `{"key":"a","cost":null}`, `{"KEY":"a"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := decodeCheckRequest(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if ValidateKey(req.Key) != nil || req.Cost < 1 {
			t.Fatalf("accepted an invalid request %+v from %q", req, data)
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeCheckRequest(bytes.NewReader(again))
		if err != nil || back != req {
			t.Fatalf("round trip of %+v: %+v, %v", req, back, err)
		}
	})
}
