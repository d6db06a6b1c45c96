package handlers_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ava/console/services/twilio/twiliotest"
	"github.com/ava/console/services/upstream"
)

const (
	twilioKeySID    = "SK0123456789abcdef0123456789abcdef"
	twilioKeySecret = "apikeysecret0000000000000000wxyz"
)

// twilioCall is one call of the JSON API with the owner's token, checked
// against the OpenAPI document by callAPI.
func (a *testApp) twilioCall(token, method, path, body string, header ...string) (*http.Response, string) {
	a.t.Helper()
	h := map[string]string{}
	for i := 0; i+1 < len(header); i += 2 {
		h[header[i]] = header[i+1]
	}
	return a.callAPI(apiRequest{method: method, path: path, token: token, body: body, header: h})
}

func twilioCredentialsBody(sid, token, keySID string) string {
	m := map[string]string{"account_sid": sid, "auth_token": token}
	if keySID != "" {
		m["api_key_sid"] = keySID
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// twilioStatus returns Twilio's entry of GET /api/v1/integrations.
func (a *testApp) twilioStatus(token string) integrationBody {
	a.t.Helper()
	resp, body := a.twilioCall(token, http.MethodGet, "/api/v1/integrations", "")
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("integrations: %d\n%s", resp.StatusCode, body)
	}
	var got struct {
		Integrations []integrationBody `json:"integrations"`
	}
	decodeJSON(a.t, body, &got)
	for _, i := range got.Integrations {
		if i.Name == "twilio" {
			return i
		}
	}
	a.t.Fatalf("no twilio in %s", body)
	return integrationBody{}
}

type numbersBody struct {
	Numbers []struct {
		SID          string `json:"sid"`
		PhoneNumber  string `json:"phone_number"`
		FriendlyName string `json:"friendly_name"`
		Capabilities struct {
			Voice bool `json:"voice"`
			SMS   bool `json:"sms"`
			MMS   bool `json:"mms"`
		} `json:"capabilities"`
	} `json:"numbers"`
}

const twilioRefused = "Twilio refused the credentials (20003: Authenticate (https://www.twilio.com/docs/errors/20003)). Fix them on the Integrations page."

func TestTwilioNumbersAPI(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	tok := a.apiOwner(false)
	sid, token := twiliotest.AccountSID(0), twiliotest.AuthToken(0)
	a.twilio.AddAccount(sid, token, 120)

	t.Run("not connected", func(t *testing.T) {
		resp, body := a.twilioCall(tok, http.MethodGet, "/api/v1/twilio/numbers", "")
		p := assertProblem(t, resp, body, http.StatusNotFound)
		if p.Type != "urn:ava:problem:not_found" || !strings.Contains(p.Detail, "Twilio is not connected") {
			t.Errorf("problem %+v", p)
		}
		if n := len(a.twilio.Requests()); n != 0 {
			t.Errorf("Twilio got %d requests", n)
		}
	})

	resp, body := a.twilioCall(tok, http.MethodPut, "/api/v1/integrations/twilio/credentials", twilioCredentialsBody(sid, token, ""))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("connect: %d %s", resp.StatusCode, body)
	}

	t.Run("every page", func(t *testing.T) {
		a.twilio.ResetRequests()
		resp, body := a.twilioCall(tok, http.MethodGet, "/api/v1/twilio/numbers", "", "X-Correlation-ID", "api-numbers-1")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		var got numbersBody
		decodeJSON(t, body, &got)
		if len(got.Numbers) != 120 {
			t.Fatalf("%d numbers, want 120 (3 pages)", len(got.Numbers))
		}
		first := `{"numbers":[{"sid":"PN00000000000000000000000000000001","phone_number":"+14155550000","friendly_name":"(415) 555-0000","capabilities":{"voice":true,"sms":true,"mms":true}},` +
			`{"sid":"PN00000000000000000000000000000002","phone_number":"+14155550001","friendly_name":"(415) 555-0001","capabilities":{"voice":true,"sms":false,"mms":false}},`
		if !strings.HasPrefix(body, first) {
			t.Errorf("body starts %.300s\nwant %s", body, first)
		}
		if last := got.Numbers[119]; last.SID != "PN00000000000000000000000000000078" || last.PhoneNumber != "+14155550119" {
			t.Errorf("last number %+v", last)
		}
		reqs := a.twilio.Requests()
		if len(reqs) != 3 {
			t.Fatalf("%d requests at Twilio, want 3", len(reqs))
		}
		for i, r := range reqs {
			if r.CorrelationID != "api-numbers-1" || r.Username != sid {
				t.Errorf("request %d: correlation %q, user %q", i+1, r.CorrelationID, r.Username)
			}
		}
	})

	t.Run("no numbers", func(t *testing.T) {
		a.twilio.SetNumbers(sid, nil)
		defer a.twilio.AddAccount(sid, token, 120)
		resp, body := a.twilioCall(tok, http.MethodGet, "/api/v1/twilio/numbers", "")
		if resp.StatusCode != http.StatusOK || body != `{"numbers":[]}` {
			t.Fatalf("%d %s, want an empty list", resp.StatusCode, body)
		}
	})

	t.Run("more than 1000", func(t *testing.T) {
		a.twilio.AddAccount(sid, token, 1001)
		defer a.twilio.AddAccount(sid, token, 120)
		resp, body := a.twilioCall(tok, http.MethodGet, "/api/v1/twilio/numbers", "")
		p := assertProblem(t, resp, body, http.StatusBadGateway)
		if !strings.Contains(p.Detail, "more than 1000 phone numbers") {
			t.Errorf("detail %q", p.Detail)
		}
	})

	t.Run("credentials refused at Twilio", func(t *testing.T) {
		a.twilio.AddAccount(sid, twiliotest.AuthToken(77), 120) // rotated at Twilio
		defer a.twilio.AddAccount(sid, token, 120)
		resp, body := a.twilioCall(tok, http.MethodGet, "/api/v1/twilio/numbers", "")
		p := assertProblem(t, resp, body, http.StatusBadGateway)
		if p.Type != "urn:ava:problem:upstream" || p.Detail != twilioRefused {
			t.Errorf("problem %+v\nwant detail %q", p, twilioRefused)
		}
		st := a.twilioStatus(tok)
		if st.BreakerState != "closed" || st.LastError == nil || st.LastError.Message != twilioRefused || st.LastError.At == "" {
			t.Errorf("status after a refusal: %+v", st)
		}
	})

	t.Run("outage", func(t *testing.T) {
		a.twilio.FailAlways(twiliotest.Failure{Status: 503})
		defer a.twilio.Recover()
		for i := range 3 {
			resp, body := a.twilioCall(tok, http.MethodGet, "/api/v1/twilio/numbers", "")
			p := assertProblem(t, resp, body, http.StatusBadGateway)
			if p.Detail != "Twilio is having trouble (it answered with an error). Try again in a moment." {
				t.Errorf("call %d: %q", i+1, p.Detail)
			}
		}
		a.twilio.ResetRequests()
		resp, body := a.twilioCall(tok, http.MethodGet, "/api/v1/twilio/numbers", "")
		p := assertProblem(t, resp, body, http.StatusServiceUnavailable)
		if p.Type != "urn:ava:problem:unavailable" || !strings.Contains(p.Detail, "Twilio has been failing") {
			t.Errorf("problem %+v", p)
		}
		if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 30 {
			t.Errorf("Retry-After %q, want 1..30 seconds", resp.Header.Get("Retry-After"))
		}
		if n := len(a.twilio.Requests()); n != 0 {
			t.Errorf("the open breaker let %d requests through", n)
		}
		st := a.twilioStatus(tok)
		// The last error stays the one that opened the breaker; the refusal
		// while open shows as the breaker's state.
		if st.BreakerState != "open" || st.LastError == nil || !strings.Contains(st.LastError.Message, "Twilio is having trouble") {
			t.Errorf("status while open: %+v", st)
		}
	})
}

func TestTwilioNumbersAPITimeout(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, withUpstream(func(s *upstream.Settings) { s.Timeout = 200 * time.Millisecond }))
	tok := a.apiOwner(false)
	sid, token := twiliotest.AccountSID(0), twiliotest.AuthToken(0)
	a.twilio.AddAccount(sid, token, 3)
	if resp, body := a.twilioCall(tok, http.MethodPut, "/api/v1/integrations/twilio/credentials", twilioCredentialsBody(sid, token, "")); resp.StatusCode != http.StatusOK {
		t.Fatalf("connect: %d %s", resp.StatusCode, body)
	}
	a.twilio.SetDelay(3 * time.Second)
	resp, body := a.twilioCall(tok, http.MethodGet, "/api/v1/twilio/numbers", "")
	p := assertProblem(t, resp, body, http.StatusGatewayTimeout)
	if p.Detail != "Twilio did not answer within 200ms. Try again in a moment." {
		t.Errorf("detail %q", p.Detail)
	}
}

func TestTwilioCredentialsAPI(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	tok := a.apiOwner(false)
	sid, token := twiliotest.AccountSID(0), twiliotest.AuthToken(0)
	a.twilio.AddAccount(sid, token, 2)
	a.twilio.AddAPIKey(sid, twilioKeySID, twilioKeySecret)
	put := func(body string) (*http.Response, string) {
		t.Helper()
		return a.twilioCall(tok, http.MethodPut, "/api/v1/integrations/twilio/credentials", body)
	}

	t.Run("malformed", func(t *testing.T) {
		for _, tt := range []struct {
			name, body, field, says string
		}{
			{"short account SID", twilioCredentialsBody("AC123", token, ""), "account_sid", "AC followed by 32 hexadecimal characters"},
			{"no account SID", `{"auth_token":"` + token + `"}`, "account_sid", "account_sid is required"},
			{"short token", twilioCredentialsBody(sid, "short", ""), "auth_token", "16 to 64 letters and digits"},
			{"no token", `{"account_sid":"` + sid + `"}`, "auth_token", "auth_token is required"},
			{"malformed API key SID", twilioCredentialsBody(sid, token, "SK12"), "api_key_sid", "SK followed by 32 hexadecimal characters"},
			{"not JSON", `account_sid=AC`, "account_sid", "must be a JSON object"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				a.twilio.ResetRequests()
				resp, body := put(tt.body)
				p := assertProblem(t, resp, body, http.StatusUnprocessableEntity)
				if p.Field != tt.field || !strings.Contains(p.Detail, tt.says) {
					t.Errorf("problem %+v, want field %q saying %q", p, tt.field, tt.says)
				}
				if n := len(a.twilio.Requests()); n != 0 {
					t.Errorf("%d requests at Twilio for a malformed value", n)
				}
			})
		}
	})

	t.Run("refused by Twilio", func(t *testing.T) {
		for _, tt := range []struct{ name, body string }{
			{"wrong token", twilioCredentialsBody(sid, twiliotest.AuthToken(5), "")},
			{"wrong API key secret", twilioCredentialsBody(sid, "wrongsecret00000000000000000wxyz", twilioKeySID)},
		} {
			t.Run(tt.name, func(t *testing.T) {
				a.twilio.ResetRequests()
				resp, body := put(tt.body)
				p := assertProblem(t, resp, body, http.StatusUnprocessableEntity)
				want := "Twilio refused the credentials: 20003: Authenticate (https://www.twilio.com/docs/errors/20003)"
				if p.Field != "auth_token" || p.Detail != want {
					t.Errorf("problem %+v\nwant field auth_token, detail %q", p, want)
				}
				if n := len(a.twilio.Requests()); n != 1 {
					t.Errorf("%d requests at Twilio, want the one check", n)
				}
				if st := a.twilioStatus(tok); st.Configured || st.CredentialSource != nil || len(st.Credentials) != 0 {
					t.Errorf("refused credentials were stored: %+v", st)
				}
			})
		}
	})

	t.Run("accepted", func(t *testing.T) {
		resp, body := put(twilioCredentialsBody(sid, token, ""))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		if strings.Contains(body, token) {
			t.Fatalf("the answer holds the auth token: %s", body)
		}
		var st integrationBody
		decodeJSON(t, body, &st)
		wantHint := "••••" + token[len(token)-4:]
		if st.Name != "twilio" || !st.Configured || st.CredentialSource == nil || *st.CredentialSource != "account" ||
			st.Credentials["account_sid"] != sid || st.Credentials["auth_token"] != wantHint || len(st.Credentials) != 2 ||
			st.BreakerState != "closed" || st.LastError != nil || st.LastSuccessAt == nil {
			t.Errorf("status %+v, want account credentials with the token masked as %s", st, wantHint)
		}
	})

	t.Run("API key", func(t *testing.T) {
		resp, body := put(twilioCredentialsBody(sid, twilioKeySecret, twilioKeySID))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		if strings.Contains(body, twilioKeySecret) {
			t.Fatalf("the answer holds the secret: %s", body)
		}
		var st integrationBody
		decodeJSON(t, body, &st)
		if st.Credentials["api_key_sid"] != twilioKeySID || st.Credentials["auth_token"] != "••••wxyz" || st.Credentials["account_sid"] != sid {
			t.Errorf("credentials %v", st.Credentials)
		}
		a.twilio.ResetRequests()
		resp, body = a.twilioCall(tok, http.MethodGet, "/api/v1/twilio/numbers", "")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"sid":"PN00000000000000000000000000000002"`) {
			t.Fatalf("numbers with the API key: %d %s", resp.StatusCode, body)
		}
		if reqs := a.twilio.Requests(); len(reqs) != 1 || reqs[0].Username != twilioKeySID {
			t.Errorf("requests %+v, want one as the API key", reqs)
		}
	})

	if strings.Contains(a.logs.String(), token) || strings.Contains(a.logs.String(), twilioKeySecret) {
		t.Error("the logs contain a Twilio secret")
	}
}

func TestTwilioIntegrationStatusFromTheEnvironment(t *testing.T) {
	t.Parallel()
	sid, token := twiliotest.AccountSID(3), twiliotest.AuthToken(3)
	a := newTestApp(t, withTwilioEnv(sid, token))
	tok := a.apiOwner(false)
	a.twilio.AddAccount(sid, token, 2)
	st := a.twilioStatus(tok)
	if !st.Configured || st.CredentialSource == nil || *st.CredentialSource != "environment" ||
		st.Credentials["account_sid"] != sid || st.Credentials["auth_token"] != "••••"+token[len(token)-4:] ||
		st.BreakerState != "closed" || st.LastError != nil || st.LastSuccessAt != nil {
		t.Errorf("status %+v", st)
	}
	resp, body := a.twilioCall(tok, http.MethodGet, "/api/v1/twilio/numbers", "")
	if resp.StatusCode != http.StatusOK || strings.Count(body, `"sid":`) != 2 {
		t.Fatalf("numbers with the environment's credentials: %d %s", resp.StatusCode, body)
	}
	if st := a.twilioStatus(tok); st.LastSuccessAt == nil {
		t.Errorf("the successful call was not recorded: %+v", st)
	}
}
