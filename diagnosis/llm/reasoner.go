package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/operator-dev/operator/diagnosis"
	"github.com/operator-dev/operator/schemas"
)

// Errors a diagnosis can end with; the diagnoser then publishes the
// deterministic answer.
var (
	// ErrNoAnswer: the model did not submit an acceptable diagnosis within
	// the request budget.
	ErrNoAnswer = errors.New("no diagnosis submitted")
	// ErrRefused: the model declined to answer.
	ErrRefused = errors.New("the model refused to answer")
)

// extraRequests are the requests a diagnosis may make beyond one per tool
// call: the answer itself, a reminder to answer through SubmitTool, and a
// correction of a rejected answer.
const extraRequests = 3

// A Reasoner asks a model of the Messages API for the hypotheses of a
// violation. The model sees the violation, the evidence, the playbook's
// causes and the catalog, and it may call the input's read-only tools;
// it has no tool that acts. It is safe for concurrent use.
type Reasoner struct {
	cfg    Config
	client anthropic.Client
	submit *jsonschema.Schema
	log    *slog.Logger
}

var _ diagnosis.Reasoner = (*Reasoner)(nil)

// New returns a Reasoner. The client takes nothing from the environment:
// the key, the address and the retries all come from cfg.
func New(cfg Config) (*Reasoner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("llm reasoner: %w", err)
	}
	cfg = cfg.withDefaults()
	submit, err := compileSubmitSchema()
	if err != nil {
		return nil, err
	}
	opts := []option.RequestOption{
		option.WithoutEnvironmentDefaults(),
		option.WithAPIKey(cfg.APIKey),
		option.WithMaxRetries(cfg.MaxRetries),
	}
	if cfg.BaseURL != "" {
		opts = append(opts, option.WithBaseURL(cfg.BaseURL))
	}
	return &Reasoner{cfg: cfg, client: anthropic.NewClient(opts...), submit: submit, log: cfg.Logger}, nil
}

// Reason runs one diagnosis: a conversation in which the model may call
// read-only tools, at most Config.MaxToolCalls times, and ends by calling
// SubmitTool. Forcing that call with tool_choice is avoided because models
// that think before answering refuse a forced tool; the instructions, a
// reminder and the request budget do the work instead, and free text is
// never taken as an answer.
//
// The Output carries the model, the tokens and the cost even with an
// error, since tokens spent on a failed answer are still spent. Running
// out of Config.Timeout or of ctx is an error.
func (r *Reasoner) Reason(ctx context.Context, in *diagnosis.Input) (diagnosis.Output, error) {
	out := diagnosis.Output{Mode: schemas.DiagnosisLLM, Model: r.cfg.Model}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	red := newRedactor(r.cfg.Redact)
	toolList, readOnly, err := tools(in, r.cfg.MaxToolCalls > 0)
	if err != nil {
		return out, err
	}
	prompt, err := userPrompt(red, in)
	if err != nil {
		return out, err
	}
	known := map[string]bool{}
	for _, it := range in.Evidence {
		known[it.ID] = true
	}
	params := anthropic.MessageNewParams{
		Model:     r.cfg.Model,
		MaxTokens: r.cfg.MaxTokens,
		System:    []anthropic.TextBlockParam{{Text: systemPrompt(r.cfg.MaxToolCalls, r.cfg.Redact)}},
		Tools:     toolList,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(prompt))},
	}
	if r.cfg.Effort != "" {
		params.OutputConfig = anthropic.OutputConfigParam{Effort: anthropic.OutputConfigEffort(r.cfg.Effort)}
	}
	log := r.log.With("subject", in.Violation.Subject, "instance", in.Violation.Instance,
		"rule", in.Violation.Rule, "episode", in.Violation.Episode)
	calls, maxRequests := 0, r.cfg.MaxToolCalls+extraRequests
	for n := 1; n <= maxRequests; n++ {
		msg, err := r.client.Messages.New(ctx, params)
		if err != nil {
			if ctx.Err() != nil {
				return out, fmt.Errorf("request %d to %s: %w", n, r.cfg.Model, ctx.Err())
			}
			return out, fmt.Errorf("request %d to %s: %w", n, r.cfg.Model, err)
		}
		if msg.Model != "" {
			out.Model = msg.Model
		}
		u := msg.Usage
		out.InputTokens += u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens
		out.OutputTokens += u.OutputTokens
		out.CostUSD = r.cfg.cost(out.InputTokens, out.OutputTokens)
		switch msg.StopReason {
		case anthropic.StopReasonRefusal:
			return out, fmt.Errorf("request %d: %w", n, ErrRefused)
		case anthropic.StopReasonModelContextWindowExceeded:
			return out, fmt.Errorf("request %d: the conversation outgrew the model's context window", n)
		}
		params.Messages = append(params.Messages, msg.ToParam())

		var uses []anthropic.ToolUseBlock
		for _, block := range msg.Content {
			if block.Type == "tool_use" {
				uses = append(uses, block.AsToolUse())
			}
		}
		if len(uses) == 0 {
			params.Messages = append(params.Messages, anthropic.NewUserMessage(anthropic.NewTextBlock(
				"Nothing was read: answer only by calling "+SubmitTool+".")))
			continue
		}
		var results []anthropic.ContentBlockParamUnion
		if sub, ok := findSubmit(uses); ok {
			hyps, notes, err := answer(r.submit, sub.Input, in, known, red)
			if err == nil {
				for _, note := range notes {
					log.Info("llm answer repaired", "model", out.Model, "note", note)
				}
				out.Hypotheses = hyps
				return out, nil
			}
			log.Info("llm answer rejected", "model", out.Model, "request", n, "error", err)
			results = append(results, anthropic.NewToolResultBlock(sub.ID,
				err.Error()+". Call "+SubmitTool+" again with a corrected diagnosis.", true))
			for _, u := range uses {
				if u.ID != sub.ID {
					results = append(results, anthropic.NewToolResultBlock(u.ID, "Not run: a diagnosis was submitted in the same turn.", true))
				}
			}
		} else {
			for _, u := range uses {
				var res anthropic.ContentBlockParamUnion
				res, calls = r.runTool(ctx, in, u, readOnly, red, calls, &out, known)
				results = append(results, res)
			}
		}
		params.Messages = append(params.Messages, anthropic.NewUserMessage(results...))
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("after request %d: %w", n, err)
		}
	}
	return out, fmt.Errorf("%w in %d requests", ErrNoAnswer, maxRequests)
}

// findSubmit returns the model's call of SubmitTool, if it made one.
func findSubmit(uses []anthropic.ToolUseBlock) (anthropic.ToolUseBlock, bool) {
	for _, u := range uses {
		if u.Name == SubmitTool {
			return u, true
		}
	}
	return anthropic.ToolUseBlock{}, false
}

// runTool runs one read-only tool call within the budget and returns its
// result for the model and the calls made so far. The evidence item it
// yields joins the output and becomes citable; the model sees it redacted.
func (r *Reasoner) runTool(ctx context.Context, in *diagnosis.Input, u anthropic.ToolUseBlock, readOnly map[string]bool,
	red *redactor, calls int, out *diagnosis.Output, known map[string]bool) (anthropic.ContentBlockParamUnion, int) {
	switch {
	case !readOnly[u.Name]:
		return anthropic.NewToolResultBlock(u.ID, fmt.Sprintf("There is no tool %q.", u.Name), true), calls + 1
	case calls >= r.cfg.MaxToolCalls:
		return anthropic.NewToolResultBlock(u.ID, fmt.Sprintf("Not run: the %d tool calls are spent. Call %s now.",
			r.cfg.MaxToolCalls, SubmitTool), true), calls
	}
	input, err := decode(u.Input)
	if err != nil {
		return anthropic.NewToolResultBlock(u.ID, fmt.Sprintf("The input is not JSON: %v.", err), true), calls + 1
	}
	raw, err := json.Marshal(red.restoreValue(input))
	if err != nil {
		return anthropic.NewToolResultBlock(u.ID, fmt.Sprintf("The input cannot be encoded: %v.", err), true), calls + 1
	}
	item := in.Tools.Run(ctx, u.Name, raw)
	out.Evidence = append(out.Evidence, item)
	known[item.ID] = true
	text, err := encode(red.item(item))
	if err != nil {
		return anthropic.NewToolResultBlock(u.ID, fmt.Sprintf("Evidence %s cannot be encoded: %v.", item.ID, err), true), calls + 1
	}
	return anthropic.NewToolResultBlock(u.ID, text, item.Error != ""), calls + 1
}
