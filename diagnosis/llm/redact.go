package llm

import (
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// A redactor hides the names in what is sent to the model behind
// placeholders and puts them back in what comes back. It holds the mapping
// of one diagnosis and is not safe for concurrent use. A redactor that is
// off returns everything unchanged.
//
// What counts as a name (see the package doc):
//   - the violation's instance and key, registered first (<k1>, <k2>);
//   - every string under a field that names something (id, key, node,
//     instance, address, host, pattern, ...: see nameField);
//   - every other word-like segment of a string that has the shape of an
//     identifier: a digit, or one of : @ . * in it (node-1, user:42,
//     10.1.2.3:6379, redis.internal, user:*).
//
// Numbers, times, durations, numbers with a unit (250ms, 5MB) and API
// versions (v1) are never names. Field names (JSON keys shaped like
// identifiers) are kept so the model can read the data, unless they are a
// name found elsewhere; a key that is not shaped like a field name (a map
// keyed by node) is treated as a string.
// Every form of a name that a path or a query may carry (URL-escaped) maps
// to the same placeholder.
type redactor struct {
	on bool
	// byName maps a name, and its escaped forms, to its placeholder.
	byName map[string]string
	// names[i] is the original behind placeholder <k{i+1}>.
	names []string
	// multi are the names that span several segments, longest first.
	multi []string
}

func newRedactor(on bool) *redactor {
	return &redactor{on: on, byName: map[string]string{}}
}

var placeholderRE = regexp.MustCompile(`<k[1-9][0-9]*>`)

// fieldNameRE is the shape of a JSON key kept as it is.
var fieldNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// nameFields are the fields whose string values are names whatever their
// shape.
var nameFields = []string{"id", "ids", "key", "keys", "instance", "node", "nodes", "store", "stores",
	"address", "addr", "host", "hostname", "peer", "pattern", "target", "leader", "name", "url", "endpoint"}

var nameFieldSuffixes = []string{"_id", "_ids", "_key", "_addr", "_address", "_host", "_url", "_instance"}

func nameField(field string) bool {
	f := strings.ToLower(field)
	if slices.Contains(nameFields, f) {
		return true
	}
	for _, s := range nameFieldSuffixes {
		if strings.HasSuffix(f, s) {
			return true
		}
	}
	return false
}

// register gives name a placeholder unless it has one or is not a name.
func (r *redactor) register(name string) {
	if !r.on || name == "" || plain(name) || placeholderRE.MatchString(name) {
		return
	}
	if _, ok := r.byName[name]; ok {
		return
	}
	r.names = append(r.names, name)
	p := "<k" + strconv.Itoa(len(r.names)) + ">"
	for _, form := range []string{name, url.PathEscape(name), url.QueryEscape(name)} {
		if _, ok := r.byName[form]; ok {
			continue
		}
		r.byName[form] = p
		if strings.IndexFunc(form, isSep) >= 0 {
			r.multi = append(r.multi, form)
			slices.SortStableFunc(r.multi, func(a, b string) int { return len(b) - len(a) })
		}
	}
}

// collect registers the names a decoded JSON value holds under name
// fields, in a stable order (object keys sorted) so placeholders are
// numbered the same for the same data.
func (r *redactor) collect(v any, field string) {
	switch x := v.(type) {
	case string:
		if nameField(field) {
			r.register(x)
		}
	case []any:
		for _, e := range x {
			r.collect(e, field)
		}
	case map[string]any:
		for _, k := range sortedKeys(x) {
			r.collect(x[k], k)
		}
	}
}

// value returns a decoded JSON value with its names replaced.
func (r *redactor) value(v any) any {
	if !r.on {
		return v
	}
	switch x := v.(type) {
	case string:
		return r.text(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.value(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for _, k := range sortedKeys(x) {
			nk := k
			if p, ok := r.byName[k]; ok {
				nk = p
			} else if !fieldNameRE.MatchString(k) {
				nk = r.text(k)
			}
			out[nk] = r.value(x[k])
		}
		return out
	}
	return v
}

// text returns s with its names replaced.
func (r *redactor) text(s string) string {
	if !r.on || s == "" {
		return s
	}
	if p, ok := r.byName[s]; ok {
		return p
	}
	for _, m := range r.multi {
		s = strings.ReplaceAll(s, m, r.byName[m])
	}
	return mapSegments(s, r.segment)
}

// known returns s with only the names already registered replaced, for
// text that is not data (playbook causes, catalog descriptions): the names
// found in the data must not leak through it, but its own words are kept.
func (r *redactor) known(s string) string {
	if !r.on || s == "" {
		return s
	}
	for _, m := range r.multi {
		s = strings.ReplaceAll(s, m, r.byName[m])
	}
	return mapSegments(s, func(seg string) string {
		lead, core, trail := trim(seg)
		if p, ok := r.byName[core]; ok {
			return lead + p + trail
		}
		return seg
	})
}

// mapSegments replaces each maximal run of non-separators of s with f of it.
func mapSegments(s string, f func(string) string) string {
	var b strings.Builder
	start := -1
	for i, c := range s {
		if !isSep(c) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			b.WriteString(f(s[start:i]))
			start = -1
		}
		b.WriteRune(c)
	}
	if start >= 0 {
		b.WriteString(f(s[start:]))
	}
	return b.String()
}

// segment replaces one segment if it is a name.
func (r *redactor) segment(seg string) string {
	if placeholderRE.MatchString(seg) {
		return seg
	}
	if p, ok := r.byName[seg]; ok {
		return p
	}
	lead, core, trail := trim(seg)
	if core == "" || placeholderRE.MatchString(core) {
		return seg
	}
	if _, ok := r.byName[core]; !ok && !nameShaped(core) {
		return seg
	}
	r.register(core)
	p, ok := r.byName[core]
	if !ok {
		return seg
	}
	return lead + p + trail
}

// restore returns s with every placeholder put back.
func (r *redactor) restore(s string) string {
	if !r.on || len(r.names) == 0 {
		return s
	}
	return placeholderRE.ReplaceAllStringFunc(s, func(p string) string {
		i, err := strconv.Atoi(p[2 : len(p)-1])
		if err != nil || i < 1 || i > len(r.names) {
			return p
		}
		return r.names[i-1]
	})
}

// restoreValue returns a decoded JSON value with every placeholder put
// back, in keys and strings.
func (r *redactor) restoreValue(v any) any {
	if !r.on {
		return v
	}
	switch x := v.(type) {
	case string:
		return r.restore(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.restoreValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[r.restore(k)] = r.restoreValue(e)
		}
		return out
	}
	return v
}

// isSep separates the segments of a string: spaces and the punctuation of
// paths, queries, label matchers and JSON.
func isSep(c rune) bool {
	return unicode.IsSpace(c) || strings.ContainsRune("/?&=,;()[]{}\"'`|", c)
}

// trim splits the punctuation around a word from it.
func trim(seg string) (lead, core, trail string) {
	core = strings.TrimLeft(seg, "<(")
	lead = seg[:len(seg)-len(core)]
	c := strings.TrimRight(core, ".,:;!>)")
	return lead, c, core[len(c):]
}

var (
	numberWithUnitRE = regexp.MustCompile(`^[+-]?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?[A-Za-zµ%]{0,4}$`)
	versionRE        = regexp.MustCompile(`^v[0-9]+$`)
)

// plain reports whether s is a value that is never a name: a number (with
// or without a unit), a time, a duration or an API version.
func plain(s string) bool {
	if numberWithUnitRE.MatchString(s) || versionRE.MatchString(s) {
		return true
	}
	if _, err := time.ParseDuration(s); err == nil {
		return true
	}
	for _, layout := range []string{time.RFC3339Nano, time.DateOnly, time.TimeOnly} {
		if _, err := time.Parse(layout, s); err == nil {
			return true
		}
	}
	return false
}

// nameShaped reports whether a segment looks like an identifier rather
// than a word: it has a digit or one of : @ . * in it.
func nameShaped(s string) bool {
	if plain(s) {
		return false
	}
	return strings.ContainsAny(s, "0123456789:@.*")
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
