package bus_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	cejs "github.com/cloudevents/sdk-go/protocol/nats_jetstream/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"

	"github.com/operator-dev/operator/internal/bus"
	"github.com/operator-dev/operator/schemas"
)

func testEvent(t testing.TB, id, ceSubject string) event.Event {
	t.Helper()
	e, err := schemas.NewEvent(schemas.EventSpec{
		Type: schemas.TypeViolation, Source: "/evaluators/w1", Subject: ceSubject, ID: id,
		Time:          time.Date(2026, 11, 27, 5, 0, 0, 123456789, time.UTC),
		CorrelationID: "episode-1", CausationID: "obs-9",
	}, schemas.Violation{Subject: "ratelimiter", Instance: "demo", Rule: "node_down", Key: "n1",
		Fingerprint: "ratelimiter/demo/node_down/n1", Status: "firing", Severity: "critical",
		Summary: "node n1 is down", Episode: "episode-1", ActiveAt: time.Unix(0, 0).UTC(), FiredAt: &time.Time{}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// sameEvent compares every attribute, extension and the data.
func sameEvent(t *testing.T, got, want event.Event) {
	t.Helper()
	if got.ID() != want.ID() || got.Source() != want.Source() || got.Type() != want.Type() ||
		got.Subject() != want.Subject() || !got.Time().Equal(want.Time()) ||
		got.SpecVersion() != want.SpecVersion() || got.DataContentType() != want.DataContentType() {
		t.Errorf("attributes differ:\n got %v\nwant %v", got.Context, want.Context)
	}
	for _, ext := range []string{schemas.ExtCorrelationID, schemas.ExtCausationID} {
		if g, w := schemas.Extension(got, ext), schemas.Extension(want, ext); g != w {
			t.Errorf("extension %s = %q, want %q", ext, g, w)
		}
	}
	if !bytes.Equal(got.Data(), want.Data()) {
		t.Errorf("data = %s, want %s", got.Data(), want.Data())
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, subj := range []string{
		"ratelimiter/demo/node_down/n1",
		"ratelimiter/demo/hot_key/user 42 at 100%",
		`quote " and ü and tab	end`,
	} {
		e := testEvent(t, "id-1", subj)
		m, err := bus.EncodeMsg("operator.violation.ratelimiter.demo.node_down", e)
		if err != nil {
			t.Fatal(err)
		}
		for k := range m.Header {
			if k != nats.MsgIdHdr && k != string(bytes.ToLower([]byte(k))) {
				t.Errorf("header %q is not lower case", k)
			}
		}
		if got := m.Header.Get(nats.MsgIdHdr); got != "id-1" {
			t.Errorf("Nats-Msg-Id = %q", got)
		}
		got, err := bus.DecodeEvent(m.Header, m.Data)
		if err != nil {
			t.Fatal(err)
		}
		sameEvent(t, got, e)
	}
}

func TestPercentEncodingOnTheWire(t *testing.T) {
	e := testEvent(t, "id-1", "user 42 at 100%")
	h, err := bus.Headers(e)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.Get("ce-subject"), "user%2042%20at%20100%25"; got != want {
		t.Errorf("ce-subject = %q, want %q", got, want)
	}
	if got := h.Get("ce-type"); got != schemas.TypeViolation {
		t.Errorf("ce-type = %q", got)
	}
	if got := h.Get("content-type"); got != "application/json" {
		t.Errorf("content-type = %q", got)
	}
	// A lone '%' that is not an escape decodes to itself.
	h.Set("ce-subject", "100% sure")
	got, err := bus.DecodeEvent(h, e.Data())
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject() != "100% sure" {
		t.Errorf("tolerant decode = %q", got.Subject())
	}
}

func TestDecodeIsCaseInsensitive(t *testing.T) {
	e := testEvent(t, "id-1", "s")
	h, _ := bus.Headers(e)
	upper := nats.Header{}
	for k, v := range h {
		upper[toUpperASCII(k)] = v
	}
	got, err := bus.DecodeEvent(upper, e.Data())
	if err != nil {
		t.Fatal(err)
	}
	sameEvent(t, got, e)
}

func toUpperASCII(s string) string { return string(bytes.ToUpper([]byte(s))) }

// TestCodecInteropWithSDK checks our mapping against the CloudEvents SDK's
// own NATS JetStream binding, both ways.
func TestCodecInteropWithSDK(t *testing.T) {
	e := testEvent(t, "id-7", "ratelimiter/demo/node_down/n1")

	// ours → SDK reader
	m, err := bus.EncodeMsg("x", e)
	if err != nil {
		t.Fatal(err)
	}
	fromSDK, err := binding.ToEvent(context.Background(), cejs.NewMessage(m))
	if err != nil {
		t.Fatal(err)
	}
	sameEvent(t, *fromSDK, e)

	// SDK writer → ours
	var body bytes.Buffer
	h, err := cejs.WriteMsg(context.Background(), binding.ToMessage(&e), &body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := bus.DecodeEvent(h, body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	sameEvent(t, got, e)
}

func TestDecodeRefuses(t *testing.T) {
	e := testEvent(t, "id-1", "s")
	good, _ := bus.Headers(e)
	tests := []struct {
		name   string
		mutate func(h nats.Header)
	}{
		{"no specversion", func(h nats.Header) { h.Del("ce-specversion") }},
		{"unknown specversion", func(h nats.Header) { h.Set("ce-specversion", "9.9") }},
		{"bad time", func(h nats.Header) { h.Set("ce-time", "yesterday") }},
		{"no id", func(h nats.Header) { h.Del("ce-id") }},
		{"no headers at all", func(h nats.Header) {
			for k := range h {
				delete(h, k)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := nats.Header{}
			for k, v := range good {
				h[k] = append([]string(nil), v...)
			}
			tt.mutate(h)
			if _, err := bus.DecodeEvent(h, e.Data()); !errors.Is(err, bus.ErrUndecodable) {
				t.Fatalf("err = %v, want ErrUndecodable", err)
			}
		})
	}
}
