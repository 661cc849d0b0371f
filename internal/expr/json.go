package expr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// maxJSONDepth bounds nesting, so hostile data cannot exhaust the stack.
const maxJSONDepth = 200

// ParseJSON decodes a JSON document straight into CEL values (objects as
// maps with string keys, arrays as lists, every number a double), without
// the intermediate map[string]any of encoding/json: a document is decoded
// once and then read by every expression over it, and decoding is most of
// the cost of an evaluation. The result is immutable and safe for
// concurrent use. It accepts what encoding/json accepts, except documents
// nested deeper than 200 levels.
func ParseJSON(b []byte) (Value, error) {
	// One copy of the document as a string: every string without escapes
	// is then a substring of it instead of an allocation of its own.
	p := jsonParser{b: b, doc: string(b)}
	// Every object has a '{' and every field a ':', so their counts
	// (higher only when strings contain them) size the first chunks; the
	// cap bounds what a hostile document can make us allocate up front.
	if n := bytes.Count(b, []byte{'{'}); n > 0 {
		p.objs = make([]object, 0, min(n, maxArenaChunk))
	}
	if n := bytes.Count(b, []byte{':'}); n > 0 {
		p.fieldArena = make([]field, 0, min(n, maxArenaChunk))
	}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.b) {
		return nil, p.errorf("trailing data")
	}
	return v, nil
}

type jsonParser struct {
	b   []byte
	doc string // b as a string, for substrings
	i   int
	// fields is a stack of the fields of the objects being
	// parsed, so each object gets exactly sized slices.
	fields []field
	// elems is a stack of the elements of the arrays being parsed.
	elems []ref.Val
	// last holds, per depth, the fields of the object parsed last:
	// objects in a list share their layout, so a name is usually the one
	// at the same position in the previous object.
	last [][]field
	// oddNames is set once a field name containing a backslash or a
	// quote was read: such a name cannot be a hint (see hint), and until
	// one is seen no hint needs checking.
	oddNames bool
	// objs and fieldArena are chunks that the objects of the document and
	// their fields are carved from: a document has hundreds of small
	// objects that all live as long as the decoded value, so allocating
	// them a chunk at a time saves two allocations per object.
	objs       []object
	fieldArena []field
}

// Chunk sizes of the parser's arenas once the first chunk is full: they
// double from min to max, so a large document allocates few chunks.
const (
	minArenaChunk = 16
	maxArenaChunk = 1024
)

// newObject returns an object over a copy of fields, carved from the
// parser's chunks.
func (p *jsonParser) newObject(fields []field) *object {
	var own []field
	if n := len(fields); n > 0 {
		if cap(p.fieldArena)-len(p.fieldArena) < n {
			p.fieldArena = make([]field, 0, max(n, nextChunk(cap(p.fieldArena))))
		}
		// The full slice expression caps the object's fields, so nothing
		// can append into the next object's.
		own = p.fieldArena[len(p.fieldArena) : len(p.fieldArena)+n : len(p.fieldArena)+n]
		p.fieldArena = p.fieldArena[:len(p.fieldArena)+n]
		copy(own, fields)
	}
	if len(p.objs) == cap(p.objs) {
		p.objs = make([]object, 0, nextChunk(cap(p.objs)))
	}
	p.objs = p.objs[:len(p.objs)+1]
	o := &p.objs[len(p.objs)-1]
	o.init(own)
	return o
}

// nextChunk is the size of the chunk after one of size n.
func nextChunk(n int) int { return min(max(2*n, minArenaChunk), maxArenaChunk) }

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("json at offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *jsonParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (ref.Val, error) {
	if depth > maxJSONDepth {
		return nil, p.errorf("nested too deeply")
	}
	p.space()
	if p.i >= len(p.b) {
		return nil, p.errorf("unexpected end")
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return types.String(s), nil
	case c == 't':
		return p.literal("true", types.True)
	case c == 'f':
		return p.literal("false", types.False)
	case c == 'n':
		return p.literal("null", types.NullValue)
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return nil, p.errorf("unexpected %q", c)
	}
}

func (p *jsonParser) literal(word string, v ref.Val) (ref.Val, error) {
	if len(p.b)-p.i < len(word) || string(p.b[p.i:p.i+len(word)]) != word {
		return nil, p.errorf("invalid literal")
	}
	p.i += len(word)
	return v, nil
}

func (p *jsonParser) object(depth int) (ref.Val, error) {
	p.i++ // {
	base := len(p.fields)
	p.space()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return p.newObject(nil), nil
	}
	for {
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return nil, p.errorf("expected a string key")
		}
		k, err := p.name(p.hint(depth, len(p.fields)-base))
		if err != nil {
			return nil, err
		}
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return nil, p.errorf("expected ':'")
		}
		p.i++
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if i := p.fieldIndex(base, k); i >= 0 {
			p.fields[i].val = v // a repeated key: the last wins, as in encoding/json
		} else {
			p.fields = append(p.fields, field{name: k, val: v})
		}
		p.space()
		if p.i >= len(p.b) {
			return nil, p.errorf("unterminated object")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			o := p.newObject(p.fields[base:])
			// No clear: the stack lives only as long as the parse, and
			// all it still points to is part of the result.
			p.fields = p.fields[:base]
			for len(p.last) <= depth {
				p.last = append(p.last, nil)
			}
			p.last[depth] = o.fields
			return o, nil
		default:
			return nil, p.errorf("expected ',' or '}'")
		}
	}
}

func (p *jsonParser) array(depth int) (ref.Val, error) {
	p.i++ // [
	base := len(p.elems)
	p.space()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return types.NewRefValList(types.DefaultTypeAdapter, []ref.Val{}), nil
	}
	for {
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		p.elems = append(p.elems, v)
		p.space()
		if p.i >= len(p.b) {
			return nil, p.errorf("unterminated array")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			elems := slices.Clone(p.elems[base:])
			p.elems = p.elems[:base] // no clear, as for fields
			return types.NewRefValList(types.DefaultTypeAdapter, elems), nil
		default:
			return nil, p.errorf("expected ',' or ']'")
		}
	}
}

// fieldIndex is the index in p.fields of the field named k of the object
// whose fields start at base, or -1.
func (p *jsonParser) fieldIndex(base int, k string) int {
	for i := base; i < len(p.fields); i++ {
		if p.fields[i].name == k {
			return i
		}
	}
	return -1
}

// hint is the name of field i of the last object at depth, or "".
func (p *jsonParser) hint(depth, i int) string {
	if depth < len(p.last) && i < len(p.last[depth]) {
		n := p.last[depth][i].name
		// Only a name that needs no escaping compares equal to its raw
		// bytes.
		if !p.oddNames || strings.IndexByte(n, '\\') < 0 && strings.IndexByte(n, '"') < 0 {
			return n
		}
	}
	return ""
}

// name reads a field name; hint is the likely name. Objects in a list
// share their layout, so the hint saves scanning the name.
func (p *jsonParser) name(hint string) (string, error) {
	start := p.i
	if n := len(hint); n > 0 && start+n+1 < len(p.b) && p.b[start+n+1] == '"' && string(p.b[start+1:start+n+1]) == hint {
		p.i = start + n + 2
		return hint, nil
	}
	s, err := p.str()
	if err != nil {
		return "", err
	}
	if strings.IndexByte(s, '\\') >= 0 || strings.IndexByte(s, '"') >= 0 {
		p.oddNames = true
	}
	return s, nil
}

// str reads a string; strings with escapes go through encoding/json.
func (p *jsonParser) str() (string, error) {
	start := p.i
	p.i++ // "
	escaped, ascii := false, true
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '\\':
			escaped = true
			p.i += 2
			continue
		case c == '"':
			p.i++
			raw := p.b[start:p.i]
			if !escaped && (ascii || utf8.Valid(raw)) {
				return p.doc[start+1 : p.i-1], nil
			}
			// Escapes, or invalid UTF-8 (replaced by U+FFFD, as
			// encoding/json does).
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return "", p.errorf("invalid string: %v", err)
			}
			return s, nil
		case c < 0x20:
			return "", p.errorf("control character in string")
		case c >= utf8.RuneSelf:
			ascii = false
		}
		p.i++
	}
	return "", p.errorf("unterminated string")
}

func (p *jsonParser) number() (ref.Val, error) {
	start := p.i
	digits := func() int {
		n := 0
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	// The JSON grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
	if p.b[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.b) && p.b[p.i] == '0':
		p.i++
	case digits() == 0:
		return nil, p.errorf("invalid number")
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return nil, p.errorf("invalid number")
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return nil, p.errorf("invalid number")
		}
	}
	if v, ok := smallInteger(p.b[start:p.i]); ok {
		return v, nil
	}
	f, err := strconv.ParseFloat(p.doc[start:p.i], 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return nil, p.errorf("number %s out of range", p.b[start:p.i])
		}
		return nil, p.errorf("invalid number %s", p.b[start:p.i])
	}
	if f >= 0 && f < float64(len(smallDoubles)) && f == float64(int(f)) && !math.Signbit(f) {
		return smallDoubles[int(f)], nil
	}
	return types.Double(f), nil
}

// smallInteger returns the value of num, a valid JSON number, when it is a
// plain integer of at most 15 digits: counts, limits and sizes mostly are,
// and such an integer is exact in a double, so converting it gives what
// strconv.ParseFloat would, without its general parsing.
func smallInteger(num []byte) (ref.Val, bool) {
	neg := num[0] == '-'
	digits := num
	if neg {
		digits = num[1:]
	}
	if len(digits) > 15 {
		return nil, false
	}
	var n int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return nil, false // a fraction or an exponent
		}
		n = n*10 + int64(c-'0')
	}
	switch {
	case n < int64(len(smallDoubles)) && !neg:
		return smallDoubles[n], true
	case neg:
		// -0 stays negative zero, as strconv.ParseFloat reads it: 1/-0
		// is -Inf.
		return types.Double(-float64(n)), true
	}
	return types.Double(float64(n)), true
}

// smallDoubles are the CEL values of 0, 1, ... 1023, boxed once: counts and
// limits are mostly small integers. Read-only.
var smallDoubles = func() [1024]ref.Val {
	var a [1024]ref.Val
	for i := range a {
		a[i] = types.Double(float64(i))
	}
	return a
}()
