package handlers_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// pageCSRF is the CSRF token a page rendered for its forms and htmx requests.
func pageCSRF(t *testing.T, body string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		m = csrfHeader.FindStringSubmatch(body)
	}
	if m == nil || m[1] == "" {
		t.Fatalf("the page renders no CSRF token:\n%s", body)
	}
	return m[1]
}

var csrfHeader = regexp.MustCompile(`hx-headers='\{"X-CSRF-Token": "([^"]*)"\}'`)

// csrfSetCookie reports whether a response sets the CSRF cookie.
func csrfSetCookie(resp *http.Response) bool {
	for _, c := range resp.Cookies() {
		if strings.HasSuffix(c.Name, "ava_csrf") {
			return true
		}
	}
	return false
}

// TestCSRFNoStateUnderAFlood: requests without cookies (probes, 404s, 429s)
// neither get a CSRF cookie nor leave anything behind in memory.
func TestCSRFNoStateUnderAFlood(t *testing.T) {
	// The test's log buffer would keep every access-log line: log errors only.
	a := newTestApp(t, withEnv("LOG_LEVEL", "error"))
	flood := func(n int) {
		for i := 0; i < n; i++ {
			path := "/healthz"
			if i%2 == 1 {
				path = "/no-such-page-" + strings.Repeat("x", i%7)
			}
			resp, err := a.app.Test(httptest.NewRequest(http.MethodGet, path, nil), -1)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if csrfSetCookie(resp) {
				t.Fatalf("GET %s (%d) set a CSRF cookie: %v", path, resp.StatusCode, resp.Header.Values("Set-Cookie"))
			}
		}
	}
	flood(1000) // warm up pools and lazily built state
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	const n = 20000
	flood(n)
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap after %d cookieless requests: %+d bytes", n, grown)
	// An in-memory token store keeps a few hundred bytes a request (about
	// 6 MB here); nothing kept per request stays well under 50.
	if perRequest := grown / n; perRequest > 50 {
		t.Fatalf("the heap grew by %d bytes over %d cookieless requests (%d a request): something keeps per-request state", grown, n, perRequest)
	}
	// The sign-in page is the one that sets it.
	resp, _ := a.get("/setup")
	if !csrfSetCookie(resp) {
		t.Fatalf("GET /setup set no CSRF cookie: %v", resp.Header.Values("Set-Cookie"))
	}
}

// sharedDB is one database for several consoles (instances, restarts): the
// same DATABASE_URL and, as newTestApp always does, the same AVA_SECRET_KEY.
func sharedDB(t *testing.T) appOption {
	return withEnv("DATABASE_URL", "sqlite:"+filepath.Join(t.TempDir(), "shared.db"))
}

// TestCSRFTokensWorkOnEveryInstanceAndAfterRestart: a form opened on one
// instance submits on another and after a restart, signed out (setup, sign
// in) and signed in.
func TestCSRFTokensWorkOnEveryInstanceAndAfterRestart(t *testing.T) {
	db := sharedDB(t)
	a, b := newTestApp(t, db), newTestApp(t, db)

	// The setup form opened on A is accepted by B.
	_, body := a.get("/setup")
	b.cookies = a.cookies
	form := url.Values{"_csrf": {pageCSRF(t, body)}, "email": {ownerEmail}, "password": {ownerPassword}, "password_confirm": {ownerPassword}}
	if resp, body := b.postForm("/setup", form); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("setup form of A posted to B: %d\n%s", resp.StatusCode, body)
	}
	// Signed in: the tokens page of B, its form posted to A.
	_, body = b.get("/tokens")
	tokensForm := url.Values{"_csrf": {pageCSRF(t, body)}, "name": {"made on A"}}
	a.cookies = b.cookies
	if resp, body := a.postForm("/tokens", tokensForm); resp.StatusCode != http.StatusOK || !strings.Contains(body, "ava_") {
		t.Fatalf("tokens form of B posted to A: %d\n%s", resp.StatusCode, body)
	}
	// The htmx header works across instances too.
	if resp, _ := a.postForm("/tokens", url.Values{"_csrf": {""}, "name": {"htmx"}}, "HX-Request", "true", "X-CSRF-Token", tokensForm.Get("_csrf")); resp.StatusCode != http.StatusOK {
		t.Fatalf("htmx header of B's page on A: %d", resp.StatusCode)
	}

	// A restart: both instances stop, a new one starts on the same database.
	_ = a.console.Close()
	_ = b.console.Close()
	c := newTestApp(t, db)
	c.cookies = a.cookies
	tokensForm.Set("name", "after restart")
	if resp, body := c.postForm("/tokens", tokensForm); resp.StatusCode != http.StatusOK || !strings.Contains(body, "ava_") {
		t.Fatalf("tokens form after a restart: %d\n%s", resp.StatusCode, body)
	}
	u, _, err := c.db.UserByEmail(context.Background(), ownerEmail)
	if err != nil {
		t.Fatal(err)
	}
	if tokens, _ := c.accounts.Tokens(context.Background(), u.ID); len(tokens) != 3 {
		t.Fatalf("want 3 tokens, got %d", len(tokens))
	}

	// Signed out: the sign-in form opened before a restart still submits.
	if resp, _ := c.postForm("/logout", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	_, body = c.get("/login")
	loginForm := url.Values{"_csrf": {pageCSRF(t, body)}, "email": {ownerEmail}, "password": {ownerPassword}}
	_ = c.console.Close()
	d := newTestApp(t, db)
	d.cookies = c.cookies
	if resp, body := d.postForm("/login", loginForm); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("sign-in form from before a restart: %d\n%s", resp.StatusCode, body)
	}
	// After sign-in the session's token replaces the signed-out one.
	if _, ok := d.cookies["ava_csrf"]; ok {
		t.Fatal("the signed-out CSRF cookie outlived the sign-in")
	}
	_, body = d.get("/tokens")
	if tok := pageCSRF(t, body); tok == loginForm.Get("_csrf") {
		t.Fatal("the signed-in page renders the signed-out token")
	}
	tokensForm.Set("name", "stale")
	if resp, _ := d.postForm("/tokens", tokensForm); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the token of the previous session still works: %d", resp.StatusCode)
	}
}

// TestCSRFSignedOutTokenMustMatchItsCookie: the signed-out token is a signed
// double-submit token: the field must equal the cookie and carry our
// signature; it is never read from the query string.
func TestCSRFSignedOutTokenMustMatchItsCookie(t *testing.T) {
	a := newTestApp(t)
	a.signedIn()
	a.postForm("/logout", nil)
	_, body := a.get("/login")
	tok := pageCSRF(t, body)
	login := func(field, cookie, query string) int {
		t.Helper()
		saved := a.cookies
		a.cookies = map[string]string{}
		if cookie != "" {
			a.cookies["ava_csrf"] = cookie
		}
		path := "/login"
		if query != "" {
			path += "?_csrf=" + url.QueryEscape(query)
		}
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(url.Values{
			"_csrf": {field}, "email": {ownerEmail}, "password": {ownerPassword},
		}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, _ := a.do(req)
		a.cookies = saved
		return resp.StatusCode
	}
	// Forged: a field without the cookie, a cookie and field that differ,
	// a self-made pair, a token in the query string only.
	forged := strings.Repeat("A", len(tok))
	for name, got := range map[string]int{
		"no cookie":          login(tok, "", ""),
		"other cookie":       login(tok, forged, ""),
		"unsigned pair":      login(forged, forged, ""),
		"query string only":  login("", tok, tok),
		"cookie, no field":   login("", tok, ""),
		"truncated and same": login(tok[:len(tok)-2], tok[:len(tok)-2], ""),
	} {
		if got != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, got)
		}
	}
	if got := login(tok, tok, ""); got != http.StatusSeeOther {
		t.Fatalf("the page's own token: %d", got)
	}
}

// TestBearerTokensAreForTheAPIOnly: an API token does not drive browser
// routes: it cannot mint tokens or see pages, with or without a CSRF pair.
func TestBearerTokensAreForTheAPIOnly(t *testing.T) {
	a := newTestApp(t)
	u := a.signedIn()
	ctx := context.Background()
	token, _, err := a.accounts.CreateToken(ctx, u.ID, "leaked")
	if err != nil {
		t.Fatal(err)
	}
	bearer := func(method, path string, form url.Values, cookies map[string]string) (*http.Response, string) {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+token)
		for k, v := range cookies {
			req.AddCookie(&http.Cookie{Name: k, Value: v})
		}
		resp, err := a.app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		_, _ = io.Copy(&sb, resp.Body)
		_ = resp.Body.Close()
		return resp, sb.String()
	}
	refused := func(what string, resp *http.Response, body string) {
		t.Helper()
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusSeeOther:
		default:
			t.Errorf("%s: %d, want a refusal\n%s", what, resp.StatusCode, body)
		}
		if strings.Contains(body, "ava_") && strings.Contains(body, "Copy") {
			t.Errorf("%s: the answer shows a token:\n%s", what, body)
		}
	}

	// Only the bearer token.
	resp, body := bearer(http.MethodPost, "/tokens", url.Values{"name": {"minted"}}, nil)
	refused("POST /tokens with a bearer token", resp, body)
	// A bearer token plus a signed-out CSRF pair fetched from /login.
	fresh := newTestApp(t)
	fresh.signedIn()
	fresh.postForm("/logout", nil)
	_, loginPage := fresh.get("/login")
	pair := pageCSRF(t, loginPage)
	resp, body = bearer(http.MethodPost, "/tokens", url.Values{"name": {"minted"}, "_csrf": {pair}}, map[string]string{"ava_csrf": pair})
	refused("POST /tokens with a bearer token and a CSRF pair", resp, body)
	// Paths that lead to a browser route through /api/.
	for _, p := range []string{"/api/../tokens", "/api/%2e%2e/tokens", "/API/../tokens"} {
		resp, body = bearer(http.MethodPost, p, url.Values{"name": {"minted"}}, nil)
		if resp.StatusCode == http.StatusOK {
			t.Errorf("POST %s with a bearer token: %d\n%s", p, resp.StatusCode, body)
		}
	}
	if tokens, _ := a.accounts.Tokens(ctx, u.ID); len(tokens) != 1 {
		t.Fatalf("a bearer token minted %d new tokens", len(tokens)-1)
	}
	// Pages.
	for _, p := range []string{"/", "/tokens", "/fragments/tokens"} {
		resp, body = bearer(http.MethodGet, p, url.Values{}, nil)
		if resp.StatusCode == http.StatusOK || strings.Contains(body, ownerEmail) {
			t.Errorf("GET %s with a bearer token: %d\n%s", p, resp.StatusCode, body)
		}
	}
	// The session cookie still counts next to a bearer header, and the API
	// still takes the token.
	resp, body = bearer(http.MethodGet, "/", url.Values{}, map[string]string{"ava_session": a.cookies["ava_session"]})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, ownerEmail) {
		t.Fatalf("GET / with a session and a bearer header: %d", resp.StatusCode)
	}
	if resp, _ := a.apiGet("/api/v1/me", token); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/me with the token: %d", resp.StatusCode)
	}
}

// TestAPIWithoutCredentialsIsUnauthorizedNotForbidden: an API write with no
// token and no session has nothing to forge: it gets the route's 401 (or
// 405 for a method the path does not take), not a CSRF 403.
func TestAPIWithoutCredentialsIsUnauthorizedNotForbidden(t *testing.T) {
	a := newTestApp(t)
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{http.MethodPut, "/api/v1/integrations/vapi/credentials", http.StatusUnauthorized},
		{http.MethodDelete, "/api/v1/integrations/twilio/credentials", http.StatusUnauthorized},
		{http.MethodPost, "/api/v1/integrations/email/test", http.StatusUnauthorized},
		{http.MethodPost, "/api/v1/me", http.StatusMethodNotAllowed},
	} {
		req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := a.app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s without credentials: %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
		}
	}
}
