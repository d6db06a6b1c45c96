package handlers_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/ava/console/handlers"
)

// fiber's app.Test connects from 0.0.0.0: that is the proxy the tests trust.
const testPeer = "0.0.0.0/32"

// signInAttempt posts a wrong password to /login as the client behind the
// X-Forwarded-For value (none when empty) and returns the status.
func (a *testApp) signInAttempt(forwardedFor string) int {
	a.t.Helper()
	var header []string
	if forwardedFor != "" {
		header = []string{"X-Forwarded-For", forwardedFor}
	}
	resp, _ := a.postForm("/login", url.Values{"email": {ownerEmail}, "password": {"not the password"}}, header...)
	return resp.StatusCode
}

func signInBudget(limit int) appOption {
	return withConfig(func(c *handlers.Config) { c.SignInLimit = limit })
}

// TestTrustedProxyClientsHaveTheirOwnSignInBudget: behind a trusted proxy,
// each client (X-Forwarded-For) has its own sign-in budget; the addresses a
// client writes itself, left of what the proxy appended, change nothing.
func TestTrustedProxyClientsHaveTheirOwnSignInBudget(t *testing.T) {
	a := newTestApp(t, withEnv("TRUSTED_PROXIES", "10.0.0.0/8, "+testPeer), signInBudget(2))
	a.signedIn()
	a.cookies = map[string]string{}

	for i := range 2 {
		if got := a.signInAttempt("203.0.113.1"); got != http.StatusUnauthorized {
			t.Fatalf("client 1, attempt %d: %d", i+1, got)
		}
	}
	if got := a.signInAttempt("203.0.113.1"); got != http.StatusTooManyRequests {
		t.Fatalf("client 1 over its budget: %d, want 429", got)
	}
	if got := a.signInAttempt("203.0.113.2"); got != http.StatusUnauthorized {
		t.Fatalf("client 2 shares client 1's budget: %d", got)
	}
	// A chain of trusted proxies: the client is the first untrusted hop
	// from the right.
	if got := a.signInAttempt("203.0.113.3, 10.1.2.3"); got != http.StatusUnauthorized {
		t.Fatalf("client 3 behind two proxies: %d", got)
	}
	// Client 1 cannot buy a new budget by prepending addresses of its
	// choosing: the proxy appended its real one.
	for _, spoof := range []string{"198.51.100.7, 203.0.113.1", "198.51.100.8,203.0.113.1, 10.0.0.9"} {
		if got := a.signInAttempt(spoof); got != http.StatusTooManyRequests {
			t.Errorf("X-Forwarded-For %q: %d, want client 1's 429", spoof, got)
		}
	}
}

// TestUntrustedPeerForwardedForIgnored: from a peer that is not a trusted
// proxy (none by default), X-Forwarded-For is ignored: one budget.
func TestUntrustedPeerForwardedForIgnored(t *testing.T) {
	for name, env := range map[string]string{"default": "", "other proxies": "10.0.0.0/8,192.168.0.0/16"} {
		t.Run(name, func(t *testing.T) {
			a := newTestApp(t, withEnv("TRUSTED_PROXIES", env), signInBudget(2))
			a.signedIn()
			a.cookies = map[string]string{}
			for i, xff := range []string{"203.0.113.1", "203.0.113.2"} {
				if got := a.signInAttempt(xff); got != http.StatusUnauthorized {
					t.Fatalf("attempt %d: %d", i+1, got)
				}
			}
			if got := a.signInAttempt("203.0.113.3"); got != http.StatusTooManyRequests {
				t.Fatalf("a new X-Forwarded-For from an untrusted peer got a new budget: %d", got)
			}
			if got := a.signInAttempt(""); got != http.StatusTooManyRequests {
				t.Fatalf("without X-Forwarded-For: %d", got)
			}
		})
	}
}

// TestTrustedProxyRouteBudgets: the per-route limits of anonymous callers
// key on the same client address.
func TestTrustedProxyRouteBudgets(t *testing.T) {
	a := newTestApp(t, withEnv("TRUSTED_PROXIES", testPeer), withConfig(func(c *handlers.Config) { c.DefaultLimit = 1 }))
	for _, xff := range []string{"203.0.113.1", "203.0.113.2"} {
		if resp, _ := a.get("/healthz", "X-Forwarded-For", xff); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", xff, resp.StatusCode)
		}
	}
	if resp, _ := a.get("/healthz", "X-Forwarded-For", "203.0.113.1"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second request of one client: %d", resp.StatusCode)
	}
}
