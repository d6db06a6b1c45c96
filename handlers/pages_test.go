package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func TestFirstRunSetupOnlyWhileNoOwner(t *testing.T) {
	a := newTestApp(t)
	resp, _ := a.get("/")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/setup" {
		t.Fatalf("fresh install: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Mismatched passwords: refused, the email is kept.
	resp, body := a.postForm("/setup", url.Values{"email": {ownerEmail}, "password": {ownerPassword}, "password_confirm": {"other one!!"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "The two passwords differ") ||
		!strings.Contains(body, `value="`+ownerEmail+`"`) {
		t.Fatalf("mismatch: %d\n%s", resp.StatusCode, body)
	}
	resp, body = a.postForm("/setup", url.Values{"email": {ownerEmail}, "password": {"short"}, "password_confirm": {"short"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "Password must be 10 to 128 characters") {
		t.Fatalf("short password: %d\n%s", resp.StatusCode, body)
	}
	if n, _ := a.db.CountUsers(context.Background()); n != 0 {
		t.Fatal("a refused setup stored an owner")
	}

	a.signedIn()
	resp, body = a.get("/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "<h1>Home</h1>") || !strings.Contains(body, ownerEmail) {
		t.Fatalf("home after setup: %d", resp.StatusCode)
	}
	// Setup is gone once the owner exists, for everyone.
	a.cookies = map[string]string{}
	resp, _ = a.get("/setup")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("setup after the owner exists: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	a.postForm("/setup", url.Values{"email": {"intruder@example.com"}, "password": {ownerPassword}, "password_confirm": {ownerPassword}})
	if n, _ := a.db.CountUsers(context.Background()); n != 1 {
		t.Fatalf("a second setup created an owner (%d owners)", n)
	}
	resp, _ = a.get("/")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("signed out home: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestSignInAndOut(t *testing.T) {
	a := newTestApp(t)
	a.signedIn()
	a.postForm("/logout", nil)
	if _, ok := a.cookies["ava_session"]; ok {
		t.Fatal("sign-out kept the session cookie")
	}
	resp, body := a.postForm("/login", url.Values{"email": {ownerEmail}, "password": {"not the password"}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Incorrect email or password") ||
		!strings.Contains(body, `role="alert"`) || !strings.Contains(body, `value="`+ownerEmail+`"`) {
		t.Fatalf("wrong password: %d\n%s", resp.StatusCode, body)
	}
	if strings.Contains(body, "not the password") {
		t.Fatal("the page echoes the password")
	}
	if _, ok := a.cookies["ava_session"]; ok {
		t.Fatal("a wrong password started a session")
	}
	resp, _ = a.postForm("/login", url.Values{"email": {"OWNER@example.com"}, "password": {ownerPassword}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("sign-in: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	oldSession := a.cookies["ava_session"]
	a.postForm("/logout", nil)
	// The old cookie no longer works even if someone kept it.
	a.cookies["ava_session"] = oldSession
	if resp, _ := a.get("/tokens"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("ended session still serves pages: %d", resp.StatusCode)
	}
	for _, rec := range a.logLines() {
		for k, v := range rec {
			if s, ok := v.(string); ok && (strings.Contains(s, ownerPassword) || strings.Contains(s, "not the password")) {
				t.Fatalf("a password reached the logs in %s: %v", k, rec)
			}
		}
	}
}

var newToken = regexp.MustCompile(`data-testid="new-token">(ava_[A-Za-z0-9_-]+)<`)

func TestTokensPage(t *testing.T) {
	a := newTestApp(t)
	a.signedIn()
	resp, body := a.get("/tokens")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `class="skeleton"`) || !strings.Contains(body, `hx-get="/fragments/tokens"`) {
		t.Fatalf("tokens page first paint: %d\n%s", resp.StatusCode, body)
	}
	_, list := a.get("/fragments/tokens", "HX-Request", "true")
	if !strings.Contains(list, "No API tokens yet") {
		t.Fatalf("empty list:\n%s", list)
	}

	htmx := []string{"HX-Request", "true"}
	resp, body = a.postForm("/tokens", url.Values{"name": {"  "}}, htmx...)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "Token name must be 1 to 64 characters") {
		t.Fatalf("blank name: %d\n%s", resp.StatusCode, body)
	}
	if !strings.Contains(body, `aria-invalid="true" aria-describedby="token-error"`) || !strings.Contains(body, `id="token-error"`) {
		t.Fatalf("the refused field is not marked invalid and tied to its error:\n%s", body)
	}
	resp, body = a.postForm("/tokens", url.Values{"name": {"deploy <script>"}}, htmx...)
	m := newToken.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil || resp.Header.Get("HX-Trigger") != "tokens-changed" ||
		!strings.Contains(body, `hx-swap-oob="beforeend:#toasts"`) || !strings.Contains(body, "Token created") {
		t.Fatalf("create: %d %v\n%s", resp.StatusCode, resp.Header, body)
	}
	if strings.Contains(body, "<script>") {
		t.Fatal("the token name is not escaped")
	}
	plain := m[1]
	_, list = a.get("/fragments/tokens", "HX-Request", "true")
	if strings.Contains(list, plain) || !strings.Contains(list, "ava_…"+plain[len(plain)-4:]) || !strings.Contains(list, "deploy &lt;script&gt;") {
		t.Fatalf("the list must show the token masked:\n%s", list)
	}
	if resp, _ := a.apiGet("/api/v1/me", plain); resp.StatusCode != http.StatusOK {
		t.Fatalf("new token refused: %d", resp.StatusCode)
	}

	id := regexp.MustCompile(`/tokens/(\d+)/revoke`).FindStringSubmatch(list)[1]
	resp, body = a.postForm("/tokens/"+id+"/revoke", nil, htmx...)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Token revoked") || !strings.Contains(body, "Revoked") {
		t.Fatalf("revoke: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := a.apiGet("/api/v1/me", plain); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("revoked token accepted: %d", resp.StatusCode)
	}

	// Without JavaScript: the page itself shows the token once; revoke redirects.
	resp, body = a.postForm("/tokens", url.Values{"name": {"no js"}})
	if resp.StatusCode != http.StatusOK || !newToken.MatchString(body) || !strings.Contains(body, "<h1>API tokens</h1>") {
		t.Fatalf("no-JS create: %d", resp.StatusCode)
	}
	resp, _ = a.postForm("/tokens/"+id+"/revoke", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/tokens" {
		t.Fatalf("no-JS revoke: %d", resp.StatusCode)
	}
	// Someone else's or unknown token id.
	if resp, _ := a.postForm("/tokens/999/revoke", nil, htmx...); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown token: %d", resp.StatusCode)
	}
}
