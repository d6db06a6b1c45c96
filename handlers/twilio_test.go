package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ava/console/services/twilio/twiliotest"
)

// connectedToTwilio signs in and connects a fake Twilio account with n numbers.
func (a *testApp) connectedToTwilio(n int) (sid, token string) {
	a.t.Helper()
	sid, token = twiliotest.AccountSID(0), twiliotest.AuthToken(0)
	a.twilio.AddAccount(sid, token, n)
	a.signedIn()
	resp, body := a.postForm("/integrations/twilio", url.Values{"account_sid": {sid}, "auth_token": {token}}, "HX-Request", "true")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Twilio connected") {
		a.t.Fatalf("connect: %d\n%s", resp.StatusCode, body)
	}
	return sid, token
}

func TestTwilioNumbersPageFlow(t *testing.T) {
	a := newTestApp(t)
	sid, token := a.connectedToTwilio(120)
	resp, body := a.get("/numbers")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `hx-get="/fragments/twilio/numbers"`) {
		t.Fatalf("page: %d\n%s", resp.StatusCode, body)
	}
	a.twilio.ResetRequests()
	resp, body = a.get("/fragments/twilio/numbers", "HX-Request", "true", "X-Correlation-ID", "numbers-1")
	if resp.StatusCode != http.StatusOK || strings.Count(body, "<tr data-sid=") != 120 || !strings.Contains(body, "14155550119") {
		t.Fatalf("list: %d (%d rows)", resp.StatusCode, strings.Count(body, "<tr data-sid="))
	}
	reqs := a.twilio.Requests()
	if len(reqs) != 3 || reqs[0].CorrelationID != "numbers-1" || reqs[2].CorrelationID != "numbers-1" || reqs[0].Username != sid {
		t.Fatalf("paging requests (%d): %+v", len(reqs), reqs)
	}
	_, body = a.get("/integrations")
	if strings.Contains(body, token) || !strings.Contains(body, "••••"+token[len(token)-4:]) {
		t.Fatal("the integrations page must mask the auth token")
	}

	a.twilio.SetNumbers(sid, nil)
	_, body = a.get("/fragments/twilio/numbers", "HX-Request", "true")
	if !strings.Contains(body, "No numbers on this Twilio account") {
		t.Fatalf("empty:\n%s", body)
	}
	a.twilio.FailNext(1, twiliotest.Failure{Status: 401, Code: 20003, Message: "Authenticate"})
	resp, body = a.get("/fragments/twilio/numbers", "HX-Request", "true")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "Twilio refused the credentials (20003: Authenticate") ||
		!strings.Contains(body, "https://www.twilio.com/docs/errors/20003") {
		t.Fatalf("bad credentials: %d\n%s", resp.StatusCode, body)
	}
}

func TestTwilioNotConnected(t *testing.T) {
	a := newTestApp(t)
	a.signedIn()
	_, body := a.get("/fragments/twilio/numbers", "HX-Request", "true")
	if !strings.Contains(body, "Twilio is not connected") || !strings.Contains(body, `href="/integrations"`) {
		t.Fatalf("not connected:\n%s", body)
	}
}

func TestTwilioEnvironmentCredentials(t *testing.T) {
	sid, token := twiliotest.AccountSID(3), twiliotest.AuthToken(3)
	a := newTestApp(t, withTwilioEnv(sid, token))
	a.twilio.AddAccount(sid, token, 2)
	a.signedIn()
	_, body := a.get("/fragments/twilio/numbers", "HX-Request", "true")
	if strings.Count(body, "<tr data-sid=") != 2 {
		t.Fatalf("numbers with environment credentials:\n%s", body)
	}
	_, body = a.get("/integrations")
	if !strings.Contains(body, "From the server&#39;s environment") && !strings.Contains(body, "From the server's environment") {
		t.Fatalf("the page does not say the credentials come from the environment")
	}
}
