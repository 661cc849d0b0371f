package schemas

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// DefaultPrefix is the first token of every Operator NATS subject.
const DefaultPrefix = "operator"

// JetStream stream names.
const (
	StreamObservations = "OPERATOR_OBSERVATIONS"
	StreamViolations   = "OPERATOR_VIOLATIONS"
	StreamActions      = "OPERATOR_ACTIONS"
	StreamDiagnoses    = "OPERATOR_DIAGNOSES"
)

// KV bucket names.
const (
	BucketEvaluatorState = "operator_evaluator_state"
	BucketActuatorLedger = "operator_actuator_ledger"
	BucketControl        = "operator_control"
)

// ErrInvalidToken is returned (wrapped) when a value cannot be used as a NATS
// subject token.
var ErrInvalidToken = errors.New("invalid subject token")

// ValidToken reports whether s can be one token of a NATS subject: not empty,
// and free of '.', '*', '>' and whitespace or control characters.
func ValidToken(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty", ErrInvalidToken)
	}
	for _, r := range s {
		switch {
		case r == '.' || r == '*' || r == '>':
			return fmt.Errorf("%w: %q contains %q", ErrInvalidToken, s, r)
		case unicode.IsSpace(r) || unicode.IsControl(r):
			return fmt.Errorf("%w: %q contains whitespace or a control character", ErrInvalidToken, s)
		}
	}
	return nil
}

// Subjects builds NATS subjects under one prefix. The zero value uses
// DefaultPrefix. Every builder refuses unsafe tokens, so a subject name taken
// from data can never widen a subscription or land on another subject.
type Subjects struct {
	// Prefix is the first token(s), e.g. "operator" or "staging.operator".
	Prefix string
}

func (s Subjects) prefix() string {
	if s.Prefix == "" {
		return DefaultPrefix
	}
	return s.Prefix
}

// Validate checks the prefix: dot-separated valid tokens.
func (s Subjects) Validate() error {
	for _, t := range strings.Split(s.prefix(), ".") {
		if err := ValidToken(t); err != nil {
			return fmt.Errorf("subject prefix %q: %w", s.prefix(), err)
		}
	}
	return nil
}

func (s Subjects) build(kind string, tokens ...string) (string, error) {
	for _, t := range tokens {
		if err := ValidToken(t); err != nil {
			return "", fmt.Errorf("%s subject: %w", kind, err)
		}
	}
	return s.prefix() + "." + kind + "." + strings.Join(tokens, "."), nil
}

func (s Subjects) wildcard(kind, subject string) (string, error) {
	b, err := s.build(kind, subject)
	if err != nil {
		return "", err
	}
	return b + ".>", nil
}

// Observation returns <prefix>.obs.<subject>.<instance>.
func (s Subjects) Observation(subject, instance string) (string, error) {
	return s.build("obs", subject, instance)
}

// Violation returns <prefix>.violation.<subject>.<instance>.<rule>.
func (s Subjects) Violation(subject, instance, rule string) (string, error) {
	return s.build("violation", subject, instance, rule)
}

// ActionRequested returns <prefix>.action.requested.<subject>.<instance>.
func (s Subjects) ActionRequested(subject, instance string) (string, error) {
	return s.build("action.requested", subject, instance)
}

// ActionCompleted returns <prefix>.action.completed.<subject>.<instance>.
func (s Subjects) ActionCompleted(subject, instance string) (string, error) {
	return s.build("action.completed", subject, instance)
}

// ActionVerified returns <prefix>.action.verified.<subject>.<instance>.
func (s Subjects) ActionVerified(subject, instance string) (string, error) {
	return s.build("action.verified", subject, instance)
}

// Diagnosis returns <prefix>.diagnosis.<subject>.<instance>.
func (s Subjects) Diagnosis(subject, instance string) (string, error) {
	return s.build("diagnosis", subject, instance)
}

// All returns the wildcard that matches every Operator subject: <prefix>.>.
func (s Subjects) All() string { return s.prefix() + ".>" }

// Observations returns the filter for one subject's observations, or for all
// of them when subject is empty.
func (s Subjects) Observations(subject string) (string, error) {
	if subject == "" {
		return s.prefix() + ".obs.>", nil
	}
	return s.wildcard("obs", subject)
}

// Violations returns the filter for one subject's violations, or for all
// of them when subject is empty.
func (s Subjects) Violations(subject string) (string, error) {
	if subject == "" {
		return s.prefix() + ".violation.>", nil
	}
	return s.wildcard("violation", subject)
}

// Diagnoses returns the filter for one subject's diagnoses, or for all of
// them when subject is empty.
func (s Subjects) Diagnoses(subject string) (string, error) {
	if subject == "" {
		return s.prefix() + ".diagnosis.>", nil
	}
	return s.wildcard("diagnosis", subject)
}

// ActionRequests returns the filter for one subject's action requests, or for
// all of them when subject is empty.
func (s Subjects) ActionRequests(subject string) (string, error) {
	if subject == "" {
		return s.prefix() + ".action.requested.>", nil
	}
	return s.wildcard("action.requested", subject)
}

// StreamSubjects returns the subjects each stream captures.
func (s Subjects) StreamSubjects() map[string][]string {
	p := s.prefix()
	return map[string][]string{
		StreamObservations: {p + ".obs.>"},
		StreamViolations:   {p + ".violation.>"},
		StreamActions:      {p + ".action.>"},
		StreamDiagnoses:    {p + ".diagnosis.>"},
	}
}

// StreamFor returns the stream that stores events of the CloudEvents type t.
func StreamFor(t string) (string, bool) {
	switch t {
	case TypeObservation:
		return StreamObservations, true
	case TypeViolation:
		return StreamViolations, true
	case TypeActionRequested, TypeActionCompleted, TypeActionVerified:
		return StreamActions, true
	case TypeDiagnosis:
		return StreamDiagnoses, true
	}
	return "", false
}

// DeriveID returns a deterministic event id from its parts, so a retried or
// replayed publish of the same logical event carries the same id and JetStream
// deduplicates it. Parts are length-prefixed so ("ab","c") ≠ ("a","bc").
func DeriveID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
