package statuspage

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The streams and buckets the page reads, in cursor order. Each has a
// letter in the cursor.
const (
	posViolations   = iota // v: the violations stream
	posActions             // a: the actions stream
	posDiagnoses           // d: the diagnoses stream
	posObservations        // o: the observations stream, latest per instance
	posAlerts              // s: the evaluator's state bucket (revisions)
	posControl             // c: the control bucket (revisions)
	numPositions
)

// letters names each position in a cursor.
const letters = "vadosc"

// A Cursor is where a reader is in every stream the page reads: for each,
// the last sequence (a bucket's: revision) it has been sent. Reading from
// a cursor resumes each stream exactly after it. Its text form is
// "v<seq>.a<seq>.d<seq>.o<seq>.s<rev>.c<rev>", the id of every update and
// of every server-sent event.
type Cursor [numPositions]uint64

// String returns the text form.
func (c Cursor) String() string {
	var b strings.Builder
	for i, seq := range c {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteByte(letters[i])
		b.WriteString(strconv.FormatUint(seq, 10))
	}
	return b.String()
}

// ErrBadCursor is wrapped by ParseCursor's errors.
var ErrBadCursor = errors.New("bad cursor")

// ParseCursor reads the text form; every stream must be named, once.
func ParseCursor(s string) (Cursor, error) {
	var c Cursor
	var seen [numPositions]bool
	parts := strings.Split(s, ".")
	if len(parts) != numPositions {
		return c, fmt.Errorf("%w %q: want %d parts like v12.a3.d0.o40.s7.c1", ErrBadCursor, s, numPositions)
	}
	for _, p := range parts {
		if p == "" {
			return c, fmt.Errorf("%w %q: empty part", ErrBadCursor, s)
		}
		i := strings.IndexByte(letters, p[0])
		if i < 0 {
			return c, fmt.Errorf("%w %q: unknown stream %q", ErrBadCursor, s, p[:1])
		}
		if seen[i] {
			return c, fmt.Errorf("%w %q: stream %q given twice", ErrBadCursor, s, p[:1])
		}
		seen[i] = true
		n, err := strconv.ParseUint(p[1:], 10, 64)
		if err != nil {
			return c, fmt.Errorf("%w %q: sequence %q is not a number", ErrBadCursor, s, p[1:])
		}
		c[i] = n
	}
	return c, nil
}
