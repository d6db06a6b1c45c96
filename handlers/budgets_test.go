package handlers_test

import (
	"net/http"
	"testing"
)

// RATE_LIMIT_DEFAULT sets each route's budget.
func TestRouteBudgetFromTheEnvironment(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, withEnv("ENABLE_RATE_LIMITING", "true"), withEnv("RATE_LIMIT_DEFAULT", "2"))
	for i, want := range []int{http.StatusOK, http.StatusOK, http.StatusTooManyRequests} {
		resp, body := a.get("/healthz")
		if resp.StatusCode != want || resp.Header.Get("X-RateLimit-Limit") != "2" {
			t.Fatalf("request %d: %d (limit %q) %s, want %d under a budget of 2", i+1, resp.StatusCode, resp.Header.Get("X-RateLimit-Limit"), body, want)
		}
	}
}
