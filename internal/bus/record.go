package bus

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A Record is one message of a recording, one JSON object per line:
//
//	{"subject":"...","time":"RFC3339","headers":{"ce-type":["..."]},"data":{...}}
//
// Data holds a JSON body verbatim; a body that is not compact JSON is kept
// byte-exact in DataBase64 instead.
type Record struct {
	Subject    string              `json:"subject"`
	Time       time.Time           `json:"time"`
	Headers    map[string][]string `json:"headers"`
	Data       json.RawMessage     `json:"data,omitempty"`
	DataBase64 []byte              `json:"data_base64,omitempty"`
}

// Body returns the message body.
func (r Record) Body() []byte {
	if r.DataBase64 != nil {
		return r.DataBase64
	}
	return r.Data
}

// Event decodes the record's headers and body as a CloudEvent.
func (r Record) Event() (event.Event, error) { return DecodeEvent(r.Headers, r.Body()) }

// RecordOf turns a message into a record.
func RecordOf(subject string, stored time.Time, h map[string][]string, body []byte) Record {
	r := Record{Subject: subject, Time: stored.UTC(), Headers: h}
	var c bytes.Buffer
	if len(body) > 0 && json.Compact(&c, body) == nil && bytes.Equal(c.Bytes(), body) {
		r.Data = body
	} else if len(body) > 0 {
		r.DataBase64 = body
	}
	return r
}

// A RecordWriter writes records as JSON lines.
type RecordWriter struct {
	w *bufio.Writer
}

// NewRecordWriter returns a writer; call Flush when done.
func NewRecordWriter(w io.Writer) *RecordWriter { return &RecordWriter{w: bufio.NewWriter(w)} }

// Write appends one record.
func (rw *RecordWriter) Write(r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode record: %w", err)
	}
	b = append(b, '\n')
	_, err = rw.w.Write(b)
	return err
}

// Flush writes buffered records out.
func (rw *RecordWriter) Flush() error { return rw.w.Flush() }

// A RecordReader reads JSON-lines records. Blank lines are skipped.
type RecordReader struct {
	s    *bufio.Scanner
	line int
}

// NewRecordReader reads records from r. Lines may be up to 16 MiB.
func NewRecordReader(r io.Reader) *RecordReader {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 16<<20)
	return &RecordReader{s: s}
}

// Next returns the next record, or io.EOF after the last one. A malformed
// line is an error naming its line number.
func (rr *RecordReader) Next() (Record, error) {
	for rr.s.Scan() {
		rr.line++
		line := bytes.TrimSpace(rr.s.Bytes())
		if len(line) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		var r Record
		if err := dec.Decode(&r); err != nil {
			return Record{}, fmt.Errorf("recording line %d: %w", rr.line, err)
		}
		if r.Subject == "" {
			return Record{}, fmt.Errorf("recording line %d: no subject", rr.line)
		}
		if r.Data != nil && r.DataBase64 != nil {
			return Record{}, fmt.Errorf("recording line %d: both data and data_base64", rr.line)
		}
		return r, nil
	}
	if err := rr.s.Err(); err != nil {
		return Record{}, fmt.Errorf("recording line %d: %w", rr.line+1, err)
	}
	return Record{}, io.EOF
}

// Record writes the messages of stream stored since the given time (zero:
// from the start) to w, ending at the message that was last when it began.
// It returns how many records it wrote.
func (b *Bus) Record(ctx context.Context, stream string, since time.Time, w *RecordWriter) (int, error) {
	return b.readStored(ctx, stream, "", since, func(m jetstream.Msg, stored time.Time) error {
		return w.Write(RecordOf(m.Subject(), stored, m.Headers(), m.Data()))
	})
}

// Replay publishes every record of rr back to its subject, keeping its
// headers and body. Server-set Nats-* headers are stripped, except
// Nats-Msg-Id, so a replay into the same stream within its dedup window
// stores nothing twice. Events are not re-validated: a recording replays
// exactly what was stored. It returns how many records it published and how
// many of those the server dropped as duplicates.
func (b *Bus) Replay(ctx context.Context, rr *RecordReader) (published, duplicates int, err error) {
	for {
		r, err := rr.Next()
		if errors.Is(err, io.EOF) {
			return published, duplicates, nil
		}
		if err != nil {
			return published, duplicates, err
		}
		h := nats.Header{}
		for k, vs := range r.Headers {
			if strings.HasPrefix(strings.ToLower(k), "nats-") && !strings.EqualFold(k, nats.MsgIdHdr) {
				continue
			}
			h[k] = vs
		}
		pa, err := b.js.PublishMsg(ctx, &nats.Msg{Subject: r.Subject, Header: h, Data: r.Body()})
		if err != nil {
			return published, duplicates, fmt.Errorf("replay record %d (%s): %w", published+1, r.Subject, err)
		}
		published++
		if pa.Duplicate {
			duplicates++
		}
	}
}
