package ratelimiter

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/operator-dev/operator/ratelimiter/api"
)

// storedLimit is the JSON value of a field in the limits hash.
type storedLimit struct {
	Limit       int64     `json:"limit"`
	WindowMS    int64     `json:"window_ms"`
	Algorithm   Algorithm `json:"algorithm"`
	UpdatedAtMS int64     `json:"updated_at_ms"`
}

// rule is one configured pattern.
type rule struct {
	pattern   string
	limit     Limit
	updatedAt time.Time
}

// limitTable is an immutable snapshot of the configured limits. Lookups take
// the exact key first, then the longest matching prefix, then the default.
type limitTable struct {
	version  int64
	exact    map[string]rule
	prefixes []rule // longest prefix first
	def      Limit
	loadedAt time.Time // wall clock of the node, for staleness only
}

// newLimitTable builds a table from the limits hash. Entries that do not
// parse or validate are returned as errors and left out; the rest apply.
func newLimitTable(version int64, def Limit, fields map[string]string) (*limitTable, []error) {
	t := &limitTable{version: version, exact: map[string]rule{}, def: def}
	var errs []error
	for pattern, raw := range fields {
		var s storedLimit
		if err := json.Unmarshal([]byte(raw), &s); err != nil {
			errs = append(errs, fmt.Errorf("limit %q: %w", pattern, err))
			continue
		}
		r := rule{
			pattern:   pattern,
			limit:     Limit{Limit: s.Limit, Window: time.Duration(s.WindowMS) * time.Millisecond, Algorithm: s.Algorithm},
			updatedAt: time.UnixMilli(s.UpdatedAtMS).UTC(),
		}
		if err := ValidatePattern(pattern); err != nil {
			errs = append(errs, fmt.Errorf("limit %q: %w", pattern, err))
			continue
		}
		if err := r.limit.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("limit %q: %w", pattern, err))
			continue
		}
		if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
			r.pattern = prefix
			t.prefixes = append(t.prefixes, r)
		} else {
			t.exact[pattern] = r
		}
	}
	slices.SortFunc(t.prefixes, func(a, b rule) int {
		if c := cmp.Compare(len(b.pattern), len(a.pattern)); c != 0 {
			return c
		}
		return strings.Compare(a.pattern, b.pattern)
	})
	return t, errs
}

// lookup returns the limit for key and the pattern that matched it, "" for
// the default.
func (t *limitTable) lookup(key string) (Limit, string) {
	if r, ok := t.exact[key]; ok {
		return r.limit, key
	}
	for _, r := range t.prefixes {
		if strings.HasPrefix(key, r.pattern) {
			return r.limit, r.pattern + "*"
		}
	}
	return t.def, ""
}

// list returns the configured limits sorted by pattern.
func (t *limitTable) list() []api.Limit {
	out := make([]api.Limit, 0, len(t.exact)+len(t.prefixes))
	add := func(pattern string, r rule) {
		out = append(out, api.Limit{
			Pattern:   pattern,
			Limit:     r.limit.Limit,
			WindowMS:  r.limit.Window.Milliseconds(),
			Algorithm: string(r.limit.Algorithm),
			UpdatedAt: r.updatedAt,
		})
	}
	for p, r := range t.exact {
		add(p, r)
	}
	for _, r := range t.prefixes {
		add(r.pattern+"*", r)
	}
	slices.SortFunc(out, func(a, b api.Limit) int { return strings.Compare(a.Pattern, b.Pattern) })
	return out
}
