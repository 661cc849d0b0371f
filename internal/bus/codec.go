package bus

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"sort"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/nats-io/nats.go"
)

// Header names of the CloudEvents NATS binding in binary content mode.
const (
	cePrefix          = "ce-"
	headerContentType = "content-type"
)

// ErrUndecodable is wrapped when a message is not a binary-mode CloudEvent.
var ErrUndecodable = errors.New("undecodable message")

// Headers maps an event's attributes to NATS headers: ce-<attr> in lower case,
// values percent-encoded per the CloudEvents NATS binding, content-type for
// the data content type, and Nats-Msg-Id = the event id. The id alone (not
// source+id) is the dedup key, because several workers emitting the same
// logical event derive the same id from its content while their sources
// differ.
func Headers(e event.Event) (nats.Header, error) {
	h := nats.Header{}
	set := func(name, value string) { h[cePrefix+name] = []string{percentEncode(value)} }
	set("specversion", e.SpecVersion())
	set("id", e.ID())
	set("source", e.Source())
	set("type", e.Type())
	if !e.Time().IsZero() {
		set("time", e.Time().UTC().Format(time.RFC3339Nano))
	}
	if e.Subject() != "" {
		set("subject", e.Subject())
	}
	if e.DataSchema() != "" {
		set("dataschema", e.DataSchema())
	}
	if ct := e.DataContentType(); ct != "" {
		h[headerContentType] = []string{ct}
	}
	for name, v := range e.Extensions() {
		s, err := types.Format(v)
		if err != nil {
			return nil, fmt.Errorf("extension %s: %w", name, err)
		}
		set(strings.ToLower(name), s)
	}
	h[nats.MsgIdHdr] = []string{e.ID()}
	return h, nil
}

// EncodeMsg builds the NATS message of an event on subject.
func EncodeMsg(subject string, e event.Event) (*nats.Msg, error) {
	h, err := Headers(e)
	if err != nil {
		return nil, err
	}
	return &nats.Msg{Subject: subject, Header: h, Data: e.Data()}, nil
}

// DecodeEvent builds an event from NATS headers and body. Header names are
// matched case-insensitively and values percent-decoded; a bare content-type
// header is accepted as the data content type, so producers using the
// CloudEvents SDK interoperate. Failures wrap ErrUndecodable.
func DecodeEvent(h map[string][]string, data []byte) (event.Event, error) {
	attrs := map[string]string{}
	var contentType string
	for k, vs := range h {
		if len(vs) == 0 {
			continue
		}
		lk := strings.ToLower(k)
		switch {
		case strings.HasPrefix(lk, cePrefix):
			attrs[lk[len(cePrefix):]] = percentDecode(vs[0])
		case lk == headerContentType:
			contentType = vs[0]
		}
	}
	sv := attrs["specversion"]
	if sv == "" {
		return event.Event{}, fmt.Errorf("%w: no ce-specversion header", ErrUndecodable)
	}
	e := event.New(sv)
	if e.SpecVersion() != sv {
		return event.Event{}, fmt.Errorf("%w: unsupported specversion %q", ErrUndecodable, sv)
	}
	names := make([]string, 0, len(attrs))
	for k := range attrs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := attrs[k]
		switch k {
		case "specversion":
		case "id":
			e.SetID(v)
		case "source":
			e.SetSource(v)
		case "type":
			e.SetType(v)
		case "subject":
			e.SetSubject(v)
		case "dataschema":
			e.SetDataSchema(v)
		case "datacontenttype":
			contentType = v
		case "time":
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return event.Event{}, fmt.Errorf("%w: ce-time %q: %v", ErrUndecodable, v, err)
			}
			e.SetTime(t)
		default:
			e.SetExtension(k, v)
		}
	}
	if contentType != "" {
		e.SetDataContentType(contentType)
	}
	if len(data) > 0 {
		e.DataEncoded = data
	}
	if err := e.Validate(); err != nil {
		return event.Event{}, fmt.Errorf("%w: %v", ErrUndecodable, err)
	}
	return e, nil
}

// EventJSON renders e in the CloudEvents JSON format, for every place an
// event is shown as JSON (operator replay --json, HTTP APIs). Data whose
// content type is JSON (application/json, text/json, any +json type, or no
// content type) and that parses as JSON is a JSON value under "data";
// anything else is kept byte-exact under "data_base64". The choice follows
// the content type alone: the SDK's own marshalling follows its DataBase64
// flag, which is set for every event built by [schemas.NewEvent] because it
// hands the SDK bytes, and it renders +json data as a string. Events of spec
// versions other than 1.0 are left to the SDK.
func EventJSON(e event.Event) (json.RawMessage, error) {
	if e.SpecVersion() != event.CloudEventsVersionV1 {
		b, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode event %s: %w", e.ID(), err)
		}
		return b, nil
	}
	data := e.Data()
	attrs := e
	attrs.DataEncoded, attrs.DataBase64 = nil, false
	b, err := json.Marshal(attrs)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", e.ID(), err)
	}
	if len(data) == 0 {
		return b, nil
	}
	// b is a compact JSON object with at least specversion in it: append
	// the data member before its closing brace.
	var out bytes.Buffer
	out.Grow(len(b) + len(data)*4/3 + 20)
	out.Write(b[:len(b)-1])
	if isJSONContentType(e.DataContentType()) && json.Valid(data) {
		out.WriteString(`,"data":`)
		if err := json.Compact(&out, data); err != nil {
			return nil, fmt.Errorf("encode event %s data: %w", e.ID(), err)
		}
	} else {
		out.WriteString(`,"data_base64":"`)
		out.WriteString(base64.StdEncoding.EncodeToString(data))
		out.WriteByte('"')
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}

// isJSONContentType tells whether the CloudEvents JSON format carries data
// of this content type as a JSON value. No content type means JSON, as the
// format specifies.
func isJSONContentType(ct string) bool {
	if strings.TrimSpace(ct) == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

const upperhex = "0123456789ABCDEF"

// percentEncode escapes space, '"', '%' and every byte outside printable
// ASCII as %XY of its UTF-8 encoding, as the binding requires.
func percentEncode(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if needsEscape(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if needsEscape(c) {
			b.WriteByte('%')
			b.WriteByte(upperhex[c>>4])
			b.WriteByte(upperhex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func needsEscape(c byte) bool { return c <= ' ' || c >= 0x7f || c == '"' || c == '%' }

// percentDecode reverses percentEncode. It is tolerant: a '%' not followed by
// two hex digits is kept as is, so a producer that did not encode still
// decodes to its literal value.
func percentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
