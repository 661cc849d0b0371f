package ratelimiter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/operator-dev/operator/ratelimiter/api"
)

// decodeJSON reads exactly one JSON object from body into v, refusing unknown
// fields, trailing data and bodies over api.MaxBodyBytes. Errors wrap
// ErrInvalid and say what is wrong in words a caller can act on.
func decodeJSON(body io.Reader, v any) error {
	data, err := io.ReadAll(io.LimitReader(body, api.MaxBodyBytes+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return invalidf("request body exceeds %d bytes", api.MaxBodyBytes)
		}
		return invalidf("cannot read request body: %v", err)
	}
	if len(data) > api.MaxBodyBytes {
		return invalidf("request body exceeds %d bytes", api.MaxBodyBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return invalidf("request body is empty; send a JSON object")
	}
	if bytes.TrimSpace(data)[0] != '{' {
		return invalidf("request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describeJSONError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalidf("request body must hold a single JSON object, found data after it")
	}
	return nil
}

func describeJSONError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return invalidf("malformed JSON at byte %d: %v", syn.Offset, syn)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalidf("malformed JSON: unexpected end of input")
	case errors.As(err, &typ):
		if typ.Field != "" {
			return invalidf("field %q must be %s, not %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
		}
		return invalidf("request body must be a JSON object, not %s", typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return invalidf("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return invalidf("malformed JSON: %v", err)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "int", "int64", "uint64":
		return "an integer"
	case "bool":
		return "a boolean"
	}
	return "a " + goKind
}

// checkBody is the wire form of api.CheckRequest with presence tracking.
type checkBody struct {
	Key  *string         `json:"key"`
	Cost json.RawMessage `json:"cost"`
}

// decodeCheckRequest decodes and validates a /v1/check body. A missing cost
// means 1. Whether cost fits the key's limit is checked later, against the
// configured limit.
func decodeCheckRequest(body io.Reader) (api.CheckRequest, error) {
	var b checkBody
	if err := decodeJSON(body, &b); err != nil {
		return api.CheckRequest{}, err
	}
	if b.Key == nil {
		return api.CheckRequest{}, invalidf("field \"key\" is required")
	}
	if err := ValidateKey(*b.Key); err != nil {
		return api.CheckRequest{}, err
	}
	cost, err := parseCost(b.Cost)
	if err != nil {
		return api.CheckRequest{}, err
	}
	return api.CheckRequest{Key: *b.Key, Cost: cost}, nil
}

func parseCost(raw json.RawMessage) (int64, error) {
	if raw == nil {
		return 1, nil
	}
	s := string(raw)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		if _, ferr := strconv.ParseFloat(s, 64); ferr == nil {
			return 0, invalidf("field \"cost\" must be a positive integer, not %s", s)
		}
		return 0, invalidf("field \"cost\" must be a positive integer, not %s", truncate(s, 32))
	}
	if n < 1 {
		return 0, invalidf("field \"cost\" must be at least 1, not %d", n)
	}
	return n, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s...", s[:n])
}
