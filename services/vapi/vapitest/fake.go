// Package vapitest is a wire-level fake of Vapi's REST API for tests: it
// speaks Vapi's JSON (assistants, errors), checks the Bearer key, validates
// PATCHes like Vapi does, and fails on demand (5xx, 429, 4xx, slow answers,
// dropped connections), for every request, one key's or one method's, and
// before or after applying the request. Unit tests and the browser tests
// use it.
package vapitest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/ava/console/services/upstream/upstreamtest"
)

// Failure is how the fake answers the next matching requests instead of
// doing its job.
type Failure struct {
	// Status and Message make an error answer in Vapi's format.
	Status  int
	Message string
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter string
	// Drop closes the connection without an answer.
	Drop bool
	// Delay waits before answering (or failing), unless the client gives up first.
	Delay time.Duration
	// AfterApply does the request's job first (a PATCH is applied), then
	// fails as the other fields say: Delay holds the answer back, Drop
	// loses it, Status replaces it. Vapi changed, the client never learns.
	AfterApply bool
}

// Dropped reports whether the failure drops the connection before the
// request is served (AfterApply failures drop it after).
func (f Failure) Dropped() bool { return f.Drop && !f.AfterApply }

// Delayed is how long the failure waits before serving the request
// (AfterApply failures wait after).
func (f Failure) Delayed() time.Duration {
	if f.AfterApply {
		return 0
	}
	return f.Delay
}

// Request is what the fake received.
type Request struct {
	Method        string
	Path          string
	Authorization string
	CorrelationID string
	Body          map[string]any
}

// Server is the fake. Create it with New and serve it with httptest.
type Server struct {
	upstreamtest.Faults[Failure]
	upstreamtest.Recorder[Request]

	mu         sync.Mutex
	keys       map[string]bool // valid private keys
	assistants map[string]map[string]any
	targeted   []targeted // FailKey, FailMethod
}

// targeted is a failure for the next n requests that match.
type targeted struct {
	match func(Request) bool
	left  int
	f     Failure
}

// New returns a fake with no keys and no assistants.
func New() *Server {
	return &Server{keys: map[string]bool{}, assistants: map[string]map[string]any{}}
}

// DefaultAssistant returns an assistant as Vapi lists it, with an 11labs voice.
func DefaultAssistant(id string) map[string]any {
	return map[string]any{
		"id":                 id,
		"orgId":              "0b7f8c9e-5d0b-4a4e-9d59-2c1f0f6b8a11",
		"name":               "Front desk",
		"firstMessage":       "Hello, thanks for calling. How can I help you today?",
		"maxDurationSeconds": 600.0,
		"voice":              map[string]any{"provider": "11labs", "voiceId": "burt", "speed": 1.0, "stability": 0.5},
		"model":              map[string]any{"provider": "openai", "model": "gpt-4o", "temperature": 0.7},
		"transcriber":        map[string]any{"provider": "deepgram", "model": "nova-2", "language": "en"},
		"createdAt":          "2026-10-01T09:30:00.000Z",
		"updatedAt":          "2026-11-20T14:05:11.123Z",
	}
}

// FailKey makes the next n requests made with that API key fail with f
// (one account's key rate limited, revoked...); other keys are served as
// usual. It is checked before FailNext and FailAlways.
func (s *Server) FailKey(key string, n int, f Failure) {
	s.failWhen(func(r Request) bool { return r.Authorization == "Bearer "+key }, n, f)
}

// FailMethod makes the next n requests with that method (PATCH) fail with
// f; others are served as usual. It is checked before FailNext and FailAlways.
func (s *Server) FailMethod(method string, n int, f Failure) {
	s.failWhen(func(r Request) bool { return r.Method == method }, n, f)
}

func (s *Server) failWhen(match func(Request) bool, n int, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.targeted = append(s.targeted, targeted{match: match, left: n, f: f})
}

// Recover ends FailAlways and drops every queued failure, FailKey's and
// FailMethod's included.
func (s *Server) Recover() {
	s.Faults.Recover()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.targeted = nil
}

// takeTargeted returns the first targeted failure that matches req.
func (s *Server) takeTargeted(req Request) (Failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.targeted {
		t := &s.targeted[i]
		if t.left > 0 && t.match(req) {
			t.left--
			f := t.f
			if t.left == 0 {
				s.targeted = append(s.targeted[:i], s.targeted[i+1:]...)
			}
			return f, true
		}
	}
	return Failure{}, false
}

// AddKey makes a private API key valid.
func (s *Server) AddKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[key] = true
}

// PutAssistant stores (replaces) an assistant.
func (s *Server) PutAssistant(a map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.assistants[a["id"].(string)] = a
}

// Assistant returns a copy of a stored assistant, as Vapi has it now.
func (s *Server) Assistant(id string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return clone(s.assistants[id])
}

func clone(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

func writeError(w http.ResponseWriter, status int, message any, retryAfter string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"message": message, "error": http.StatusText(status), "statusCode": status,
	})
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := Request{
		Method: r.Method, Path: r.URL.Path, Authorization: r.Header.Get("Authorization"),
		CorrelationID: r.Header.Get("X-Correlation-ID"),
	}
	if len(body) > 0 {
		_ = json.Unmarshal(body, &req.Body)
	}
	s.Record(req)
	var failure Failure
	var failing, proceed bool
	if f, ok := s.takeTargeted(req); ok {
		failure, failing = f, true
		proceed = upstreamtest.Wait(r, f.Delayed())
		if proceed && f.Dropped() {
			upstreamtest.Drop(w)
			proceed = false
		}
	} else {
		failure, failing, proceed = upstreamtest.Begin(&s.Faults, w, r)
	}
	if !proceed {
		return
	}
	if failing && failure.AfterApply {
		s.serveThenFail(w, r, req, failure)
		return
	}
	switch {
	case failing && failure.Status != 0:
		writeFailure(w, failure)
		return
	}
	s.serve(w, r, req)
}

func writeFailure(w http.ResponseWriter, f Failure) {
	msg := f.Message
	if msg == "" {
		msg = http.StatusText(f.Status)
	}
	writeError(w, f.Status, msg, f.RetryAfter)
}

// serveThenFail does the request's job, then loses or holds back its answer.
func (s *Server) serveThenFail(w http.ResponseWriter, r *http.Request, req Request, f Failure) {
	rec := httptest.NewRecorder()
	s.serve(rec, r, req)
	if !upstreamtest.Wait(r, f.Delay) {
		return
	}
	switch {
	case f.Drop:
		upstreamtest.Drop(w)
	case f.Status != 0:
		writeFailure(w, f)
	default:
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, req Request) {
	key := strings.TrimPrefix(req.Authorization, "Bearer ")
	s.mu.Lock()
	valid := s.keys[key]
	s.mu.Unlock()
	if !valid {
		writeError(w, http.StatusUnauthorized, "Invalid Key. Hot tip, make sure you're using the private key.", "")
		return
	}
	id, ok := strings.CutPrefix(r.URL.Path, "/assistant/")
	if !ok || id == "" || strings.Contains(id, "/") {
		writeError(w, http.StatusNotFound, fmt.Sprintf("Cannot %s %s", r.Method, r.URL.Path), "")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, found := s.assistants[id]
	if !found {
		writeError(w, http.StatusNotFound, "Couldn't Get Assistant. Assistant Not Found.", "")
		return
	}
	switch r.Method {
	case http.MethodGet:
	case http.MethodPatch:
		if msgs := validatePatch(req.Body); len(msgs) > 0 {
			writeError(w, http.StatusBadRequest, msgs, "")
			return
		}
		for k, v := range req.Body {
			a[k] = v
		}
		a["updatedAt"] = time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("Cannot %s %s", r.Method, r.URL.Path), "")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(a)
}

// validatePatch checks what Vapi checks of the fields the console sends.
func validatePatch(body map[string]any) []string {
	var msgs []string
	if v, ok := body["firstMessage"]; ok {
		if _, isString := v.(string); !isString {
			msgs = append(msgs, "firstMessage must be a string")
		}
	}
	if v, ok := body["maxDurationSeconds"]; ok {
		f, isNum := v.(float64)
		switch {
		case !isNum:
			msgs = append(msgs, "maxDurationSeconds must be a number conforming to the specified constraints")
		case f < 10:
			msgs = append(msgs, "maxDurationSeconds must not be less than 10")
		case f > 43200:
			msgs = append(msgs, "maxDurationSeconds must not be greater than 43200")
		}
	}
	if v, ok := body["voice"]; ok {
		voice, _ := v.(map[string]any)
		provider, _ := voice["provider"].(string)
		if provider == "" {
			msgs = append(msgs, "voice.provider must be one of the following values: 11labs, cartesia, openai, lmnt, azure, playht, deepgram")
		}
		if _, hasID := voice["voiceId"]; !hasID {
			msgs = append(msgs, "voice.voiceId should not be empty")
		}
		ranges := map[string][2]float64{"11labs": {0.7, 1.2}, "openai": {0.25, 4}, "lmnt": {0.25, 2}}
		if rg, ok := ranges[provider]; ok {
			if sp, ok := voice["speed"].(float64); ok && (sp < rg[0] || sp > rg[1]) {
				msgs = append(msgs, fmt.Sprintf("voice.speed must not be less than %g or greater than %g", rg[0], rg[1]))
			}
		}
		if provider == "cartesia" {
			gc, _ := voice["generationConfig"].(map[string]any)
			if sp, ok := gc["speed"].(float64); ok && (sp < 0.6 || sp > 1.5) {
				msgs = append(msgs, "voice.generationConfig.speed must not be less than 0.6 or greater than 1.5")
			}
		}
	}
	return msgs
}
