package handlers_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ava/console/app/listener"
	"github.com/ava/console/handlers"
)

// Protocol edges (issue 12, item 9): what the console answers to requests
// that are wrong as HTTP rather than in their values.

// raw sends a request through app.Test without the cookie jar.
func (a *testApp) raw(req *http.Request) (*http.Response, string) {
	a.t.Helper()
	resp, err := a.app.Test(req, -1)
	if err != nil {
		a.t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		a.t.Fatal(err)
	}
	return resp, string(body)
}

// serve serves the app on a real listener (what fasthttp refuses while
// reading a request makes app.Test fail; a live-update stream never ends
// for app.Test) and returns its address.
func (a *testApp) serve() string {
	a.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		a.t.Fatal(err)
	}
	// Through the listener production serves with (it lingers on close, so
	// an answer sent before the request ended reaches the client).
	go func() { _ = a.app.Listener(listener.New(ln, listener.Options{})) }()
	a.t.Cleanup(func() { _ = a.console.Shutdown(2 * time.Second) })
	return ln.Addr().String()
}

// send sends a request to the address with net/http, without the cookie jar.
func send(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// noErrorLogs fails the test when anything was logged at ERROR.
func (a *testApp) noErrorLogs() {
	a.t.Helper()
	for _, rec := range a.logLines() {
		if rec["level"] == "ERROR" {
			a.t.Errorf("logged at ERROR: %v", rec)
		}
	}
}

// refusals returns the "request refused" log records with the code.
func (a *testApp) refusals(code string) []map[string]any {
	var out []map[string]any
	for _, rec := range a.logLines() {
		if rec["msg"] == "request refused" && rec["code"] == code {
			out = append(out, rec)
		}
	}
	return out
}

func TestHeadersOverTheLimitAnswer431(t *testing.T) {
	a := newTestApp(t)
	big := strings.Repeat("a", 20<<10) // over the 16 KiB limit, within what fasthttp reads

	req := httptest.NewRequest(http.MethodGet, "/api/v1/me", nil)
	req.Header.Set("X-Padding", big)
	req.Header.Set("X-Correlation-ID", "big-headers-1")
	resp, body := a.raw(req)
	p := assertProblem(t, resp, body, http.StatusRequestHeaderFieldsTooLarge)
	if p.CorrelationID != "big-headers-1" {
		t.Errorf("correlation id %q, want the incoming one", p.CorrelationID)
	}

	req = httptest.NewRequest(http.MethodGet, "/login", nil)
	req.Header.Set("X-Padding", big)
	resp, body = a.raw(req)
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") ||
		resp.Header.Get("X-Correlation-ID") == "" || !strings.Contains(body, "too large") {
		t.Errorf("page: %d %q %v\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header, body)
	}

	// Over fasthttp's read buffer: refused before the path is known, so a
	// page, but still 431 with a correlation id and the security headers.
	addr := a.serve()
	req, _ = http.NewRequest(http.MethodGet, "http://"+addr+"/api/v1/me", nil)
	req.Header.Set("X-Padding", strings.Repeat("b", 64<<10))
	resp, body = send(t, req)
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || resp.Header.Get("X-Correlation-ID") == "" ||
		resp.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("over the read buffer: %d %v\n%s", resp.StatusCode, resp.Header, body)
	}
	if strings.Contains(body, "bbbb") {
		t.Error("the answer quotes the request")
	}
	a.noErrorLogs()
}

func TestBodyOverTheLimitAnswers413(t *testing.T) {
	a := newTestApp(t)
	token := a.apiOwner(false)
	// fasthttp refuses it before any handler (app.Test would only report
	// an error), on its Content-Length, before reading the body: a real
	// listener and the request's head alone.
	addr := a.serve()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if _, err := io.WriteString(c, "PUT /api/v1/vapi/settings/greeting_message HTTP/1.1\r\nHost: ava\r\n"+
		"Content-Type: application/json\r\nAuthorization: Bearer "+token+"\r\n"+
		"Content-Length: "+strconv.Itoa(1<<20+1)+"\r\n\r\n{\"value\":\""); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	got := string(raw)
	p := assertProblem(t, resp, got, http.StatusRequestEntityTooLarge)
	if !uuidPattern.MatchString(p.CorrelationID) {
		t.Errorf("correlation id %q, want a fresh UUID", p.CorrelationID)
	}
	if p.Instance != "/api/v1/vapi/settings/greeting_message" {
		t.Errorf("instance %q", p.Instance)
	}
	// The refusal is logged with the same id.
	refused := a.refusals("too_large")
	if len(refused) != 1 || refused[0]["correlation_id"] != p.CorrelationID {
		t.Errorf("refusal log: %v", refused)
	}
	a.noErrorLogs()

	// Exactly 1 MiB is within the limit: not 413.
	exact := httptest.NewRequest(http.MethodPut, "/api/v1/vapi/settings/greeting_message",
		strings.NewReader(`{"value":"`+strings.Repeat("x", 1<<20-len(`{"value":""}`))+`"}`))
	exact.Header.Set("Content-Type", "application/json")
	exact.Header.Set("Authorization", "Bearer "+token)
	if resp, _ := a.raw(exact); resp.StatusCode == http.StatusRequestEntityTooLarge {
		t.Error("a body of exactly 1 MiB is refused")
	}
}

func TestWrongMethodAnswers405WithAllow(t *testing.T) {
	a := newTestApp(t)
	token := a.apiOwner(false)
	for _, tc := range []struct {
		method, path string
		allow        string
		json         bool // problem+json (the API, the probes), else a page
	}{
		{http.MethodGet, "/logout", "POST", false},
		{http.MethodPut, "/login", "GET, HEAD, POST", false},
		{http.MethodDelete, "/api/v1/me", "GET, HEAD", true},
		{http.MethodPost, "/api/v1/vapi/settings", "GET, HEAD", true},
		{http.MethodGet, "/api/v1/vapi/settings/greeting_message", "PUT", true},
		{http.MethodGet, "/api/v1/integrations/vapi/credentials", "PUT, DELETE", true},
		{http.MethodPost, "/healthz", "GET, HEAD", true},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			if strings.HasPrefix(tc.path, "/api/") {
				req.Header.Set("Authorization", "Bearer "+token)
			} else {
				req.Header.Set("X-CSRF-Token", a.csrf())
			}
			resp, body := a.do(req)
			if tc.json {
				assertProblem(t, resp, body, http.StatusMethodNotAllowed)
			} else if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Fatalf("status %d\n%s", resp.StatusCode, body)
			}
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
	// Unknown paths stay 404, whatever the method; so does a missing
	// static file (its prefix route takes GET).
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/nowhere"},
		{http.MethodGet, "/api/v1/nowhere"},
		{http.MethodGet, "/static/missing.css"},
	} {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, body := a.raw(req)
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Allow") != "" {
			t.Errorf("%s %s: %d Allow %q\n%s", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), body)
		}
	}
}

func TestJSONAPIRefusesOtherMediaTypes(t *testing.T) {
	a := newTestApp(t)
	token := a.apiOwner(false)
	a.connectAPI(token)
	put := func(contentType, body, token string) (*http.Response, string) {
		req := httptest.NewRequest(http.MethodPut, "/api/v1/vapi/settings/greeting_message", strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return a.raw(req)
	}
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "application/jsonp", ""} {
		resp, body := put(ct, `{"value":"Hello"}`, token)
		p := assertProblem(t, resp, body, http.StatusUnsupportedMediaType)
		if !strings.Contains(p.Detail, "application/json") {
			t.Errorf("%q: detail %q", ct, p.Detail)
		}
	}
	if len(a.vapi.Requests()) != 0 {
		t.Errorf("refused bodies reached Vapi: %v", a.vapi.Requests())
	}
	resp, body := put("application/json; charset=utf-8", `{"value":"Hello"}`, token)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("JSON with a charset: %d\n%s", resp.StatusCode, body)
	}
	// Authentication comes first.
	resp, _ = put("text/plain", `{"value":"Hello"}`, "")
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
		t.Errorf("no token, not JSON: %d, want 401 or 403", resp.StatusCode)
	}
	// POST on the JSON API too.
	req := httptest.NewRequest(http.MethodPost, "/api/v1/integrations/email/test", strings.NewReader("to=a@example.com"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, body = a.raw(req)
	assertProblem(t, resp, body, http.StatusUnsupportedMediaType)
}

// TestSlowClientTimesOutAs408: a client that does not send its request
// within the read timeout is answered 408 and logged as a refusal at debug
// level, never as an internal error.
func TestSlowClientTimesOutAs408(t *testing.T) {
	a := newTestApp(t)
	a.app.Server().ReadTimeout = 300 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Through the listener production serves with (it lingers on close, so
	// an answer sent before the request ended reaches the client).
	go func() { _ = a.app.Listener(listener.New(ln, listener.Options{})) }()
	t.Cleanup(func() { _ = a.app.ShutdownWithTimeout(2 * time.Second) })

	for _, sent := range []string{
		"GET /healthz HTTP/1.1\r\nHost: ava\r\nX-Slow:", // headers never finished
		"", // nothing at all
	} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, sent); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		_ = c.Close()
		if err != nil {
			t.Fatalf("sent %q: no answer: %v", sent, err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get("X-Correlation-ID") == "" {
			t.Errorf("sent %q: %d %v", sent, resp.StatusCode, resp.Header)
		}
	}
	a.noErrorLogs()
	if n := len(a.refusals("request_timeout")); n != 2 {
		t.Errorf("%d request_timeout refusals logged, want 2:\n%s", n, a.logs.String())
	}
}

// TestRateLimitHeadersOnEveryLimitedAnswer: the X-RateLimit-* headers are
// those of the tightest budget, on 429s too (with Retry-After).
func TestRateLimitHeadersOnEveryLimitedAnswer(t *testing.T) {
	check := func(t *testing.T, resp *http.Response, limit, remaining int) {
		t.Helper()
		if got := resp.Header.Get("X-RateLimit-Limit"); got != strconv.Itoa(limit) {
			t.Errorf("status %d: X-RateLimit-Limit %q, want %d", resp.StatusCode, got, limit)
		}
		if got := resp.Header.Get("X-RateLimit-Remaining"); got != strconv.Itoa(remaining) {
			t.Errorf("status %d: X-RateLimit-Remaining %q, want %d", resp.StatusCode, got, remaining)
		}
		if reset, err := strconv.Atoi(resp.Header.Get("X-RateLimit-Reset")); err != nil || reset < 1 || reset > 60 {
			t.Errorf("status %d: X-RateLimit-Reset %q", resp.StatusCode, resp.Header.Get("X-RateLimit-Reset"))
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			if resp.Header.Get("Retry-After") != resp.Header.Get("X-RateLimit-Reset") {
				t.Errorf("Retry-After %q, X-RateLimit-Reset %q", resp.Header.Get("Retry-After"), resp.Header.Get("X-RateLimit-Reset"))
			}
		}
	}

	t.Run("route", func(t *testing.T) {
		a := newTestApp(t, withConfig(func(c *handlers.Config) { c.DefaultLimit = 2 }))
		for i, remaining := range []int{1, 0} {
			resp, _ := a.get("/healthz")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("request %d: %d", i+1, resp.StatusCode)
			}
			check(t, resp, 2, remaining)
		}
		resp, _ := a.get("/healthz")
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("third: %d", resp.StatusCode)
		}
		check(t, resp, 2, 0)
	})

	t.Run("sign-in", func(t *testing.T) {
		a := newTestApp(t, withConfig(func(c *handlers.Config) { c.SignInLimit = 2 }))
		a.signedIn()
		a.cookies = map[string]string{}
		// signedIn's setup spent one attempt of POST /setup's budget, not
		// of POST /login's.
		for i, remaining := range []int{1, 0} {
			resp, body := a.postForm("/login", url.Values{"email": {ownerEmail}, "password": {"wrong password!"}})
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("attempt %d: %d\n%s", i+1, resp.StatusCode, body)
			}
			check(t, resp, 2, remaining)
		}
		resp, _ := a.postForm("/login", url.Values{"email": {ownerEmail}, "password": {ownerPassword}})
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("third attempt: %d", resp.StatusCode)
		}
		check(t, resp, 2, 0)
	})
}
