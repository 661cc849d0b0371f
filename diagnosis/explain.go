package diagnosis

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/operator-dev/operator/schemas"
)

// Explain writes one diagnosis for a person: the hypotheses, ranked, each
// with the evidence for and against it and what it suggests, then every
// evidence item with its source, time and data (failed items with why).
// Data longer than maxLines lines is cut, and says so; 0 shows it all.
func Explain(w io.Writer, d schemas.Diagnosis, maxLines int) error {
	ew := &errWriter{w: w}
	how := d.Mode
	if d.Model != "" {
		how += fmt.Sprintf(", %s, %d tokens in, %d out, $%.4f", d.Model, d.InputTokens, d.OutputTokens, d.CostUSD)
	}
	ew.printf("episode %s: %s/%s %s[%s]\n", d.Episode, d.Subject, d.Instance, d.Rule, d.Key)
	ew.printf("diagnosed %s (%s, %.0f ms after the violation reached it)\n", d.CreatedAt.UTC().Format(time.RFC3339), how, d.DurationMS)
	if d.Error != "" {
		ew.printf("note: %s\n", d.Error)
	}
	for _, n := range d.Notes {
		ew.printf("note: %s\n", n)
	}
	ew.printf("\nhypotheses, most credible first:\n")
	for i, h := range d.Hypotheses {
		ew.printf("  %d. %s %s: %s\n", i+1, strings.ToUpper(h.Certainty), h.ID, h.Cause)
		ew.printf("     supported by:    %s\n", orNone(h.Supports))
		ew.printf("     contradicted by: %s\n", orNone(h.Contradicts))
		if a := h.SuggestedAction; a != nil {
			ew.printf("     suggests:        %s%s (operator act %s %s %s%s)\n", a.Action, schemas.FormatParams(a.Params),
				d.Subject, d.Instance, a.Action, actArgs(a.Params))
		}
	}
	ew.printf("\nevidence:\n")
	for _, e := range d.Evidence {
		ew.printf("  %s: %s, read %s\n", e.ID, e.Source, e.At.UTC().Format("15:04:05.000"))
		if e.Error != "" {
			ew.printf("    FAILED: %s\n", e.Error)
			continue
		}
		var pretty bytes.Buffer
		if json.Indent(&pretty, e.Data, "", "  ") != nil {
			pretty.Write(e.Data)
		}
		lines := strings.Split(pretty.String(), "\n")
		if maxLines > 0 && len(lines) > maxLines {
			lines = append(lines[:maxLines], fmt.Sprintf("... %d more lines (--full shows them)", len(lines)-maxLines))
		}
		ew.printf("    %s\n", strings.Join(lines, "\n    "))
		if e.Truncated {
			ew.printf("    (cut to the evidence size cap)\n")
		}
	}
	return ew.err
}

func orNone(ids []string) string {
	if len(ids) == 0 {
		return "-"
	}
	return strings.Join(ids, ", ")
}

// actArgs renders params as `operator act` arguments.
func actArgs(p map[string]any) string {
	s := schemas.FormatParams(p)
	if s == "" {
		return ""
	}
	return " " + strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
