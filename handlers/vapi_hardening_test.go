package handlers_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ava/console/handlers"
	"github.com/ava/console/services/upstream"
	"github.com/ava/console/services/vapi/vapitest"
)

// otherOwner creates a second owner (a second account, as `ava user
// create` does) and returns an API token; with session, the cookie jar
// holds that owner's browser session instead of the first one's.
func (a *testApp) otherOwner(email string, session bool) (token string, accountID int64) {
	a.t.Helper()
	ctx := context.Background()
	u, err := a.db.CreateUser(ctx, email, "not-a-hash", false)
	if err != nil {
		a.t.Fatal(err)
	}
	tok, _ := a.apiToken(u.ID, "second owner")
	if session {
		cookie, _, err := a.accounts.StartSession(ctx, u.ID)
		if err != nil {
			a.t.Fatal(err)
		}
		a.cookies["ava_session"] = cookie
	}
	return tok, u.AccountID
}

// connectKey stores these Vapi credentials for the token's account through
// the JSON API (the fake learns the key and the assistant first).
func (a *testApp) connectKey(token, key, assistantID string) {
	a.t.Helper()
	a.vapi.AddKey(key)
	a.vapi.PutAssistant(vapitest.DefaultAssistant(assistantID))
	resp, body := a.vapiCall(token, http.MethodPut, "/api/v1/integrations/vapi/credentials",
		`{"api_key":"`+key+`","assistant_id":"`+assistantID+`"}`)
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("connect %s: %d\n%s", assistantID, resp.StatusCode, body)
	}
}

// One account's key answered 429 three times: another account, whose key
// is fine, still reaches Vapi and the breaker stays closed. Three 5xx (an
// outage) still open it for both.
func TestOneAccountsRateLimitPausesNoOtherAccount(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, withConfig(noLimitOnLists), withUpstream(func(s *upstream.Settings) {
		s.FailureThreshold = 3
		s.RecoveryTimeout = time.Minute
	}))
	tokA := a.apiOwner(false)
	a.connectKey(tokA, vapiKey, vapiAssistant)
	const keyB, assistantB = "vapi-private-key-of-b-5678", "asst-0002"
	tokB, _ := a.otherOwner("second@example.com", false)
	a.connectKey(tokB, keyB, assistantB)
	list := func(tok string) (*http.Response, string) {
		return a.vapiCall(tok, http.MethodGet, "/api/v1/vapi/settings", "")
	}
	breaker := func() string { return a.guards.Breaker("vapi").State() }

	a.vapi.FailKey(vapiKey, 3, vapitest.Failure{Status: 429, Message: "Too Many Requests", RetryAfter: "5"})
	for i := 1; i <= 3; i++ {
		resp, body := list(tokA)
		p := assertProblem(t, resp, body, http.StatusTooManyRequests)
		if !strings.Contains(p.Detail, "Vapi is rate limiting us (Too Many Requests). Try again in 5 seconds.") {
			t.Errorf("A's rate-limited call %d: %+v", i, p)
		}
		if ra := resp.Header.Get("Retry-After"); ra != "5" {
			t.Errorf("A's rate-limited call %d: Retry-After %q, want Vapi's 5", i, ra)
		}
	}
	if s := breaker(); s != "closed" {
		t.Fatalf("three 429s on one account's key left the vapi breaker %s, want closed", s)
	}
	a.vapi.ResetRequests()
	resp, body := list(tokB)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("B, whose key is fine, got %d after A's 429s:\n%s", resp.StatusCode, body)
	}
	if r := a.vapi.Requests(); len(r) != 1 || r[0].Authorization != "Bearer "+keyB {
		t.Errorf("Vapi received %+v, want B's one call", r)
	}
	if resp, body := list(tokA); resp.StatusCode != http.StatusOK {
		t.Errorf("A after its rate limit: %d %s", resp.StatusCode, body)
	}

	// An outage: three 5xx on A's calls open the breaker for B too.
	a.vapi.FailAlways(vapitest.Failure{Status: 503, Message: "Service Unavailable"})
	for i := 1; i <= 3; i++ {
		if resp, body := list(tokA); resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("A's call %d during the outage: %d %s", i, resp.StatusCode, body)
		}
	}
	a.vapi.Recover()
	a.vapi.ResetRequests()
	for _, tok := range []string{tokA, tokB} {
		resp, body := list(tok)
		p := assertProblem(t, resp, body, http.StatusServiceUnavailable)
		if !strings.Contains(p.Detail, "Vapi has been failing") {
			t.Errorf("problem %+v", p)
		}
		if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 50 || ra > 60 {
			t.Errorf("Retry-After %q, want about the 1m recovery", resp.Header.Get("Retry-After"))
		}
	}
	if s := breaker(); s != "open" {
		t.Errorf("breaker %s after three 5xx", s)
	}
	a.noUpstreamCall("open breaker")
}

// VAPI_API_KEY / VAPI_ASSISTANT_ID serve the first account only: a second
// owner with no credentials of its own is not connected (and changes
// nothing at the operator's assistant); the Integrations page says whose
// they are. ENV_CREDENTIALS_SCOPE=all shares them.
func TestEnvironmentCredentialsServeOnlyTheFirstAccount(t *testing.T) {
	t.Parallel()
	const envKey, envAssistant = "sk-env-operator-key-wxyz", "asst-operator"
	setup := func(t *testing.T, opts ...appOption) *testApp {
		t.Helper()
		a := newTestApp(t, append([]appOption{withConfig(noLimitOnLists), withVapiEnv(envKey, envAssistant)}, opts...)...)
		a.vapi.AddKey(envKey)
		a.vapi.PutAssistant(vapitest.DefaultAssistant(envAssistant))
		return a
	}

	t.Run("first (default)", func(t *testing.T) {
		t.Parallel()
		a := setup(t)
		first := a.apiOwner(true)
		st, raw := a.vapiStatus(first)
		if st.CredentialSource == nil || *st.CredentialSource != "environment" {
			t.Fatalf("the first account's status: %s", raw)
		}
		_, page := a.get("/integrations")
		if !strings.Contains(page, "which serves only the first account: this one") {
			t.Errorf("the first account's card does not say the environment's credentials are its own:\n%s", page)
		}

		second, _ := a.otherOwner("second@example.com", true)
		a.vapi.ResetRequests()
		st, raw = a.vapiStatus(second)
		if st.Configured || st.CredentialSource != nil || len(st.Credentials) != 0 {
			t.Errorf("the second account's status: %s", raw)
		}
		for _, c := range []struct{ method, path, body string }{
			{http.MethodGet, "/api/v1/vapi/settings", ""},
			{http.MethodPut, "/api/v1/vapi/settings/greeting_message", `{"value":"Hijacked"}`},
		} {
			resp, body := a.vapiCall(second, c.method, c.path, c.body)
			p := assertProblem(t, resp, body, http.StatusNotFound)
			if !strings.Contains(p.Detail, "Vapi is not connected") {
				t.Errorf("%s %s as the second owner: %+v", c.method, c.path, p)
			}
		}
		a.noUpstreamCall("the second account")
		if got := a.vapi.Assistant(envAssistant)["firstMessage"]; got == "Hijacked" {
			t.Fatal("the second owner changed the operator's assistant")
		}
		_, page = a.get("/integrations")
		if !strings.Contains(page, "The server&#39;s environment credentials (VAPI_API_KEY, VAPI_ASSISTANT_ID) serve only the first account; this account needs its own.") {
			t.Errorf("the second account's card does not say whose the environment's credentials are:\n%s", page)
		}
	})

	t.Run("all", func(t *testing.T) {
		t.Parallel()
		a := setup(t, withEnv("ENV_CREDENTIALS_SCOPE", "all"))
		a.apiOwner(false)
		second, _ := a.otherOwner("second@example.com", true)
		st, raw := a.vapiStatus(second)
		if st.CredentialSource == nil || *st.CredentialSource != "environment" {
			t.Fatalf("with ENV_CREDENTIALS_SCOPE=all, the second account's status: %s", raw)
		}
		if resp, body := a.vapiCall(second, http.MethodGet, "/api/v1/vapi/settings", ""); resp.StatusCode != http.StatusOK {
			t.Errorf("the second account's list: %d %s", resp.StatusCode, body)
		}
		if _, page := a.get("/integrations"); !strings.Contains(page, "shared by every account without its own") {
			t.Errorf("the card does not say the environment's credentials are shared:\n%s", page)
		}
	})
}

// auditBody is GET /api/v1/audit's answer.
type auditBody struct {
	Changes []struct {
		ID          int64   `json:"id"`
		At          string  `json:"at"`
		Actor       *string `json:"actor"`
		Integration string  `json:"integration"`
		Key         string  `json:"key"`
		From        any     `json:"from"`
		To          any     `json:"to"`
	} `json:"changes"`
}

func (a *testApp) auditTrail(token, query string) auditBody {
	a.t.Helper()
	resp, body := a.callAPI(apiRequest{path: "/api/v1/audit" + query, token: token})
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("audit%s: %d\n%s", query, resp.StatusCode, body)
	}
	var got auditBody
	decodeJSON(a.t, body, &got)
	return got
}

// 50 concurrent PUTs of the greeting: all answer 200, Vapi ends on the
// newest audit row's value, and every row starts where the one before ended.
func TestConcurrentGreetingChangesKeepTheTrailInOrder(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, withConfig(func(c *handlers.Config) { c.DefaultLimit = 1000 }))
	tok := a.apiOwner(false)
	a.connectAPI(tok)
	a.vapi.SetDelay(2 * time.Millisecond) // let the calls overlap
	const n = 50
	var wg sync.WaitGroup
	statuses := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprintf(`{"value":"Greeting number %d"}`, i)
			req := httptest.NewRequest(http.MethodPut, "/api/v1/vapi/settings/greeting_message", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := a.app.Test(req, -1)
			if err != nil {
				statuses <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				statuses <- fmt.Sprintf("%d %s", resp.StatusCode, b)
				return
			}
			statuses <- ""
		})
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != "" {
			t.Fatalf("a concurrent PUT: %s", s)
		}
	}
	a.vapi.SetDelay(0)
	trail := a.auditTrail(tok, "?integration=vapi&limit=200").Changes
	if len(trail) != n {
		t.Fatalf("%d audit rows for %d changes", len(trail), n)
	}
	if atVapi := a.vapi.Assistant(vapiAssistant)["firstMessage"]; trail[0].To != atVapi {
		t.Errorf("Vapi has %q, but the newest audit row says %q", atVapi, trail[0].To)
	}
	broken := 0
	for i := 0; i+1 < len(trail); i++ {
		if trail[i].From != trail[i+1].To {
			broken++
		}
		if trail[i].ID <= trail[i+1].ID {
			t.Errorf("rows not newest first: %d before %d", trail[i].ID, trail[i+1].ID)
		}
	}
	if broken > 0 {
		t.Errorf("%d of %d rows do not start where the one before ended", broken, n-1)
	}
	if first := trail[n-1].From; first != "Hello, thanks for calling. How can I help you today?" {
		t.Errorf("the oldest row starts from %q", first)
	}
}

// A change Vapi applied whose answer was lost is read back, recorded and
// answered 200; the trail has it once, and a retry adds nothing.
func TestVapiLostAnswerIsRecorded(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, withUpstream(func(s *upstream.Settings) { s.Timeout = 500 * time.Millisecond }))
	tok := a.apiOwner(false)
	a.connectAPI(tok)
	a.vapi.FailMethod(http.MethodPatch, 1, vapitest.Failure{AfterApply: true, Drop: true})
	put := func() (*http.Response, string) {
		return a.vapiCall(tok, http.MethodPut, "/api/v1/vapi/settings/max_call_duration", `{"value":900}`)
	}
	resp, body := put()
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"value":900`) {
		t.Fatalf("a change Vapi applied, its answer dropped: %d %s", resp.StatusCode, body)
	}
	a.vapi.FailMethod(http.MethodPatch, 1, vapitest.Failure{AfterApply: true, Delay: 2 * time.Second})
	if resp, body := a.vapiCall(tok, http.MethodPut, "/api/v1/vapi/settings/max_call_duration", `{"value":1200}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("a change Vapi applied, its answer late: %d %s", resp.StatusCode, body)
	}
	if resp, _ := a.vapiCall(tok, http.MethodPut, "/api/v1/vapi/settings/max_call_duration", `{"value":1200}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("retry: %d", resp.StatusCode)
	}
	trail := a.auditTrail(tok, "?integration=vapi").Changes
	if len(trail) != 2 || trail[0].From != 900.0 || trail[0].To != 1200.0 || trail[1].From != 600.0 || trail[1].To != 900.0 {
		t.Errorf("trail %+v, want 600 -> 900 -> 1200, once each", trail)
	}
}

// A save that times out answers within UPSTREAM_TIMEOUT and the short read
// back (not twice the timeout): the row shows the value from before the
// save instead of asking Vapi again.
func TestVapiTimedOutSaveIsNotReadAgain(t *testing.T) {
	t.Parallel()
	const timeout = 500 * time.Millisecond
	a := newTestApp(t, withUpstream(func(s *upstream.Settings) { s.Timeout = timeout }))
	a.connectedToVapi()
	// The read before the save is answered; then Vapi stops answering.
	a.vapi.FailNext(1, vapitest.Failure{})
	a.vapi.FailNext(5, vapitest.Failure{Delay: 5 * time.Second})
	start := time.Now()
	resp, body := a.postForm("/vapi/settings/max_call_duration", url.Values{"value": {"900"}}, "HX-Request", "true")
	took := time.Since(start)
	a.vapi.Recover()
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(body, "did not answer within 500ms") {
		t.Fatalf("timed-out save: %d\n%s", resp.StatusCode, body)
	}
	if took >= 2*timeout {
		t.Errorf("the failed save took %s, want under twice UPSTREAM_TIMEOUT (%s)", took, 2*timeout)
	}
	if !strings.Contains(body, "600 seconds") || !strings.Contains(body, `value="900"`) {
		t.Errorf("the row should show the value from before the save and what was typed:\n%s", body)
	}
	if got := a.vapi.Assistant(vapiAssistant)["maxDurationSeconds"]; got != 600.0 {
		t.Errorf("Vapi has %v", got)
	}
}
