package statuspage

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/operator-dev/operator/actuators"
	"github.com/operator-dev/operator/schemas"
)

//go:embed assets
var assets embed.FS

// ControlHeader must be on every control request. A page of another origin
// cannot send it without a CORS preflight, which is never granted, and an
// HTML form cannot send it at all: with it, no cookie or ambient
// credential is ever enough.
const ControlHeader = "X-Operator-Control"

// maxBody caps a control request's body.
const maxBody = 16 << 10

// contentSecurityPolicy lets the page load nothing but its own files and
// talk to nothing but its own server; no inline script runs.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the page at /, its files under /ui/, its JSON API under
// /api/v1/ and its event stream. Every error is application/problem+json.
func (p *Page) Handler() http.Handler {
	mux := http.NewServeMux()
	routes := []struct {
		pattern string
		h       http.Handler
	}{
		{"GET /{$}", http.HandlerFunc(p.servePage)},
		{"GET /ui/{file}", http.HandlerFunc(p.serveAsset)},
		{"GET /api/v1/status", http.HandlerFunc(p.serveStatus)},
		{"GET /api/v1/episodes/{id}", http.HandlerFunc(p.serveEpisode)},
		{"GET /api/v1/updates", http.HandlerFunc(p.serveUpdates)},
		{"GET /api/v1/events", http.HandlerFunc(p.serveEvents)},
		{"POST /api/v1/approvals/{id}/approve", p.guard(p.approve)},
		{"POST /api/v1/approvals/{id}/reject", p.guard(p.reject)},
		{"POST /api/v1/killswitch", p.guard(p.killSwitch)},
	}
	allowed := map[string]string{}
	for _, rt := range routes {
		mux.Handle(rt.pattern, rt.h)
		method, path, _ := strings.Cut(rt.pattern, " ")
		if method == "GET" {
			method = "GET, HEAD"
		}
		allowed[path] = method
	}
	for path, methods := range allowed {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", methods)
			writeProblem(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed here; use %s", r.Method, methods))
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, "no such page or endpoint: "+r.URL.Path)
	})
	return withHeaders(mux)
}

// withHeaders adds the headers every response carries.
func withHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		h.ServeHTTP(w, r)
	})
}

// problem is an RFC 9457 problem detail.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// writeProblem writes every error response.
func writeProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

func (p *Page) servePage(w http.ResponseWriter, r *http.Request) {
	p.serveFile(w, r, "index.html")
}

func (p *Page) serveAsset(w http.ResponseWriter, r *http.Request) {
	p.serveFile(w, r, r.PathValue("file"))
}

func (p *Page) serveFile(w http.ResponseWriter, r *http.Request, name string) {
	types := map[string]string{".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	ext := name[strings.LastIndexByte(name, '.')+1:]
	ctype, ok := types["."+ext]
	data, err := assets.ReadFile("assets/" + name)
	if !ok || err != nil {
		writeProblem(w, http.StatusNotFound, "no such file: "+name)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "no-cache")
	if r.Method != http.MethodHead {
		_, _ = w.Write(data)
	}
}

func (p *Page) serveStatus(w http.ResponseWriter, r *http.Request) {
	st, err := p.Status(r.Context(), time.Now())
	if err != nil {
		p.readFailed(w, r, err)
		return
	}
	writeJSON(w, st)
}

func (p *Page) serveEpisode(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if len(id) > 256 || strings.ContainsAny(id, " \t\r\n") {
		writeProblem(w, http.StatusBadRequest, "an episode id is at most 256 characters, without spaces")
		return
	}
	ep, err := p.Episode(r.Context(), id)
	switch {
	case errors.Is(err, ErrNoEpisode):
		writeProblem(w, http.StatusNotFound, err.Error())
	case err != nil:
		p.readFailed(w, r, err)
	default:
		writeJSON(w, ep)
	}
}

func (p *Page) serveUpdates(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.Query().Get("cursor")
	if raw == "" {
		writeProblem(w, http.StatusBadRequest, "cursor is required: take it from /api/v1/status or the last update")
		return
	}
	from, err := ParseCursor(raw)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}
	u, err := p.Updates(r.Context(), from, time.Now())
	switch {
	case errors.Is(err, ErrCursorExpired):
		writeProblem(w, http.StatusGone, err.Error()+"; read /api/v1/status again")
	case err != nil:
		p.readFailed(w, r, err)
	default:
		writeJSON(w, u)
	}
}

// readFailed answers a read of the bus that failed.
func (p *Page) readFailed(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client left
	}
	p.log.Warn("status page read failed", "path", r.URL.Path, "error", err)
	writeProblem(w, http.StatusServiceUnavailable, "cannot read the bus: "+err.Error())
}

// guard admits a control request: a POST of JSON with ControlHeader from
// this origin, carrying the bearer token when one is configured, with a
// small body.
func (p *Page) guard(h http.HandlerFunc) http.Handler {
	want := sha256.Sum256([]byte(p.cfg.Token))
	checked := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || ct != "application/json" {
			writeProblem(w, http.StatusUnsupportedMediaType, "a control is a JSON request (Content-Type: application/json); forms are refused")
			return
		}
		if r.Header.Get(ControlHeader) == "" {
			writeProblem(w, http.StatusForbidden, "a control needs the "+ControlHeader+" header")
			return
		}
		if p.cfg.Token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			// Hashing first makes the comparison's time independent of
			// the lengths too.
			sum := sha256.Sum256([]byte(got))
			if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="operator"`)
				writeProblem(w, http.StatusUnauthorized, "this control needs the bearer token (Authorization: Bearer ...)")
				return
			}
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		h(w, r)
	})
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeProblem(w, http.StatusForbidden, "cross-origin controls are refused")
	}))
	return cop.Handler(checked)
}

// decodeBody decodes a control's JSON body into v, refusing unknown
// fields; an empty body leaves v as it is. It answers the request itself
// when it fails.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) {
		return true
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeProblem(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is over %d bytes", tooLarge.Limit))
		return false
	case err != nil:
		writeProblem(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return false
	case dec.More():
		writeProblem(w, http.StatusBadRequest, "bad JSON body: more than one value")
		return false
	}
	return true
}

// decisionRequest is the body of approve and reject.
type decisionRequest struct {
	By     string `json:"by"`
	Reason string `json:"reason"`
}

func (p *Page) approve(w http.ResponseWriter, r *http.Request) { p.decide(w, r, true) }
func (p *Page) reject(w http.ResponseWriter, r *http.Request)  { p.decide(w, r, false) }

func (p *Page) decide(w http.ResponseWriter, r *http.Request, approve bool) {
	var body decisionRequest
	if !decodeBody(w, r, &body) {
		return
	}
	if !approve && strings.TrimSpace(body.Reason) == "" {
		writeProblem(w, http.StatusBadRequest, "a rejection needs a reason")
		return
	}
	by := cmpOrDefault(body.By, DefaultBy)
	ctx := r.Context()
	id, err := actuators.ResolveApprovalID(ctx, p.control, r.PathValue("id"))
	if err != nil {
		p.controlFailed(w, err)
		return
	}
	rec, err := actuators.Decide(ctx, p.control, p.bus, p.bus.Subjects(), id,
		actuators.Decision{Approve: approve, By: by, Reason: body.Reason, Source: "/ui"}, time.Now())
	if err != nil {
		p.controlFailed(w, err)
		return
	}
	p.log.Info("decided through the status page", "request_id", id, "approve", approve, "by", by)
	writeJSON(w, rec)
}

// killSwitchRequest is the body of the kill switch control.
type killSwitchRequest struct {
	// Engaged is required: true stops every actuator, false releases.
	Engaged *bool `json:"engaged"`
	// Subject limits the switch to one subject; empty is the global one.
	Subject string `json:"subject"`
	By      string `json:"by"`
	Reason  string `json:"reason"`
}

func (p *Page) killSwitch(w http.ResponseWriter, r *http.Request) {
	var body killSwitchRequest
	if !decodeBody(w, r, &body) {
		return
	}
	if body.Engaged == nil {
		writeProblem(w, http.StatusBadRequest, `"engaged" is required: true stops the actuators, false releases them`)
		return
	}
	ks := actuators.KillSwitch{Subject: body.Subject, Engaged: *body.Engaged, By: cmpOrDefault(body.By, DefaultBy),
		Reason: body.Reason, At: time.Now().UTC()}
	if err := actuators.SetKillSwitch(r.Context(), p.control, ks); err != nil {
		p.controlFailed(w, err)
		return
	}
	p.log.Info("kill switch set through the status page", "engaged", ks.Engaged, "subject", ks.Subject, "by", ks.By)
	writeJSON(w, ks)
}

// controlFailed answers a control that could not be carried out.
func (p *Page) controlFailed(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, actuators.ErrNoApproval):
		writeProblem(w, http.StatusNotFound, err.Error())
	case errors.Is(err, actuators.ErrAmbiguousID), errors.Is(err, actuators.ErrAlreadyDecided), errors.Is(err, actuators.ErrApprovalExpired):
		writeProblem(w, http.StatusConflict, err.Error())
	case errors.Is(err, context.Canceled):
		return
	case isInvalid(err):
		writeProblem(w, http.StatusBadRequest, err.Error())
	default:
		p.log.Warn("status page control failed", "error", err)
		writeProblem(w, http.StatusServiceUnavailable, err.Error())
	}
}

func cmpOrDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}

// isInvalid reports whether a control failed on its input.
func isInvalid(err error) bool { return errors.Is(err, schemas.ErrInvalidToken) }
