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
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	c := &conversation{r: r, in: in, red: newRedactor(r.cfg.Redact), known: map[string]bool{},
		out: diagnosis.Output{Mode: schemas.DiagnosisLLM, Model: r.cfg.Model},
		log: r.log.With("subject", in.Violation.Subject, "instance", in.Violation.Instance,
			"rule", in.Violation.Rule, "episode", in.Violation.Episode)}
	for _, it := range in.Evidence {
		c.known[it.ID] = true
	}
	toolList, readOnly, err := tools(in, r.cfg.MaxToolCalls > 0)
	if err != nil {
		return c.out, err
	}
	c.readOnly = readOnly
	prompt, err := userPrompt(c.red, in)
	if err != nil {
		return c.out, err
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
	maxRequests := r.cfg.MaxToolCalls + extraRequests
	for n := 1; n <= maxRequests; n++ {
		msg, err := r.client.Messages.New(ctx, params)
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return c.out, fmt.Errorf("request %d to %s: %w", n, r.cfg.Model, err)
		}
		c.count(msg)
		switch msg.StopReason {
		case anthropic.StopReasonRefusal:
			return c.out, fmt.Errorf("request %d: %w", n, ErrRefused)
		case anthropic.StopReasonModelContextWindowExceeded:
			return c.out, fmt.Errorf("request %d: the conversation outgrew the model's context window", n)
		}
		next, done := c.reply(ctx, n, msg)
		if done {
			return c.out, nil
		}
		params.Messages = append(params.Messages, msg.ToParam(), next)
		if err := ctx.Err(); err != nil {
			return c.out, fmt.Errorf("after request %d: %w", n, err)
		}
	}
	return c.out, fmt.Errorf("%w in %d requests", ErrNoAnswer, maxRequests)
}

// A conversation is the state of one diagnosis.
type conversation struct {
	r   *Reasoner
	in  *diagnosis.Input
	red *redactor
	// readOnly are the names of the tools the model may run.
	readOnly map[string]bool
	// known are the citable evidence ids, the tools' included.
	known map[string]bool
	// calls counts the tool calls made.
	calls int
	out   diagnosis.Output
	log   *slog.Logger
}

// count adds a response's model, tokens and cost to the output. Input
// tokens include those written to and read from the prompt cache; all are
// priced at the input rate, so the estimate errs high.
func (c *conversation) count(msg *anthropic.Message) {
	if msg.Model != "" {
		c.out.Model = msg.Model
	}
	u := msg.Usage
	c.out.InputTokens += u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens
	c.out.OutputTokens += u.OutputTokens
	c.out.CostUSD = c.r.cfg.cost(c.out.InputTokens, c.out.OutputTokens)
}

// reply answers the model's turn n. It is done when the turn submitted an
// acceptable diagnosis, now in the output; otherwise next is the message
// to send: the tools' results, the reasons a submission was rejected, or
// a reminder to answer through SubmitTool.
func (c *conversation) reply(ctx context.Context, n int, msg *anthropic.Message) (next anthropic.MessageParam, done bool) {
	var uses []anthropic.ToolUseBlock
	for _, block := range msg.Content {
		if block.Type == "tool_use" {
			uses = append(uses, block.AsToolUse())
		}
	}
	if len(uses) == 0 {
		return anthropic.NewUserMessage(anthropic.NewTextBlock("Nothing was read: answer only by calling " + SubmitTool + ".")), false
	}
	var results []anthropic.ContentBlockParamUnion
	sub, submitted := findSubmit(uses)
	if !submitted {
		for _, u := range uses {
			results = append(results, c.runTool(ctx, u))
		}
		return anthropic.NewUserMessage(results...), false
	}
	hyps, notes, err := answer(c.r.submit, sub.Input, c.in, c.known, c.red)
	if err == nil {
		if len(notes) > 0 {
			c.log.Info("llm answer repaired", "model", c.out.Model, "notes", notes)
		}
		c.out.Hypotheses, c.out.Notes = hyps, notes
		return anthropic.MessageParam{}, true
	}
	c.log.Info("llm answer rejected", "model", c.out.Model, "request", n, "error", err)
	results = append(results, anthropic.NewToolResultBlock(sub.ID,
		err.Error()+". Call "+SubmitTool+" again with a corrected diagnosis.", true))
	for _, u := range uses {
		if u.ID != sub.ID {
			results = append(results, anthropic.NewToolResultBlock(u.ID, "Not run: a diagnosis was submitted in the same turn.", true))
		}
	}
	return anthropic.NewUserMessage(results...), false
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
// result for the model. The evidence item it yields joins the output and
// becomes citable; the model sees it redacted, and the tool gets the
// model's input with the real names.
func (c *conversation) runTool(ctx context.Context, u anthropic.ToolUseBlock) anthropic.ContentBlockParamUnion {
	fail := func(format string, args ...any) anthropic.ContentBlockParamUnion {
		return anthropic.NewToolResultBlock(u.ID, fmt.Sprintf(format, args...), true)
	}
	if c.calls >= c.r.cfg.MaxToolCalls {
		return fail("Not run: the %d tool calls are spent. Call %s now.", c.r.cfg.MaxToolCalls, SubmitTool)
	}
	c.calls++
	if !c.readOnly[u.Name] {
		return fail("There is no tool %q.", u.Name)
	}
	input, err := decode(u.Input)
	if err != nil {
		return fail("The input is not JSON: %v.", err)
	}
	raw, err := json.Marshal(c.red.restoreValue(input))
	if err != nil {
		return fail("The input cannot be encoded: %v.", err)
	}
	item := c.in.Tools.Run(ctx, u.Name, raw)
	c.out.Evidence = append(c.out.Evidence, item)
	c.known[item.ID] = true
	text, err := encode(c.red.item(item))
	if err != nil {
		return fail("Evidence %s cannot be encoded: %v.", item.ID, err)
	}
	return anthropic.NewToolResultBlock(u.ID, text, item.Error != "")
}
