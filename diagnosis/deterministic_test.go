package diagnosis

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/operator-dev/operator/schemas"
)

func item(id, data string) schemas.EvidenceItem {
	return schemas.EvidenceItem{ID: id, Source: id, At: time.Unix(0, 0), Data: json.RawMessage(data)}
}

func failedItem(id string) schemas.EvidenceItem {
	return schemas.EvidenceItem{ID: id, Source: id, At: time.Unix(0, 0), Error: "connection refused"}
}

// TestDeterministic runs the test playbook's hypotheses over evidence sets
// and checks the ranking, the certainty, the citations and the suggestion.
func TestDeterministic(t *testing.T) {
	pb, cat := testPlaybook(t), testCatalog(t)
	deep := schemas.Violation{Subject: "toy", Instance: "i1", Rule: "queue_deep", Key: "orders"}
	tests := []struct {
		name      string
		violation schemas.Violation
		evidence  []schemas.EvidenceItem
		// want is "id certainty supports contradicts suggestion" per ranked
		// hypothesis.
		want []string
	}{
		{
			name:      "no consumer: certain, with the suggestion built from the violation",
			violation: deep,
			evidence: []schemas.EvidenceItem{item("recent", `{"last":{"depth":40},"all":[{"depth":40}]}`),
				item("queue", `{"consumers":0}`), item("consumers", `[]`)},
			want: []string{"consumers_gone certain consumers,queue - drain{queue=orders}"},
		},
		{
			name:      "consumers but a growing queue: a burst, and the consumers contradict the first",
			violation: deep,
			evidence: []schemas.EvidenceItem{item("recent", `{"last":{"depth":40},"all":[{"depth":10},{"depth":40}]}`),
				item("queue", `{"consumers":3}`), item("consumers", `[{"metric":{},"value":[0,"3"]}]`)},
			want: []string{"burst certain recent,queue - -"},
		},
		{
			name:      "the queue's API failed: its signals count neither way",
			violation: deep,
			evidence: []schemas.EvidenceItem{item("recent", `{"last":{"depth":40},"all":[{"depth":10},{"depth":40}]}`),
				failedItem("queue"), item("consumers", `[]`)},
			want: []string{"consumers_gone likely consumers - drain{queue=orders}", "burst likely recent - -"},
		},
		{
			name:      "mixed evidence: more support than contradiction ranks first",
			violation: deep,
			evidence: []schemas.EvidenceItem{item("recent", `{"last":{"depth":5},"all":[{"depth":10},{"depth":5}]}`),
				item("queue", `{"consumers":0}`), item("consumers", `[{"metric":{},"value":[0,"2"]}]`)},
			want: []string{"consumers_gone possible queue consumers drain{queue=orders}"},
		},
		{
			name:      "nothing fits: no hypothesis",
			violation: deep,
			evidence: []schemas.EvidenceItem{item("recent", `{"last":{"depth":5},"all":[{"depth":10},{"depth":5}]}`),
				failedItem("queue"), item("consumers", `[{"metric":{},"value":[0,"2"]}]`)},
			want: nil,
		},
		{
			name:      "a custom certainty rule reads failed evidence",
			violation: schemas.Violation{Subject: "toy", Instance: "i1", Rule: "observer_stale"},
			evidence:  []schemas.EvidenceItem{failedItem("recent")},
			want:      []string{"stale certain recent - -"},
		},
		{
			name:      "when keeps hypotheses to their rules",
			violation: schemas.Violation{Subject: "toy", Instance: "i1", Rule: "disk_full"},
			evidence:  []schemas.EvidenceItem{item("queue", `{"consumers":0}`), item("consumers", `[]`)},
			want:      nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Deterministic{}.Reason(context.Background(), &Input{Violation: tt.violation, Evidence: tt.evidence, Playbook: pb, Catalog: cat})
			if err != nil {
				t.Fatal(err)
			}
			if out.Mode != schemas.DiagnosisDeterministic {
				t.Errorf("mode %q", out.Mode)
			}
			var got []string
			for _, h := range out.Hypotheses {
				sug := "-"
				if h.SuggestedAction != nil {
					sug = h.SuggestedAction.Action + schemas.FormatParams(h.SuggestedAction.Params)
				}
				got = append(got, strings.Join([]string{h.ID, h.Certainty, orDash(h.Supports), orDash(h.Contradicts), sug}, " "))
				if h.Cause == "" || strings.Contains(h.Cause, "{{") {
					t.Errorf("cause not rendered: %q", h.Cause)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func orDash(ids []string) string {
	if len(ids) == 0 {
		return "-"
	}
	return strings.Join(ids, ",")
}

func TestDefaultCertainty(t *testing.T) {
	tests := []struct {
		supports, contradicts, signals int
		want                           string
	}{
		{0, 0, 2, ""},
		{0, 2, 2, ""},
		{1, 0, 1, schemas.CertaintyLikely}, // one signal alone is never certain
		{2, 0, 2, schemas.CertaintyCertain},
		{2, 0, 3, schemas.CertaintyLikely}, // one signal could not be judged
		{2, 1, 3, schemas.CertaintyLikely},
		{1, 1, 2, schemas.CertaintyPossible},
		{1, 2, 3, schemas.CertaintyPossible},
	}
	for _, tt := range tests {
		if got := defaultCertainty(tt.supports, tt.contradicts, tt.signals); got != tt.want {
			t.Errorf("defaultCertainty(%d, %d, %d) = %q, want %q", tt.supports, tt.contradicts, tt.signals, got, tt.want)
		}
	}
}

func TestCapJSON(t *testing.T) {
	long := strings.Repeat("x", 100)
	tests := []struct {
		name      string
		in        any
		max       int
		truncated bool
	}{
		{"fits", map[string]any{"a": 1}, 100, false},
		{"a list keeps its head", []any{long, long, long, long}, 250, true},
		{"an object cuts its largest member", map[string]any{"small": 1, "big": []any{long, long, long, long}}, 250, true},
		{"a string becomes a prefix", long + long, 50, true},
		{"escapes count", strings.Repeat("\"", 60), 50, true},
		{"no cap", []any{long, long}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, truncated := capJSON(tt.in, tt.max)
			if truncated != tt.truncated {
				t.Errorf("truncated = %v", truncated)
			}
			if tt.max > 0 && jsonSize(got) > tt.max {
				t.Errorf("%d bytes, over the cap of %d: %v", jsonSize(got), tt.max, got)
			}
			if m, ok := got.(map[string]any); ok && tt.truncated && m["small"] != 1 {
				t.Errorf("the small member was lost: %v", m)
			}
			if l, ok := got.([]any); ok && tt.truncated && (len(l) == 0 || l[0] != long) {
				t.Errorf("the head of the list was lost: %v", l)
			}
		})
	}
}

// TestDeterministicNotesSignalsNotJudged: a signal that cannot be
// evaluated on evidence that was read is noted (the playbook's author must
// see it); one whose evidence failed is not (the failed item says why).
func TestDeterministicNotesSignalsNotJudged(t *testing.T) {
	pb, cat := testPlaybook(t), testCatalog(t)
	deep := schemas.Violation{Subject: "toy", Instance: "i1", Rule: "queue_deep", Key: "orders"}
	reason := func(ev ...schemas.EvidenceItem) []string {
		out, err := Deterministic{}.Reason(context.Background(), &Input{Violation: deep, Evidence: ev, Playbook: pb, Catalog: cat})
		if err != nil {
			t.Fatal(err)
		}
		return out.Notes
	}
	notes := reason(item("recent", `{"last":{"depth":40},"all":[{"depth":10},{"depth":40}]}`), item("queue", `{}`), item("consumers", `[]`))
	if len(notes) != 2 || !strings.Contains(notes[0], "consumers_gone: the signal at testdata/playbook.yaml:25 was not judged") ||
		!strings.Contains(notes[1], "burst: the signal at testdata/playbook.yaml:37 was not judged: no such key: consumers") {
		t.Errorf("notes %q", notes)
	}
	if notes := reason(item("recent", `{"last":{"depth":40},"all":[{"depth":10},{"depth":40}]}`), failedItem("queue"), item("consumers", `[]`)); len(notes) != 0 {
		t.Errorf("failed evidence noted again: %q", notes)
	}
}
