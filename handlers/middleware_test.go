package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/ava/console/handlers"
	"github.com/ava/console/services"
)

// requestLog returns the access-log records of the requests answered so far.
func (a *testApp) requestLog() []map[string]any {
	var out []map[string]any
	for _, rec := range a.logLines() {
		if rec["msg"] == "request" {
			out = append(out, rec)
		}
	}
	return out
}

func TestCorrelationIDOnResponsesAndLogs(t *testing.T) {
	a := newTestApp(t)
	resp, _ := a.get("/login", "X-Correlation-ID", "trace-me.1:2")
	if got := resp.Header.Get("X-Correlation-ID"); got != "trace-me.1:2" {
		t.Fatalf("valid incoming id not kept: %q", got)
	}
	resp, _ = a.get("/login", "X-Correlation-ID", "bad id with spaces")
	replaced := resp.Header.Get("X-Correlation-ID")
	if replaced == "" || strings.Contains(replaced, " ") {
		t.Fatalf("invalid incoming id not replaced: %q", replaced)
	}
	logs := a.requestLog()
	if len(logs) != 2 {
		t.Fatalf("want one access-log line per request, got %d", len(logs))
	}
	if logs[0]["correlation_id"] != "trace-me.1:2" || logs[1]["correlation_id"] != replaced {
		t.Fatalf("log lines lack the correlation ids: %v", logs)
	}
	for _, k := range []string{"method", "route", "status", "duration_ms"} {
		if _, ok := logs[0][k]; !ok {
			t.Fatalf("access log lacks %s: %v", k, logs[0])
		}
	}
	if logs[0]["route"] != "GET /login" || logs[0]["status"] != float64(http.StatusSeeOther) {
		t.Fatalf("access log: %v", logs[0])
	}
}

func TestAccessLogNamesTheAccount(t *testing.T) {
	a := newTestApp(t)
	u := a.signedIn()
	a.get("/tokens")
	logs := a.requestLog()
	last := logs[len(logs)-1]
	if last["account_id"] != float64(u.AccountID) || last["route"] != "GET /tokens" {
		t.Fatalf("access log of a signed-in request: %v", last)
	}
	lines := strings.Split(strings.TrimSpace(a.logs.String()), "\n")
	if raw := lines[len(lines)-1]; strings.Count(raw, `"account_id"`) != 1 {
		t.Fatalf("the access log line must carry account_id once: %s", raw)
	}
	// Records written by handlers while serving carry it too.
	for _, rec := range a.logLines() {
		if rec["msg"] == "owner account created" && rec["correlation_id"] == nil {
			t.Fatalf("handler log record lacks correlation_id: %v", rec)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	a := newTestApp(t)
	resp, _ := a.get("/login")
	csp := resp.Header.Get("Content-Security-Policy")
	if csp == "" || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") ||
		!strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("CSP: %q", csp)
	}
	for h, want := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "strict-origin-when-cross-origin",
	} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
}

func TestSessionCookieFlags(t *testing.T) {
	for _, prod := range []bool{false, true} {
		t.Run("production="+strconv.FormatBool(prod), func(t *testing.T) {
			a := newTestApp(t, withConfig(func(c *handlers.Config) { c.Production = prod }))
			_, body := a.get("/setup")
			token := csrfField.FindStringSubmatch(body)[1]
			resp, _ := a.postForm("/setup", url.Values{
				"_csrf": {token}, "email": {ownerEmail}, "password": {ownerPassword}, "password_confirm": {ownerPassword},
			})
			var session *http.Cookie
			for _, c := range resp.Cookies() {
				if strings.HasSuffix(c.Name, "ava_session") {
					session = c
				}
			}
			if session == nil {
				t.Fatalf("no session cookie: %v", resp.Header.Values("Set-Cookie"))
			}
			if !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Secure != prod {
				t.Fatalf("cookie flags: %+v", session)
			}
			if prod && session.Name != "__Host-ava_session" {
				t.Fatalf("production cookie name %q", session.Name)
			}
		})
	}
}

func TestCSRFProtectsStateChanges(t *testing.T) {
	a := newTestApp(t)
	u := a.signedIn()
	ctx := context.Background()

	// A form post without the token, as another site could make.
	resp, body := a.postForm("/tokens", url.Values{"_csrf": {"forged"}, "name": {"evil"}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Reload the page") {
		t.Fatalf("forged token: %d\n%s", resp.StatusCode, body)
	}
	// An htmx request without the header.
	req, _ := http.NewRequest(http.MethodPost, "/tokens", strings.NewReader("name=evil"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("HX-Request", "true")
	resp, _ = a.do(req)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("htmx without token: %d", resp.StatusCode)
	}
	if tokens, _ := a.accounts.Tokens(ctx, u.ID); len(tokens) != 0 {
		t.Fatalf("a forged request created %d tokens", len(tokens))
	}
	// With the token in the htmx header it works.
	resp, _ = a.postForm("/tokens", url.Values{"_csrf": {""}, "name": {"good"}}, "HX-Request", "true", "X-CSRF-Token", a.csrf())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("htmx with token: %d", resp.StatusCode)
	}
	// Sign-in and sign-out are protected too.
	for _, path := range []string{"/login", "/logout", "/setup"} {
		resp, _ := a.postForm(path, url.Values{"_csrf": {"forged"}, "email": {ownerEmail}, "password": {ownerPassword}})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s with a forged token: %d", path, resp.StatusCode)
		}
	}
}

func TestSignInRateLimitedEvenWithLimitsOff(t *testing.T) {
	a := newTestApp(t, withConfig(func(c *handlers.Config) { c.RateLimiting = false; c.SignInLimit = 3 }))
	a.signedIn()
	form := url.Values{"email": {ownerEmail}, "password": {"wrong password"}}
	for i := 0; i < 3; i++ {
		resp, body := a.postForm("/login", form)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Incorrect email or password") {
			t.Fatalf("attempt %d: %d", i+1, resp.StatusCode)
		}
	}
	resp, body := a.postForm("/login", url.Values{"email": {ownerEmail}, "password": {ownerPassword}})
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("4th attempt: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if !strings.Contains(body, "Try again in") {
		t.Fatalf("the page does not say when to retry:\n%s", body)
	}
}

func TestRouteRateLimits(t *testing.T) {
	a := newTestApp(t, withConfig(func(c *handlers.Config) { c.DefaultLimit = 2 }))
	u := a.signedIn()
	tokenA, _, _ := a.accounts.CreateToken(context.Background(), u.ID, "a")
	other, err := a.accounts.CreateOwner(context.Background(), "other@example.com", ownerPassword, false)
	if err != nil {
		t.Fatal(err)
	}
	tokenB, _, _ := a.accounts.CreateToken(context.Background(), other.ID, "b")

	for i := 0; i < 2; i++ {
		resp, _ := a.apiGet("/api/v1/me", tokenA)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("call %d: %d", i+1, resp.StatusCode)
		}
		if resp.Header.Get("X-RateLimit-Limit") != "2" || resp.Header.Get("X-RateLimit-Remaining") != strconv.Itoa(1-i) ||
			resp.Header.Get("X-RateLimit-Reset") == "" {
			t.Fatalf("rate-limit headers: %v", resp.Header)
		}
	}
	resp, body := a.apiGet("/api/v1/me", tokenA)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
		resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("over the limit: %d %v\n%s", resp.StatusCode, resp.Header, body)
	}
	var p map[string]any
	decodeJSON(t, body, &p)
	if p["status"] != float64(429) || p["correlation_id"] != resp.Header.Get("X-Correlation-ID") {
		t.Fatalf("problem: %v", p)
	}
	// Another account has its own budget; another route too.
	if resp, _ := a.apiGet("/api/v1/me", tokenB); resp.StatusCode != http.StatusOK {
		t.Fatalf("other account limited by the first one's calls: %d", resp.StatusCode)
	}
	if resp, _ := a.apiGet("/healthz", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("other route limited: %d", resp.StatusCode)
	}
	_, metrics := a.get("/metrics")
	if want := `ava_rate_limit_rejections_total{route="GET /api/v1/me"} 1`; !strings.Contains(metrics, want) {
		t.Fatalf("metrics lack %s", want)
	}
}

func TestPanicsAreRecovered(t *testing.T) {
	a := newTestApp(t, withDeps(func(d *handlers.Deps) {
		d.Sections = func(context.Context, services.User) ([]handlers.Section, error) {
			panic("sections exploded: secret detail")
		}
	}))
	a.signedIn()
	resp, body := a.get("/", "X-Correlation-ID", "panic-1")
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if strings.Contains(body, "exploded") || strings.Contains(body, "goroutine") || !strings.Contains(body, "panic-1") {
		t.Fatalf("the page leaks the panic or lacks the reference:\n%s", body)
	}
	found := false
	for _, rec := range a.logLines() {
		if rec["msg"] == "panic while serving request" {
			found = true
			if rec["correlation_id"] != "panic-1" || !strings.Contains(rec["stack"].(string), "goroutine") {
				t.Fatalf("panic log: %v", rec)
			}
		}
	}
	if !found {
		t.Fatal("the panic was not logged")
	}
	// The server goes on serving.
	if resp, _ := a.get("/login"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after the panic: %d", resp.StatusCode)
	}
}

func TestMetricsUseRoutePatterns(t *testing.T) {
	a := newTestApp(t)
	a.signedIn()
	a.postForm("/tokens/12345/revoke", nil)
	a.get("/no/such/page/987")
	_, metrics := a.get("/metrics")
	for _, want := range []string{
		`ava_http_requests_total{method="POST",route="POST /tokens/:id/revoke",status="404"} 1`,
		`ava_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`ava_http_request_duration_seconds_count{method="POST",route="POST /setup"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(metrics, "/tokens/12345") || strings.Contains(metrics, "/no/such/page") {
		t.Error("metrics carry a raw path")
	}
}

func TestHTMXErrorsAreFragments(t *testing.T) {
	a := newTestApp(t)
	// Signed out: htmx is told to go to the sign-in page.
	resp, _ := a.get("/fragments/tokens", "HX-Request", "true")
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("HX-Redirect") != "/login" {
		t.Fatalf("signed-out fragment: %d %q", resp.StatusCode, resp.Header.Get("HX-Redirect"))
	}
	a.signedIn()
	// The database going away mid-session: an alert with a retry, no page.
	_ = a.db.Close()
	resp, body := a.get("/fragments/tokens", "HX-Request", "true", "X-Correlation-ID", "frag-err-1")
	if resp.StatusCode != http.StatusInternalServerError || strings.Contains(body, "<html") {
		t.Fatalf("fragment error: %d\n%s", resp.StatusCode, body)
	}
	for _, want := range []string{`role="alert"`, `hx-get="/fragments/tokens"`, "Try again", "frag-err-1"} {
		if !strings.Contains(body, want) {
			t.Errorf("fragment error lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, "database") || strings.Contains(body, "sql") {
		t.Errorf("fragment leaks an internal error:\n%s", body)
	}
	// And readiness says so.
	resp, body = a.apiGet("/readyz", "")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(body, `"correlation_id"`) {
		t.Fatalf("readyz with the database closed: %d\n%s", resp.StatusCode, body)
	}
}

func TestUnknownAddressesAreRateLimited(t *testing.T) {
	a := newTestApp(t, withConfig(func(c *handlers.Config) { c.DefaultLimit = 2 }))
	for i, want := range []int{404, 404, 429} {
		resp, _ := a.apiGet(fmt.Sprintf("/api/v1/nope/%d", i), "")
		if resp.StatusCode != want {
			t.Fatalf("probe %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
	_, metrics := a.get("/metrics")
	if !strings.Contains(metrics, `ava_rate_limit_rejections_total{route="unmatched"} 1`) {
		t.Fatal("the refusal is not counted under the unmatched route")
	}
}
