package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/operator-dev/operator/schemas"
)

// Consumer defaults.
const (
	DefaultMaxDeliver    = 5
	DefaultAckWait       = 30 * time.Second
	DefaultMaxAckPending = 1000
)

// DefaultBackoff is the redelivery delay after the n-th failed delivery
// (the last entry repeats).
var DefaultBackoff = []time.Duration{time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute}

// A Message is one delivered event with its delivery metadata.
type Message struct {
	Event    event.Event
	Subject  string
	Stream   string
	Consumer string
	// Sequence is the stream sequence.
	Sequence uint64
	// NumDelivered is 1 on first delivery.
	NumDelivered uint64
	// Stored is the wall-clock time the server stored the message. Logic
	// must use the event's ce-time instead, so replays behave the same.
	Stored time.Time
	msg    jetstream.Msg
}

// InProgress tells the server the handler is still working, resetting the
// ack wait; slow handlers call it so the message is not redelivered meanwhile.
func (m *Message) InProgress() error {
	if m.msg == nil {
		return nil
	}
	return m.msg.InProgress()
}

// A Handler processes one message. Returning nil acks it. An error wrapping
// schemas.ErrPermanent terminates it (counted and logged, never redelivered). Any
// other error naks it with a delay, until MaxDeliver deliveries, after which
// it is terminated with reason "max_deliver". The ctx is not cancelled by
// shutdown: in-flight messages finish within HandleTimeout while the consumer
// drains.
type Handler func(ctx context.Context, m *Message) error

// ConsumerConfig describes a durable pull consumer.
type ConsumerConfig struct {
	Stream string `yaml:"stream"`
	// Durable is the consumer name; it survives restarts.
	Durable        string   `yaml:"durable"`
	Description    string   `yaml:"description"`
	FilterSubjects []string `yaml:"filter_subjects"`
	// DeliverNew starts a newly created consumer at new messages instead
	// of the start of the stream.
	DeliverNew    bool            `yaml:"deliver_new"`
	MaxDeliver    int             `yaml:"max_deliver"`
	AckWait       time.Duration   `yaml:"ack_wait"`
	MaxAckPending int             `yaml:"max_ack_pending"`
	Backoff       []time.Duration `yaml:"backoff"`
	// Workers handle messages concurrently (default 1: in order).
	Workers int `yaml:"workers"`
	// HandleTimeout bounds one handler call (default AckWait).
	HandleTimeout time.Duration `yaml:"handle_timeout"`
}

func (c *ConsumerConfig) defaults() error {
	if c.Stream == "" || c.Durable == "" {
		return errors.New("consumer needs a stream and a durable name")
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if len(c.Backoff) == 0 {
		c.Backoff = DefaultBackoff
	}
	if c.Workers <= 0 {
		c.Workers = 1
	}
	if c.HandleTimeout == 0 {
		c.HandleTimeout = c.AckWait
	}
	if c.MaxDeliver < 1 || c.AckWait < 0 || c.HandleTimeout < 0 {
		return fmt.Errorf("consumer %s: max_deliver, ack_wait and handle_timeout must be positive", c.Durable)
	}
	return nil
}

func (c *ConsumerConfig) backoff(delivered uint64) time.Duration {
	i := int(delivered) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(c.Backoff) {
		i = len(c.Backoff) - 1
	}
	return c.Backoff[i]
}

// Consume declares the durable consumer (create or update) and hands every
// message to h until ctx is done. Then it drains: it stops fetching, lets the
// in-flight messages finish and be acked, and returns nil. It returns an error
// if the consumer cannot be declared or stops on its own (e.g. deleted).
func (b *Bus) Consume(ctx context.Context, cfg ConsumerConfig, h Handler) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	deliver := jetstream.DeliverAllPolicy
	if cfg.DeliverNew {
		deliver = jetstream.DeliverNewPolicy
	}
	cc := jetstream.ConsumerConfig{
		Durable:        cfg.Durable,
		Description:    cfg.Description,
		DeliverPolicy:  deliver,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        cfg.AckWait,
		MaxDeliver:     cfg.MaxDeliver,
		MaxAckPending:  cfg.MaxAckPending,
		FilterSubjects: cfg.FilterSubjects,
	}
	if len(cfg.FilterSubjects) == 1 {
		cc.FilterSubject, cc.FilterSubjects = cfg.FilterSubjects[0], nil
	}
	cons, err := b.js.CreateOrUpdateConsumer(ctx, cfg.Stream, cc)
	if err != nil {
		return fmt.Errorf("declare consumer %s on %s: %w", cfg.Durable, cfg.Stream, err)
	}
	w := &worker{b: b, cfg: cfg, h: h, parent: context.WithoutCancel(ctx),
		log: b.log.With("stream", cfg.Stream, "consumer", cfg.Durable)}

	jobs := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range jobs {
				w.handle(m)
			}
		}()
	}
	consumeCtx, err := cons.Consume(func(m jetstream.Msg) { jobs <- m },
		jetstream.PullMaxMessages(max(2*cfg.Workers, 16)),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			w.log.Warn("consume error", "error", err)
		}))
	if err != nil {
		close(jobs)
		wg.Wait()
		return fmt.Errorf("consume %s: %w", cfg.Durable, err)
	}
	var stopped error
	select {
	case <-ctx.Done():
		consumeCtx.Drain()
		<-consumeCtx.Closed()
	case <-consumeCtx.Closed():
		stopped = fmt.Errorf("consumer %s on %s stopped", cfg.Durable, cfg.Stream)
	}
	close(jobs)
	wg.Wait()
	return stopped
}

type worker struct {
	b      *Bus
	cfg    ConsumerConfig
	h      Handler
	parent context.Context
	log    *slog.Logger
}

func (w *worker) handle(m jetstream.Msg) {
	start := time.Now()
	stream, consumer := w.cfg.Stream, w.cfg.Durable
	met := w.b.metrics
	met.consumed.WithLabelValues(stream, consumer).Inc()
	defer func() { met.handleDur.WithLabelValues(stream, consumer).Observe(time.Since(start).Seconds()) }()

	meta, err := m.Metadata()
	if err != nil {
		w.term(m, "undecodable", err)
		return
	}
	e, err := DecodeEvent(m.Headers(), m.Data())
	if err != nil {
		w.term(m, "undecodable", err)
		return
	}
	if err := w.b.validate.Validate(e.Type(), e.Data()); err != nil {
		w.term(m, "schema_invalid", err)
		return
	}
	msg := &Message{Event: e, Subject: m.Subject(), Stream: meta.Stream, Consumer: meta.Consumer,
		Sequence: meta.Sequence.Stream, NumDelivered: meta.NumDelivered, Stored: meta.Timestamp, msg: m}
	ctx, cancel := context.WithTimeout(w.parent, w.cfg.HandleTimeout)
	herr := w.h(ctx, msg)
	cancel()
	switch {
	case herr == nil:
		if err := m.Ack(); err != nil {
			w.log.Warn("ack failed; the message will be redelivered", "event_id", e.ID(), "error", err)
			return
		}
		met.acked.WithLabelValues(stream, consumer).Inc()
	case errors.Is(herr, schemas.ErrPermanent):
		w.term(m, "permanent", herr)
	case meta.NumDelivered >= uint64(w.cfg.MaxDeliver):
		w.term(m, "max_deliver", herr)
	default:
		delay := w.cfg.backoff(meta.NumDelivered)
		w.log.Warn("handler failed; will retry", "event_id", e.ID(), "subject", m.Subject(),
			"delivery", meta.NumDelivered, "retry_in", delay, "error", herr)
		if err := m.NakWithDelay(delay); err != nil {
			w.log.Warn("nak failed", "event_id", e.ID(), "error", err)
			return
		}
		met.naked.WithLabelValues(stream, consumer).Inc()
	}
}

func (w *worker) term(m jetstream.Msg, reason string, cause error) {
	id := m.Headers().Get("Nats-Msg-Id")
	w.log.Error("terminating message", "reason", reason, "subject", m.Subject(), "event_id", id, "error", cause)
	if err := m.TermWithReason(reason); err != nil {
		w.log.Warn("term failed", "event_id", id, "error", err)
		return
	}
	w.b.metrics.terminated.WithLabelValues(w.cfg.Stream, w.cfg.Durable, reason).Inc()
}
