// Package resendtest is a wire-level fake of Resend's REST API for tests:
// it speaks Resend's JSON (emails, domains, errors), checks the Bearer key
// and its kind (full or sending-only), validates emails and idempotency keys
// like Resend does, and fails on demand (5xx, 429, 4xx, slow answers,
// dropped connections).
package resendtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ava/console/services/upstream/upstreamtest"
)

// Failure is how the fake answers the next matching requests instead of
// doing its job.
type Failure struct {
	// Status, Name and Message make an error answer in Resend's format; an
	// empty Name or Message gets a default for the status.
	Status        int
	Name, Message string
	// RetryAfter, when set, is sent as the Retry-After header (seconds).
	RetryAfter string
	// Drop closes the connection without an answer.
	Drop bool
	// Delay waits before answering (or failing), unless the client gives up first.
	Delay time.Duration
}

// Dropped reports whether the failure drops the connection.
func (f Failure) Dropped() bool { return f.Drop }

// Delayed is how long the failure waits before answering.
func (f Failure) Delayed() time.Duration { return f.Delay }

// Request is what the fake received.
type Request struct {
	Method, Path   string
	Authorization  string
	UserAgent      string
	IdempotencyKey string
	CorrelationID  string
	Body           map[string]any
}

// SentEmail is an email the fake accepted.
type SentEmail struct {
	ID, From       string
	To             []string
	Subject, Text  string
	IdempotencyKey string
}

// Server is the fake. Create it with New and serve it with httptest.
type Server struct {
	upstreamtest.Faults[Failure]
	upstreamtest.Recorder[Request]

	mu      sync.Mutex
	keys    map[string]bool // key -> sending only
	domains []string
	sent    []SentEmail
	// idempotent remembers, per key, the body it was first used with and
	// the id of the email it made.
	idempotent map[string]idempotentSend
}

type idempotentSend struct {
	body []byte
	id   string
}

// New returns a fake with no keys, no domains and no email sent.
func New() *Server {
	return &Server{keys: map[string]bool{}, idempotent: map[string]idempotentSend{}}
}

// AddKey makes an API key valid; a sendingOnly key may send email but not
// read anything else (Resend's "Sending access").
func (s *Server) AddKey(key string, sendingOnly bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[key] = sendingOnly
}

// AddDomain adds a verified domain to what GET /domains lists.
func (s *Server) AddDomain(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.domains = append(s.domains, name)
}

// Sent returns the emails accepted so far, oldest first.
func (s *Server) Sent() []SentEmail {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SentEmail, len(s.sent))
	for i, e := range s.sent {
		e.To = append([]string(nil), e.To...)
		out[i] = e
	}
	return out
}

// defaultName is Resend's error name for a failure that does not give one.
func defaultName(status int) string {
	switch status {
	case 400, 422:
		return "validation_error"
	case 401:
		return "missing_api_key"
	case 403:
		return "invalid_api_key"
	case 404:
		return "not_found"
	case 405:
		return "method_not_allowed"
	case 409:
		return "invalid_idempotent_request"
	case 429:
		return "rate_limit_exceeded"
	}
	if status >= 500 {
		return "internal_server_error"
	}
	return "application_error"
}

func writeError(w http.ResponseWriter, status int, name, message, retryAfter string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"statusCode": status, "name": name, "message": message})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := Request{
		Method: r.Method, Path: r.URL.Path, Authorization: r.Header.Get("Authorization"),
		UserAgent: r.Header.Get("User-Agent"), IdempotencyKey: r.Header.Get("Idempotency-Key"),
		CorrelationID: r.Header.Get("X-Correlation-ID"),
	}
	if len(body) > 0 {
		_ = json.Unmarshal(body, &req.Body)
	}
	s.Record(req)
	failure, failing, proceed := upstreamtest.Begin(&s.Faults, w, r)
	if !proceed {
		return
	}
	switch {
	case failing && failure.Status != 0:
		name, msg := failure.Name, failure.Message
		if name == "" {
			name = defaultName(failure.Status)
		}
		if msg == "" {
			msg = http.StatusText(failure.Status)
		}
		writeError(w, failure.Status, name, msg, failure.RetryAfter)
		return
	}
	s.serve(w, r, req, body)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, req Request, body []byte) {
	if req.UserAgent == "" {
		// Resend's edge (Cloudflare) answers this, in plain text, before the API sees it.
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, "error code: 1010")
		return
	}
	// "Bearer " with no key arrives as "Bearer": servers trim header values.
	key := strings.TrimSpace(strings.TrimPrefix(req.Authorization, "Bearer"))
	if key == "" {
		writeError(w, http.StatusUnauthorized, "missing_api_key", "Missing API key in the authorization header.", "")
		return
	}
	s.mu.Lock()
	sendingOnly, valid := s.keys[key]
	s.mu.Unlock()
	if !valid {
		writeError(w, http.StatusForbidden, "invalid_api_key", "API key is invalid", "")
		return
	}
	switch r.URL.Path {
	case "/domains":
		if r.Method != http.MethodGet {
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Method is not allowed for the requested path.", "")
			return
		}
		if sendingOnly {
			writeError(w, http.StatusUnauthorized, "restricted_api_key", "This API key is restricted to only send emails", "")
			return
		}
		writeJSON(w, map[string]any{"object": "list", "data": s.domainList()})
	case "/emails":
		if r.Method != http.MethodPost {
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Method is not allowed for the requested path.", "")
			return
		}
		s.send(w, req, body)
	default:
		writeError(w, http.StatusNotFound, "not_found", "The requested endpoint does not exist.", "")
	}
}

func (s *Server) domainList() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	for _, d := range s.domains {
		out = append(out, map[string]any{
			"id": uuid.NewSHA1(uuid.NameSpaceDNS, []byte(d)).String(), "name": d, "status": "verified",
			"created_at": "2026-10-01 09:30:00.000000+00", "region": "us-east-1",
		})
	}
	return out
}

func (s *Server) send(w http.ResponseWriter, req Request, body []byte) {
	if len(req.IdempotencyKey) > 256 {
		writeError(w, http.StatusBadRequest, "invalid_idempotency_key", "The key must be between 1-256 chars.", "")
		return
	}
	if req.Body == nil {
		writeError(w, http.StatusUnprocessableEntity, "validation_error", "The request body must be a JSON object.", "")
		return
	}
	from, _ := req.Body["from"].(string)
	to := recipients(req.Body["to"])
	subject, _ := req.Body["subject"].(string)
	text, _ := req.Body["text"].(string)
	for _, f := range []struct {
		name    string
		missing bool
	}{{"from", from == ""}, {"to", len(to) == 0}, {"subject", subject == ""}} {
		if f.missing {
			writeError(w, http.StatusUnprocessableEntity, "missing_required_field", fmt.Sprintf("Missing `%s` field.", f.name), "")
			return
		}
	}
	if !validFrom(from) {
		writeError(w, http.StatusUnprocessableEntity, "validation_error",
			"Invalid `from` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.", "")
		return
	}
	for _, addr := range to {
		if _, err := mail.ParseAddress(addr); err != nil {
			writeError(w, http.StatusUnprocessableEntity, "validation_error",
				"Invalid `to` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.", "")
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.IdempotencyKey != "" {
		if prev, ok := s.idempotent[req.IdempotencyKey]; ok {
			if !bytes.Equal(canonical(prev.body), canonical(body)) {
				writeError(w, http.StatusConflict, "invalid_idempotent_request", "Same idempotency key used with a different request payload.", "")
				return
			}
			writeJSON(w, map[string]string{"id": prev.id})
			return
		}
	}
	id := uuid.NewString()
	s.sent = append(s.sent, SentEmail{ID: id, From: from, To: to, Subject: subject, Text: text, IdempotencyKey: req.IdempotencyKey})
	if req.IdempotencyKey != "" {
		s.idempotent[req.IdempotencyKey] = idempotentSend{body: body, id: id}
	}
	writeJSON(w, map[string]string{"id": id})
}

// recipients reads `to`: one address or a list of them.
func recipients(v any) []string {
	switch v := v.(type) {
	case string:
		if v != "" {
			return []string{v}
		}
	case []any:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// validFrom accepts what Resend accepts: "a@b.c" or "Name <a@b.c>".
func validFrom(from string) bool {
	a, err := mail.ParseAddress(from)
	if err != nil {
		return false
	}
	_, domain, ok := strings.Cut(a.Address, "@")
	return ok && strings.Contains(domain, ".")
}

// canonical re-encodes a JSON body so that key order and spacing do not
// make two equal payloads differ.
func canonical(body []byte) []byte {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return body
	}
	b, _ := json.Marshal(v)
	return b
}
