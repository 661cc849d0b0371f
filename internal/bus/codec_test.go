package bus_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
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

// TestEventJSON checks the CloudEvents JSON rendering: JSON data is a JSON
// value under "data" whichever way the event was built, and other data is
// kept byte-exact under "data_base64".
func TestEventJSON(t *testing.T) {
	built := testEvent(t, "id-1", "ratelimiter/demo/node_down/n1")
	h, err := bus.Headers(built)
	if err != nil {
		t.Fatal(err)
	}
	rec := bus.RecordOf("operator.violation.ratelimiter.demo.node_down.n1", built.Time(), h, built.Data())
	if rec.Data == nil || rec.DataBase64 != nil {
		t.Fatalf("recording keeps a JSON body as %+v, want data", rec)
	}
	decoded, err := rec.Event()
	if err != nil {
		t.Fatal(err)
	}
	withType := func(contentType string, body []byte) event.Event {
		t.Helper()
		h := nats.Header{}
		for k, v := range map[string]string{"ce-specversion": "1.0", "ce-id": "x1", "ce-source": "/s", "ce-type": "t"} {
			h.Set(k, v)
		}
		if contentType != "" {
			h.Set("content-type", contentType)
		}
		e, err := bus.DecodeEvent(h, body)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	binary := []byte{0x00, 0xff, 0xfe, '"', '\n'}
	tests := []struct {
		name       string
		e          event.Event
		wantData   string // compact JSON under "data"; "" when absent
		wantBase64 []byte // bytes under "data_base64"; nil when absent
	}{
		{name: "built by schemas.NewEvent", e: built, wantData: string(built.Data())},
		{name: "decoded from a recording", e: decoded, wantData: string(built.Data())},
		{name: "json with parameters", e: withType("Application/JSON; charset=utf-8", []byte(`{"a": 1}`)), wantData: `{"a":1}`},
		{name: "structured suffix", e: withType("application/problem+json", []byte(`{"detail":"x"}`)), wantData: `{"detail":"x"}`},
		{name: "no content type means json", e: withType("", []byte(`[1, 2]`)), wantData: `[1,2]`},
		{name: "json scalar", e: withType("application/json", []byte(`"up"`)), wantData: `"up"`},
		{name: "octet stream", e: withType("application/octet-stream", binary), wantBase64: binary},
		{name: "text", e: withType("text/plain", []byte("node down")), wantBase64: []byte("node down")},
		{name: "json content type but not json", e: withType("application/json", []byte("{oops")), wantBase64: []byte("{oops")},
		{name: "no data", e: withType("application/json", nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := bus.EventJSON(tt.e)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]json.RawMessage
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("not a JSON object: %v\n%s", err, b)
			}
			if id := string(got["id"]); id != strconv.Quote(tt.e.ID()) {
				t.Errorf("id = %s, want %q", id, tt.e.ID())
			}
			if d := string(got["data"]); d != tt.wantData {
				t.Errorf("data = %s, want %s\n%s", d, tt.wantData, b)
			}
			var b64 []byte
			if raw, ok := got["data_base64"]; ok {
				if err := json.Unmarshal(raw, &b64); err != nil {
					t.Fatalf("data_base64 = %s: %v", raw, err)
				}
			}
			if !bytes.Equal(b64, tt.wantBase64) {
				t.Errorf("data_base64 holds %q, want %q\n%s", b64, tt.wantBase64, b)
			}
			if bytes.ContainsRune(b, '\n') {
				t.Errorf("rendering spans lines:\n%s", b)
			}
		})
	}
	t.Run("extensions are kept", func(t *testing.T) {
		b, err := bus.EventJSON(built)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got[schemas.ExtCorrelationID] != "episode-1" || got[schemas.ExtCausationID] != "obs-9" {
			t.Errorf("extensions lost:\n%s", b)
		}
	})
}
