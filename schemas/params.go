package schemas

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
)

// FormatParams renders action params for people, in key order, as
// {k=v ...}: the one rendering every log line, result reason and command
// uses. A string is bare when that cannot be misread (no space, quote,
// brace or '=', not empty, and not readable as a number, bool or null) and
// JSON-quoted otherwise; every other value is JSON. Empty params render as
// "".
func FormatParams(p map[string]any) string {
	if len(p) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(p)) {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(formatValue(p[k]))
	}
	b.WriteByte('}')
	return b.String()
}

func formatValue(v any) string {
	if s, ok := v.(string); ok && bare(s) {
		return s
	}
	out, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(out)
}

// bare reports whether s reads back as the same string without quotes.
func bare(s string) bool {
	if s == "" || strings.ContainsAny(s, " \"'{}=\\") {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
	}
	var v any
	return json.Unmarshal([]byte(s), &v) != nil // "5", "true", "null" need quotes
}
