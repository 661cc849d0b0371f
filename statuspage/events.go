package statuspage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// serveEvents is the event stream: one server-sent event per update, its
// id the cursor just after it, so a client that reconnects with
// Last-Event-ID (or ?cursor=) resumes every stream exactly after what it
// was sent. A heartbeat event comes every Heartbeat. A cursor the streams
// cannot resume from gets one "reset" event: read the status again.
func (p *Page) serveEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	raw := r.Header.Get("Last-Event-ID")
	if raw == "" {
		raw = r.URL.Query().Get("cursor")
	}
	first, last, err := p.positions(ctx)
	if err != nil {
		p.readFailed(w, r, err)
		return
	}
	from := last // no cursor: from now on
	if raw != "" {
		if from, err = ParseCursor(raw); err != nil {
			writeProblem(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	// The stream outlives the server's write timeout.
	rc := http.NewResponseController(w)
	if err := rc.SetWriteDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		p.log.Warn("event stream: cannot lift the write deadline", "error", err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{w: w, rc: rc}
	if err := p.checkCursor(from, first, last); err != nil {
		sw.event("", "reset", map[string]string{"reason": err.Error()})
		return
	}
	sw.raw("retry: 2000\n\n")
	if sw.err != nil {
		return
	}

	items := make(chan item, 64)
	fctx, cancel := context.WithCancel(ctx)
	followed := make(chan error, 1)
	go func() { followed <- p.follow(fctx, from, items) }()
	defer func() {
		cancel()
		if followed != nil {
			<-followed
		}
	}()
	tick := time.NewTicker(p.cfg.Heartbeat)
	defer tick.Stop()
	cur := from
	for sw.err == nil {
		select {
		case it := <-items:
			cur[it.pos] = it.seq
			if k := it.c.kind(); k != "" {
				id := cur.String()
				sw.event(id, k, Update{Event: k, ID: id, Stream: letters[it.pos : it.pos+1], Sequence: it.seq, Data: it.c.data()})
			}
		case <-tick.C:
			sw.event("", "heartbeat", map[string]any{"time": time.Now().UTC(), "cursor": cur.String()})
		case err := <-followed:
			followed = nil
			if err != nil && ctx.Err() == nil {
				p.log.Warn("event stream: reading the bus failed", "error", err)
			}
			return // the client reconnects from its last id
		case <-ctx.Done():
			return
		}
	}
}

// sseWriter writes server-sent events and flushes each; err is the first
// write error, after which it writes nothing.
type sseWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	err error
}

func (s *sseWriter) raw(text string) {
	if s.err != nil {
		return
	}
	if _, s.err = fmt.Fprint(s.w, text); s.err == nil {
		s.err = s.rc.Flush()
	}
}

// event writes one event; data is JSON, which has no raw newline.
func (s *sseWriter) event(id, kind string, data any) {
	b, err := json.Marshal(data)
	if err != nil {
		s.err = err
		return
	}
	var sb strings.Builder
	if id != "" {
		sb.WriteString("id: " + id + "\n")
	}
	sb.WriteString("event: " + kind + "\ndata: ")
	sb.Write(b)
	sb.WriteString("\n\n")
	s.raw(sb.String())
}
