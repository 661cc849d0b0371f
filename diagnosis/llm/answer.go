package llm

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/diagnosis"
	"github.com/operator-dev/operator/schemas"
)

// submission is the input of SubmitTool.
type submission struct {
	Hypotheses []struct {
		ID              string   `json:"id"`
		Cause           string   `json:"cause"`
		Certainty       string   `json:"certainty"`
		Supports        []string `json:"supports"`
		Contradicts     []string `json:"contradicts"`
		SuggestedAction *struct {
			Action string         `json:"action"`
			Params map[string]any `json:"params"`
		} `json:"suggested_action"`
	} `json:"hypotheses"`
}

// certaintyRank orders certainties, strongest first.
var certaintyRank = map[string]int{schemas.CertaintyCertain: 0, schemas.CertaintyLikely: 1, schemas.CertaintyPossible: 2}

func compileSubmitSchema() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(submitSchema)))
	if err != nil {
		return nil, fmt.Errorf("submit schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	const url = "https://operator.dev/diagnosis/llm/submit.json"
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("submit schema: %w", err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("submit schema: %w", err)
	}
	return s, nil
}

// errRejected marks a submission the model is asked to redo.
var errRejected = errors.New("diagnosis rejected")

// answer reads a submission into hypotheses.
//
// A submission that breaks the schema (certainty outside the enum, a
// missing cause, an id that is not snake_case) or repeats an id is
// refused with an error wrapping errRejected, which goes back to the model
// to correct: guessing what it meant would publish a certainty nobody
// chose.
//
// Smaller faults are repaired, and each repair is returned as a note:
//   - a cited id that is not an evidence item is dropped, because a
//     diagnosis must cite only what it can show; a "certain" hypothesis
//     left with no supporting evidence becomes "possible", since nothing
//     shown proves it;
//   - a suggestion of an action that is not in the catalog, or with params
//     the catalog refuses, is dropped and the hypothesis kept, because the
//     cause may be right even when the remedy is not.
//
// Placeholders are mapped back before anything is checked, so params are
// validated with the real names. Hypotheses are ranked by certainty,
// keeping the model's order within each.
func answer(schema *jsonschema.Schema, raw json.RawMessage, in *diagnosis.Input, known map[string]bool, red *redactor) ([]schemas.Hypothesis, []string, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the input is not JSON: %v", errRejected, err)
	}
	if err := schema.Validate(doc); err != nil {
		return nil, nil, fmt.Errorf("%w: %s", errRejected, schemas.DescribeValidationError(err))
	}
	var sub submission
	if err := json.Unmarshal(raw, &sub); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", errRejected, err)
	}
	seen := map[string]bool{}
	for _, h := range sub.Hypotheses {
		if seen[h.ID] {
			return nil, nil, fmt.Errorf("%w: hypothesis id %q is used twice", errRejected, h.ID)
		}
		seen[h.ID] = true
	}
	var notes []string
	cite := func(hyp, role string, ids []string) []string {
		out := []string{}
		for _, id := range ids {
			switch {
			case !known[id]:
				notes = append(notes, fmt.Sprintf("%s: dropped %s evidence %q, which is not an evidence item", hyp, role, id))
			case !slices.Contains(out, id):
				out = append(out, id)
			}
		}
		return out
	}
	hyps := make([]schemas.Hypothesis, 0, len(sub.Hypotheses))
	for _, s := range sub.Hypotheses {
		h := schemas.Hypothesis{ID: s.ID, Cause: red.restore(s.Cause), Certainty: s.Certainty,
			Supports: cite(s.ID, "supporting", s.Supports), Contradicts: cite(s.ID, "contradicting", s.Contradicts)}
		if h.Certainty == schemas.CertaintyCertain && len(h.Supports) == 0 {
			h.Certainty = schemas.CertaintyPossible
			notes = append(notes, fmt.Sprintf("%s: certain with no supporting evidence; now possible", s.ID))
		}
		if sa := s.SuggestedAction; sa != nil {
			params, _ := red.restoreValue(sa.Params).(map[string]any)
			if params == nil {
				params = map[string]any{}
			}
			if err := suggestable(in.Catalog, sa.Action, params); err != nil {
				notes = append(notes, fmt.Sprintf("%s: dropped suggested action: %v", s.ID, err))
			} else {
				h.SuggestedAction = &schemas.SuggestedAction{Action: sa.Action, Params: params}
			}
		}
		hyps = append(hyps, h)
	}
	slices.SortStableFunc(hyps, func(a, b schemas.Hypothesis) int {
		return cmp.Compare(certaintyRank[a.Certainty], certaintyRank[b.Certainty])
	})
	return hyps, notes, nil
}

// suggestable checks that action is in the catalog and accepts params.
func suggestable(catalog *actuators.Catalog, action string, params map[string]any) error {
	if catalog == nil {
		return fmt.Errorf("%q: the subject has no action catalog", action)
	}
	a, ok := catalog.Action(action)
	if !ok {
		return fmt.Errorf("%q is not in the %s catalog", action, catalog.Subject)
	}
	return a.ValidateParams(params)
}
