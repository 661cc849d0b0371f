package diagnosis

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/operator-dev/operator/schemas"
)

// Deterministic is the default reasoner: it evaluates the playbook's
// hypotheses over the evidence, with no network and no model. The same
// evidence always gives the same answer.
type Deterministic struct{}

var _ Reasoner = Deterministic{}

// certaintyRank orders certainties, strongest first.
var certaintyRank = map[string]int{schemas.CertaintyCertain: 0, schemas.CertaintyLikely: 1, schemas.CertaintyPossible: 2}

// Reason ranks the hypotheses that fit: each signal that holds supports its
// hypothesis with the evidence it reads, each that fails contradicts it,
// and one that cannot be evaluated (its evidence failed or lacks a field)
// does neither. The certainty rule then says how sure the hypothesis is, or
// that it does not fit. Ranked by certainty, then by supports minus
// contradictions, then in playbook order.
func (Deterministic) Reason(_ context.Context, in *Input) (Output, error) {
	out := Output{Mode: schemas.DiagnosisDeterministic}
	if in.Playbook == nil {
		return out, nil
	}
	vars := evalVars(in)
	type ranked struct {
		h     schemas.Hypothesis
		net   int
		order int
	}
	var list []ranked
	for i, hr := range in.Playbook.Hypotheses {
		h, notes, ok := hr.assess(vars, in)
		out.Notes = append(out.Notes, notes...)
		if !ok {
			continue
		}
		list = append(list, ranked{h: h, net: len(h.Supports) - len(h.Contradicts), order: i})
	}
	slices.SortStableFunc(list, func(a, b ranked) int {
		return cmp.Or(cmp.Compare(certaintyRank[a.h.Certainty], certaintyRank[b.h.Certainty]),
			cmp.Compare(b.net, a.net), cmp.Compare(a.order, b.order))
	})
	for _, r := range list {
		out.Hypotheses = append(out.Hypotheses, r.h)
	}
	return out, nil
}

// evalVars are the variables of the playbook's expressions: the violation,
// the data of every evidence item that did not fail, and why the others
// failed.
func evalVars(in *Input) map[string]any {
	ev, failed := map[string]any{}, map[string]string{}
	for _, item := range in.Evidence {
		if item.Error != "" {
			failed[item.ID] = item.Error
			continue
		}
		var v any
		if item.Data != nil && json.Unmarshal(item.Data, &v) == nil {
			ev[item.ID] = v
		}
	}
	return map[string]any{"violation": violationVar(in.Violation), "ev": ev, "failed": failed}
}

// violationVar is the violation as CEL sees it: its JSON.
func violationVar(v schemas.Violation) map[string]any {
	b, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// assess evaluates one hypothesis; ok is false when it does not apply or
// does not fit. notes name the signals that could not be evaluated on
// evidence that was read: a field the data lacks, or a mistake in the
// playbook (which the author needs to see).
func (hr *HypothesisRule) assess(vars map[string]any, in *Input) (_ schemas.Hypothesis, notes []string, ok bool) {
	if hr.when != nil {
		if applies, err := hr.when.evalBool(vars); err != nil || !applies {
			return schemas.Hypothesis{}, nil, false
		}
	}
	failed := vars["failed"].(map[string]string)
	h := schemas.Hypothesis{ID: hr.ID, Supports: []string{}, Contradicts: []string{}}
	var supports, contradicts int
	for _, sig := range hr.Signals {
		held, err := sig.prg.evalBool(vars)
		switch {
		case err != nil:
			if !slices.ContainsFunc(sig.Evidence, func(id string) bool { _, f := failed[id]; return f }) {
				notes = append(notes, fmt.Sprintf("%s: the signal at %s:%d was not judged: %v", hr.ID, in.Playbook.File, sig.Line, err))
			}
			continue
		case held:
			supports++
			h.Supports = appendNew(h.Supports, sig.Evidence...)
		default:
			contradicts++
			h.Contradicts = appendNew(h.Contradicts, sig.Evidence...)
		}
	}
	h.Certainty = defaultCertainty(supports, contradicts, len(hr.Signals))
	if hr.certainty != nil {
		v, err := hr.certainty.eval(map[string]any{"supports": supports, "contradicts": contradicts,
			"signals": len(hr.Signals), "violation": vars["violation"]})
		s, _ := v.(string)
		if _, known := certaintyRank[s]; err != nil || (s != "" && !known) {
			return schemas.Hypothesis{}, notes, false // a broken rule never invents certainty
		}
		h.Certainty = s
	}
	if h.Certainty == "" {
		return schemas.Hypothesis{}, notes, false
	}
	cause, err := hr.cause.render(vars, nil)
	if err != nil {
		cause = fmt.Sprintf("%s (cause not rendered: %v)", hr.Cause, err)
	}
	h.Cause = cause
	h.SuggestedAction = hr.Suggest.build(vars, in)
	return h, notes, true
}

// defaultCertainty: certain when at least two signals hold and none fails,
// likely when more hold than fail, possible when any holds, else no fit.
func defaultCertainty(supports, contradicts, signals int) string {
	switch {
	case supports == 0:
		return ""
	case contradicts == 0 && supports == signals && supports >= 2:
		return schemas.CertaintyCertain
	case supports > contradicts:
		return schemas.CertaintyLikely
	}
	return schemas.CertaintyPossible
}

// build evaluates the suggestion's params; a param that cannot be built or
// params the catalog refuses leave the hypothesis without a suggestion.
func (s *Suggestion) build(vars map[string]any, in *Input) *schemas.SuggestedAction {
	if s == nil {
		return nil
	}
	params := map[string]any{}
	for name, prg := range s.params {
		v, err := prg.eval(vars)
		if err != nil {
			return nil
		}
		params[name] = v
	}
	if in.Catalog != nil {
		a, ok := in.Catalog.Action(s.Action)
		if !ok || a.ValidateParams(params) != nil {
			return nil
		}
	}
	return &schemas.SuggestedAction{Action: s.Action, Params: params}
}

func appendNew(list []string, ids ...string) []string {
	for _, id := range ids {
		if !slices.Contains(list, id) {
			list = append(list, id)
		}
	}
	return list
}
