package handlers_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ava/console/handlers"
	"github.com/ava/console/services/ratelimit"
	"github.com/ava/console/services/upstream"
	"github.com/ava/console/services/vapi/vapitest"
)

// apiOwner creates the owner straight in the database (no password to hash:
// sign-in is not what these tests are about) and returns an API token. With
// session, the cookie jar also holds a browser session, for htmx fragments.
func (a *testApp) apiOwner(session bool) string {
	a.t.Helper()
	ctx := context.Background()
	u, err := a.db.CreateUser(ctx, ownerEmail, "not-a-hash", true)
	if err != nil {
		a.t.Fatal(err)
	}
	tok, _ := a.apiToken(u.ID, "vapi tests")
	if session {
		cookie, _, err := a.accounts.StartSession(ctx, u.ID)
		if err != nil {
			a.t.Fatal(err)
		}
		a.cookies["ava_session"] = cookie
	}
	a.vapi.AddKey(vapiKey)
	a.vapi.PutAssistant(vapitest.DefaultAssistant(vapiAssistant))
	return tok
}

// vapiCall is one call of the Vapi JSON API with the owner's token, checked
// against the OpenAPI document by callAPI.
func (a *testApp) vapiCall(token, method, path, body string, header ...string) (*http.Response, string) {
	a.t.Helper()
	h := map[string]string{}
	for i := 0; i+1 < len(header); i += 2 {
		h[header[i]] = header[i+1]
	}
	return a.callAPI(apiRequest{method: method, path: path, token: token, body: body, header: h})
}

// connectAPI stores the fake's credentials through the JSON API.
func (a *testApp) connectAPI(token string) {
	a.t.Helper()
	resp, body := a.vapiCall(token, http.MethodPut, "/api/v1/integrations/vapi/credentials",
		`{"api_key":"`+vapiKey+`","assistant_id":"`+vapiAssistant+`"}`)
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("connect: %d\n%s", resp.StatusCode, body)
	}
	a.vapi.ResetRequests()
}

type settingsBody struct {
	Settings []settingBody `json:"settings"`
}

type settingBody struct {
	Key       string `json:"key"`
	Value     any    `json:"value"`
	UpdatedAt string `json:"updated_at"`
}

type integrationBody struct {
	Name             string            `json:"name"`
	Configured       bool              `json:"configured"`
	CredentialSource *string           `json:"credential_source"`
	Credentials      map[string]string `json:"credentials"`
	BreakerState     string            `json:"breaker_state"`
	LastError        *struct {
		Message string `json:"message"`
		At      string `json:"at"`
	} `json:"last_error"`
	LastSuccessAt  *string `json:"last_success_at"`
	NeedsReconnect *string `json:"needs_reconnect"`
}

// vapiStatus returns Vapi's entry of GET /api/v1/integrations.
func (a *testApp) vapiStatus(token string) (integrationBody, string) {
	a.t.Helper()
	resp, body := a.vapiCall(token, http.MethodGet, "/api/v1/integrations", "")
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("integrations: %d\n%s", resp.StatusCode, body)
	}
	var got struct {
		Integrations []integrationBody `json:"integrations"`
	}
	decodeJSON(a.t, body, &got)
	for _, i := range got.Integrations {
		if i.Name == "vapi" {
			return i, body
		}
	}
	a.t.Fatalf("no vapi in %s", body)
	return integrationBody{}, ""
}

// noUpstreamCall fails the test if the fake Vapi received anything since
// the last ResetRequests.
func (a *testApp) noUpstreamCall(what string) {
	a.t.Helper()
	if got := a.vapi.Requests(); len(got) != 0 {
		a.t.Errorf("%s: Vapi received %d requests, want none: %+v", what, len(got), got)
	}
}

func noLimitOnLists(c *handlers.Config) { c.VapiListLimit = 1000 }

// TestVapiAPI walks one console through the Vapi JSON API: not connected,
// connecting, reading, changing and refusing settings.
func TestVapiAPI(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, withConfig(noLimitOnLists))
	tok := a.apiOwner(false)

	t.Run("not connected", func(t *testing.T) {
		for _, c := range []struct{ method, path, body string }{
			{http.MethodGet, "/api/v1/vapi/settings", ""},
			{http.MethodPut, "/api/v1/vapi/settings/max_call_duration", `{"value":900}`},
		} {
			resp, body := a.vapiCall(tok, c.method, c.path, c.body)
			p := assertProblem(t, resp, body, http.StatusNotFound)
			if p.Type != "urn:ava:problem:not_found" || !strings.Contains(p.Detail, "Vapi is not connected") {
				t.Errorf("%s %s: %+v", c.method, c.path, p)
			}
		}
		st, _ := a.vapiStatus(tok)
		if st.Configured || st.CredentialSource != nil || len(st.Credentials) != 0 || st.LastError != nil || st.BreakerState != "closed" {
			t.Errorf("status before connecting: %+v", st)
		}
		a.noUpstreamCall("not connected")
	})

	t.Run("credentials refused", func(t *testing.T) {
		tests := []struct {
			name, body, field, says string
		}{
			{"bad key", `{"api_key":"sk-wrong-key-0000","assistant_id":"` + vapiAssistant + `"}`, "api_key", "Invalid Key. Hot tip"},
			{"unknown assistant", `{"api_key":"` + vapiKey + `","assistant_id":"asst-missing"}`, "assistant_id", "Assistant Not Found"},
			{"no key", `{"assistant_id":"` + vapiAssistant + `"}`, "api_key", "api_key is required"},
			{"no assistant", `{"api_key":"` + vapiKey + `"}`, "assistant_id", "assistant_id is required"},
			{"not JSON", `api_key=x`, "api_key", "JSON object"},
			{"a differently-cased name", `{"Api_Key":"` + vapiKey + `","assistant_id":"` + vapiAssistant + `"}`, "Api_Key", `Unknown field "Api_Key": member names are case-sensitive`},
			{"a member twice", `{"api_key":"sk-first-0000","api_key":"` + vapiKey + `","assistant_id":"` + vapiAssistant + `"}`, "api_key", "given twice"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, body := a.vapiCall(tok, http.MethodPut, "/api/v1/integrations/vapi/credentials", tt.body)
				p := assertProblem(t, resp, body, http.StatusUnprocessableEntity)
				if p.Field != tt.field || !strings.Contains(p.Detail, tt.says) {
					t.Errorf("problem %+v, want field %s saying %q", p, tt.field, tt.says)
				}
				if strings.Contains(body, vapiKey) || strings.Contains(body, "sk-wrong-key-0000") {
					t.Errorf("the answer repeats the key: %s", body)
				}
			})
		}
		if st, _ := a.vapiStatus(tok); st.Configured {
			t.Errorf("refused credentials were stored: %+v", st)
		}
	})

	t.Run("connect", func(t *testing.T) {
		resp, body := a.vapiCall(tok, http.MethodPut, "/api/v1/integrations/vapi/credentials",
			`{"api_key":"`+vapiKey+`","assistant_id":"`+vapiAssistant+`"}`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		var got integrationBody
		decodeJSON(t, body, &got)
		if !got.Configured || got.CredentialSource == nil || *got.CredentialSource != "account" ||
			got.Credentials["api_key"] != "••••1234" || got.Credentials["assistant_id"] != vapiAssistant {
			t.Errorf("answer %s", body)
		}
		if strings.Contains(body, vapiKey) {
			t.Errorf("the answer shows the key: %s", body)
		}
	})

	t.Run("list", func(t *testing.T) {
		a.vapi.ResetRequests()
		resp, body := a.vapiCall(tok, http.MethodGet, "/api/v1/vapi/settings", "", "X-Correlation-ID", "list-corr-1")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type %q", ct)
		}
		// Exactly {"settings":[{key,value,updated_at}...]}.
		var shape map[string][]map[string]any
		decodeJSON(t, body, &shape)
		if len(shape) != 1 || len(shape["settings"]) != 3 {
			t.Fatalf("shape: %s", body)
		}
		for _, s := range shape["settings"] {
			if len(s) != 3 || s["key"] == nil || s["updated_at"] == nil {
				t.Errorf("setting members %v, want key, value, updated_at", s)
			}
			if _, ok := s["value"]; !ok {
				t.Errorf("setting without value: %v", s)
			}
		}
		var got settingsBody
		decodeJSON(t, body, &got)
		want := []settingBody{
			{Key: "greeting_message", Value: "Hello, thanks for calling. How can I help you today?"},
			{Key: "max_call_duration", Value: 600.0},
			{Key: "voice_speed", Value: 1.0},
		}
		for i, s := range got.Settings {
			if s.Key != want[i].Key || s.Value != want[i].Value {
				t.Errorf("setting %d: %s = %#v, want %s = %#v", i, s.Key, s.Value, want[i].Key, want[i].Value)
			}
			if at, err := time.Parse(time.RFC3339, s.UpdatedAt); err != nil || !at.Equal(time.Date(2026, 11, 20, 14, 5, 11, 0, time.UTC)) {
				t.Errorf("%s updated_at %q (%v), want the assistant's updatedAt", s.Key, s.UpdatedAt, err)
			}
		}
		reqs := a.vapi.Requests()
		if len(reqs) != 1 || reqs[0].Method != http.MethodGet || reqs[0].Authorization != "Bearer "+vapiKey {
			t.Fatalf("Vapi received %+v", reqs)
		}
		if reqs[0].CorrelationID != "list-corr-1" || resp.Header.Get("X-Correlation-ID") != "list-corr-1" {
			t.Errorf("correlation id: upstream %q, answer %q; want list-corr-1 both", reqs[0].CorrelationID, resp.Header.Get("X-Correlation-ID"))
		}
	})

	t.Run("refused values", func(t *testing.T) {
		tests := []struct {
			name, key, body string
			status          int
			field           string
			says            []string
		}{
			{"unknown key", "volume", `{"value":1}`, 404, "", []string{`"volume"`, "greeting_message, max_call_duration, voice_speed"}},
			{"duration below", "max_call_duration", `{"value":59}`, 422, "max_call_duration", []string{"max_call_duration", "60 to 3600"}},
			{"duration above", "max_call_duration", `{"value":3601}`, 422, "max_call_duration", []string{"max_call_duration", "60 to 3600"}},
			{"duration not whole", "max_call_duration", `{"value":600.5}`, 422, "max_call_duration", []string{"max_call_duration", "whole number", "60 to 3600"}},
			{"duration as a string", "max_call_duration", `{"value":"600"}`, 422, "max_call_duration", []string{"max_call_duration", "60 to 3600"}},
			{"speed below", "voice_speed", `{"value":0.49}`, 422, "voice_speed", []string{"voice_speed", "0.5 to 1.2"}},
			{"speed above", "voice_speed", `{"value":1.21}`, 422, "voice_speed", []string{"voice_speed", "0.5 to 1.2"}},
			{"speed as a string", "voice_speed", `{"value":"fast"}`, 422, "voice_speed", []string{"voice_speed", "0.5 to 1.2"}},
			{"empty greeting", "greeting_message", `{"value":""}`, 422, "greeting_message", []string{"greeting_message", "1 to 1000"}},
			{"long greeting", "greeting_message", `{"value":"` + strings.Repeat("x", 1001) + `"}`, 422, "greeting_message", []string{"greeting_message", "1 to 1000"}},
			{"greeting as a number", "greeting_message", `{"value":42}`, 422, "greeting_message", []string{"greeting_message", "1 to 1000"}},
			{"missing value", "max_call_duration", `{}`, 422, "value", []string{`"value"`}},
			{"null value", "max_call_duration", `{"value":null}`, 422, "value", []string{`"value"`}},
			{"other member", "max_call_duration", `{"nope":900}`, 422, "nope", []string{`Unknown field "nope"`, `"value"`}},
			{"an extra member", "max_call_duration", `{"value":900,"extra":2}`, 422, "extra", []string{`Unknown field "extra"`, `{"value": ...}`}},
			{"a differently-cased name", "max_call_duration", `{"Value":900}`, 422, "Value", []string{`Unknown field "Value"`, "case-sensitive", `"value"`}},
			{"an upper-case name", "greeting_message", `{"VALUE":"Hi"}`, 422, "VALUE", []string{`Unknown field "VALUE"`, "case-sensitive"}},
			{"value twice", "max_call_duration", `{"value":900,"value":1200}`, 422, "value", []string{`"value" is given twice`}},
			{"something after the object", "max_call_duration", `{"value":900} {"value":1200}`, 422, "value", []string{`"value" member`}},
			{"greeting with NUL", "greeting_message", `{"value":"Hi\u0000there"}`, 422, "greeting_message", []string{"greeting_message", "control characters"}},
			{"greeting with an escape", "greeting_message", `{"value":"\u001b[2JHi"}`, 422, "greeting_message", []string{"greeting_message", "control characters"}},
			{"greeting with a bidi override", "greeting_message", `{"value":"Hi \u202Eereh\u202C"}`, 422, "greeting_message", []string{"greeting_message", "bidirectional"}},
			{"greeting with a bidi isolate", "greeting_message", `{"value":"Hi \u2067x\u2069"}`, 422, "greeting_message", []string{"greeting_message", "bidirectional"}},
			{"not JSON", "max_call_duration", `value=900`, 422, "value", []string{`"value"`}},
			{"a bare number", "max_call_duration", `900`, 422, "value", []string{`"value"`}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				a.vapi.ResetRequests()
				resp, body := a.vapiCall(tok, http.MethodPut, "/api/v1/vapi/settings/"+tt.key, tt.body)
				p := assertProblem(t, resp, body, tt.status)
				if p.Field != tt.field {
					t.Errorf("field %q, want %q", p.Field, tt.field)
				}
				for _, s := range tt.says {
					if !strings.Contains(p.Detail, s) {
						t.Errorf("detail %q does not say %q", p.Detail, s)
					}
				}
				a.noUpstreamCall(tt.name)
			})
		}
		if got := a.vapi.Assistant(vapiAssistant)["maxDurationSeconds"]; got != 600.0 {
			t.Errorf("Vapi has %v", got)
		}
	})

	t.Run("refused by the voice provider", func(t *testing.T) {
		a.vapi.ResetRequests()
		resp, body := a.vapiCall(tok, http.MethodPut, "/api/v1/vapi/settings/voice_speed", `{"value":0.6}`)
		p := assertProblem(t, resp, body, http.StatusUnprocessableEntity)
		if p.Field != "voice_speed" || !strings.Contains(p.Detail, "0.7 to 1.2") || !strings.Contains(p.Detail, "11labs") {
			t.Errorf("problem %+v", p)
		}
		for _, r := range a.vapi.Requests() {
			if r.Method != http.MethodGet {
				t.Errorf("Vapi received a %s", r.Method)
			}
		}
	})

	t.Run("valid values", func(t *testing.T) {
		tests := []struct {
			key, body string
			value     any    // in the answer
			field     string // at Vapi
			atVapi    func(map[string]any) any
			want      any
		}{
			{"max_call_duration", `{"value":900}`, 900.0, "maxDurationSeconds", nil, 900.0},
			{"greeting_message", `{"value":"Hi, Ava here."}`, "Hi, Ava here.", "firstMessage", nil, "Hi, Ava here."},
			{"voice_speed", `{"value":1.1}`, 1.1, "voice", func(m map[string]any) any { return m["voice"].(map[string]any)["speed"] }, 1.1},
		}
		for _, tt := range tests {
			t.Run(tt.key, func(t *testing.T) {
				a.vapi.ResetRequests()
				resp, body := a.vapiCall(tok, http.MethodPut, "/api/v1/vapi/settings/"+tt.key, tt.body, "X-Correlation-ID", "put-"+tt.key)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%d %s", resp.StatusCode, body)
				}
				var got settingBody
				decodeJSON(t, body, &got)
				if got.Key != tt.key || got.Value != tt.value {
					t.Errorf("answer %s", body)
				}
				if at, err := time.Parse(time.RFC3339, got.UpdatedAt); err != nil || time.Since(at) > time.Minute {
					t.Errorf("updated_at %q: want now", got.UpdatedAt)
				}
				assistant := a.vapi.Assistant(vapiAssistant)
				have := assistant[tt.field]
				if tt.atVapi != nil {
					have = tt.atVapi(assistant)
				}
				if have != tt.want {
					t.Errorf("Vapi has %s = %v, want %v", tt.field, have, tt.want)
				}
				var patches int
				for _, r := range a.vapi.Requests() {
					if r.Method == http.MethodPatch {
						patches++
						if len(r.Body) != 1 || r.Body[tt.field] == nil || r.CorrelationID != "put-"+tt.key {
							t.Errorf("PATCH %+v: want only %s, with the request's correlation id", r, tt.field)
						}
					}
				}
				if patches != 1 {
					t.Errorf("%d PATCHes", patches)
				}

				// The same value again: 200, nothing sent.
				a.vapi.ResetRequests()
				resp, body = a.vapiCall(tok, http.MethodPut, "/api/v1/vapi/settings/"+tt.key, tt.body)
				if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"key":"`+tt.key+`"`) {
					t.Errorf("same value: %d %s", resp.StatusCode, body)
				}
				for _, r := range a.vapi.Requests() {
					if r.Method == http.MethodPatch {
						t.Errorf("the same value was PATCHed again")
					}
				}
			})
		}
	})

	t.Run("a bad key later keeps the stored credentials", func(t *testing.T) {
		resp, body := a.vapiCall(tok, http.MethodPut, "/api/v1/integrations/vapi/credentials",
			`{"api_key":"sk-another-bad-key-9999","assistant_id":"`+vapiAssistant+`"}`)
		p := assertProblem(t, resp, body, http.StatusUnprocessableEntity)
		if p.Field != "api_key" || !strings.Contains(p.Detail, "Invalid Key") {
			t.Errorf("problem %+v", p)
		}
		a.vapi.ResetRequests()
		resp, body = a.vapiCall(tok, http.MethodGet, "/api/v1/vapi/settings", "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("the stored credentials stopped working: %d %s", resp.StatusCode, body)
		}
		if r := a.vapi.Requests(); len(r) != 1 || r[0].Authorization != "Bearer "+vapiKey {
			t.Errorf("Vapi received %+v", r)
		}
		st, raw := a.vapiStatus(tok)
		if st.Credentials["api_key"] != "••••1234" || strings.Contains(raw, vapiKey) || strings.Contains(raw, "9999") {
			t.Errorf("status %s", raw)
		}
	})

	t.Run("integrations status", func(t *testing.T) {
		st, raw := a.vapiStatus(tok)
		if !st.Configured || st.CredentialSource == nil || *st.CredentialSource != "account" || st.BreakerState != "closed" {
			t.Errorf("status %s", raw)
		}
		if !strings.HasSuffix(st.Credentials["api_key"], "1234") || strings.Contains(raw, vapiKey) {
			t.Errorf("the key must be masked to its last 4: %s", raw)
		}
		if st.LastSuccessAt == nil {
			t.Errorf("no last success after successful calls: %s", raw)
		}
		if st.LastError != nil {
			t.Errorf("last_error before any failure: %s", raw)
		}

		before := time.Now().Add(-time.Second)
		a.vapi.FailNext(1, vapitest.Failure{Status: 500, Message: "Vapi exploded (test)"})
		resp, body := a.vapiCall(tok, http.MethodGet, "/api/v1/vapi/settings", "")
		assertProblem(t, resp, body, http.StatusBadGateway)
		st, raw = a.vapiStatus(tok)
		if st.LastError == nil || !strings.Contains(st.LastError.Message, "Vapi exploded (test)") {
			t.Fatalf("last_error after a failure: %s", raw)
		}
		if at, err := time.Parse(time.RFC3339, st.LastError.At); err != nil || at.Before(before.Truncate(time.Second)) {
			t.Errorf("last_error.at %q", st.LastError.At)
		}
		if st.BreakerState != "closed" {
			t.Errorf("one failure moved the breaker to %s", st.BreakerState)
		}
	})
}

// TestVapiAPIUpstreamFailures: what the API answers when Vapi fails, times
// out, rate limits us, and when the breaker opens.
func TestVapiAPIUpstreamFailures(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, withConfig(noLimitOnLists), withUpstream(func(s *upstream.Settings) {
		s.Timeout = 300 * time.Millisecond
		s.FailureThreshold = 3
		s.RecoveryTimeout = 30 * time.Second
	}))
	tok := a.apiOwner(false)
	a.connectAPI(tok)
	list := func() (*http.Response, string) {
		return a.vapiCall(tok, http.MethodGet, "/api/v1/vapi/settings", "")
	}
	put := func() (*http.Response, string) {
		return a.vapiCall(tok, http.MethodPut, "/api/v1/vapi/settings/max_call_duration", `{"value":900}`)
	}
	ok := func(t *testing.T) { // a success resets the breaker's count
		t.Helper()
		a.vapi.Recover()
		a.vapi.SetDelay(0)
		if resp, body := list(); resp.StatusCode != http.StatusOK {
			t.Fatalf("recovered Vapi: %d %s", resp.StatusCode, body)
		}
	}

	tests := []struct {
		name    string
		failure vapitest.Failure
		delay   time.Duration
		call    func() (*http.Response, string)
		status  int
		typ     string
		says    []string
	}{
		{"Vapi down on list", vapitest.Failure{Status: 500, Message: "Internal server error: db down"}, 0, list,
			502, "upstream", []string{"Vapi is having trouble (Internal server error: db down)"}},
		{"Vapi down on save", vapitest.Failure{Status: 503, Message: "Service Unavailable"}, 0, put,
			502, "upstream", []string{"Vapi is having trouble (Service Unavailable)"}},
		{"rate limited", vapitest.Failure{Status: 429, Message: "Too Many Requests", RetryAfter: "5"}, 0, list,
			429, "rate_limited", []string{"Vapi is rate limiting us", "Too Many Requests", "5 seconds"}},
		{"dropped connection", vapitest.Failure{Drop: true}, 0, list,
			502, "upstream", []string{"Could not reach Vapi"}},
		{"key revoked at Vapi", vapitest.Failure{Status: 401, Message: "Invalid Key. Hot tip, make sure you're using the private key."}, 0, list,
			502, "upstream", []string{"Vapi refused the API key: Invalid Key"}},
		{"slow Vapi on list", vapitest.Failure{}, time.Second, list,
			504, "timeout", []string{"Vapi did not answer within 300ms"}},
		{"slow Vapi on save", vapitest.Failure{}, time.Second, put,
			504, "timeout", []string{"Vapi did not answer within 300ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.delay > 0 {
				a.vapi.SetDelay(tt.delay)
			} else {
				a.vapi.FailAlways(tt.failure)
			}
			start := time.Now()
			resp, body := tt.call()
			took := time.Since(start)
			ok(t)
			p := assertProblem(t, resp, body, tt.status)
			if p.Type != "urn:ava:problem:"+tt.typ {
				t.Errorf("type %q", p.Type)
			}
			for _, s := range tt.says {
				if !strings.Contains(p.Detail, s) {
					t.Errorf("detail %q does not say %q", p.Detail, s)
				}
			}
			if tt.delay > 0 && took > 900*time.Millisecond {
				t.Errorf("a slow Vapi held the request %s, want about the 300ms timeout", took)
			}
			if strings.Contains(body, vapiKey) || strings.Contains(body, "127.0.0.1") {
				t.Errorf("the problem leaks: %s", body)
			}
		})
	}
	if got := a.vapi.Assistant(vapiAssistant)["maxDurationSeconds"]; got != 600.0 {
		t.Errorf("failed saves changed Vapi: %v", got)
	}

	t.Run("breaker opens after 3 failures", func(t *testing.T) {
		a.vapi.FailAlways(vapitest.Failure{Status: 500, Message: "Internal server error: db down"})
		for i := range 3 {
			resp, body := list()
			if resp.StatusCode != http.StatusBadGateway {
				t.Fatalf("failure %d: %d %s", i+1, resp.StatusCode, body)
			}
		}
		a.vapi.Recover() // Vapi is fine again, but the breaker does not know yet
		a.vapi.ResetRequests()
		for _, call := range []func() (*http.Response, string){list, put} {
			resp, body := call()
			p := assertProblem(t, resp, body, http.StatusServiceUnavailable)
			if p.Type != "urn:ava:problem:unavailable" || !strings.Contains(p.Detail, "Vapi has been failing") {
				t.Errorf("problem %+v", p)
			}
			ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			if err != nil || ra < 1 || ra > 30 {
				t.Errorf("Retry-After %q, want 1..30 seconds", resp.Header.Get("Retry-After"))
			}
		}
		a.noUpstreamCall("open breaker")
		st, raw := a.vapiStatus(tok)
		if st.BreakerState != "open" || st.LastError == nil || !strings.Contains(st.LastError.Message, "Vapi") {
			t.Errorf("status with an open breaker: %s", raw)
		}
	})
}

// TestVapiAPIListRateLimit: listing the settings is limited to 10 a
// minute, one budget for the JSON API and the htmx fragment.
func TestVapiAPIListRateLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		limiter func(t *testing.T) ratelimit.Limiter
	}{
		{"in memory (no REDIS_URL)", func(*testing.T) ratelimit.Limiter { return nil }},
		{"Redis (REDIS_URL)", func(t *testing.T) ratelimit.Limiter { return redisLimiter(t) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newTestApp(t, withConfig(func(c *handlers.Config) {
				c.Limiter = tt.limiter(t)
				c.LimiterKeyPrefix = uniquePrefix()
			}))
			testListBudget(t, a)
		})
	}
}

func testListBudget(t *testing.T, a *testApp) {
	t.Helper()
	tok := a.apiOwner(true)
	a.connectAPI(tok)
	fragment := func() (*http.Response, string) {
		return a.get("/fragments/vapi/settings", "HX-Request", "true")
	}
	api := func() (*http.Response, string) {
		return a.vapiCall(tok, http.MethodGet, "/api/v1/vapi/settings", "")
	}
	for i := 1; i <= 10; i++ {
		call, what := api, "JSON"
		if i%2 == 0 {
			call, what = fragment, "fragment"
		}
		resp, body := call()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("call %d (%s): %d %s", i, what, resp.StatusCode, body)
		}
		if got := resp.Header.Get("X-RateLimit-Limit"); got != "10" {
			t.Errorf("call %d (%s): X-RateLimit-Limit %q, want 10", i, what, got)
		}
		got, want := resp.Header.Get("X-RateLimit-Remaining"), strconv.Itoa(10-i)
		if got != want {
			t.Errorf("call %d (%s): X-RateLimit-Remaining %q, want %s (one budget for both)", i, what, got, want)
		}
	}
	a.vapi.ResetRequests()
	resp, body := api()
	p := assertProblem(t, resp, body, http.StatusTooManyRequests)
	if p.Type != "urn:ava:problem:rate_limited" {
		t.Errorf("problem %+v", p)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	resp, body = fragment()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("the 12th list (fragment): %d %q\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	a.noUpstreamCall("rate limited lists")

	// Other routes keep their own budgets.
	if resp, body := a.vapiCall(tok, http.MethodPut, "/api/v1/vapi/settings/max_call_duration", `{"value":900}`); resp.StatusCode != http.StatusOK {
		t.Errorf("PUT setting after the list budget ran out: %d %s", resp.StatusCode, body)
	}
	if resp, body := a.vapiCall(tok, http.MethodGet, "/api/v1/integrations", ""); resp.StatusCode != http.StatusOK || resp.Header.Get("X-RateLimit-Limit") != "60" {
		t.Errorf("integrations after the list budget ran out: %d %s", resp.StatusCode, body)
	}
	if resp, body := a.get("/fragments/vapi/changes", "HX-Request", "true"); resp.StatusCode != http.StatusOK {
		t.Errorf("changes fragment after the list budget ran out: %d %s", resp.StatusCode, body)
	}
}

// TestVapiAPIEnvironmentCredentials: VAPI_API_KEY / VAPI_ASSISTANT_ID serve
// an account that stored none, and show as such.
func TestVapiAPIEnvironmentCredentials(t *testing.T) {
	t.Parallel()
	const envKey, envAssistant = "sk-env-fallback-key-wxyz", "asst-env"
	a := newTestApp(t, withConfig(noLimitOnLists), withVapiEnv(envKey, envAssistant))
	tok := a.apiOwner(false)
	a.vapi.AddKey(envKey)
	a.vapi.PutAssistant(vapitest.DefaultAssistant(envAssistant))

	st, raw := a.vapiStatus(tok)
	if !st.Configured || st.CredentialSource == nil || *st.CredentialSource != "environment" ||
		st.Credentials["api_key"] != "••••wxyz" || st.Credentials["assistant_id"] != envAssistant {
		t.Errorf("status: %s", raw)
	}
	if strings.Contains(raw, envKey) {
		t.Errorf("the environment's key is shown: %s", raw)
	}
	resp, body := a.vapiCall(tok, http.MethodGet, "/api/v1/vapi/settings", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("list with the environment's credentials: %d %s", resp.StatusCode, body)
	}
	if r := a.vapi.Requests(); len(r) != 1 || r[0].Authorization != "Bearer "+envKey || r[0].Path != "/assistant/"+envAssistant {
		t.Errorf("Vapi received %+v", r)
	}

	// The account's own credentials take over.
	a.connectAPI(tok)
	st, raw = a.vapiStatus(tok)
	if st.CredentialSource == nil || *st.CredentialSource != "account" || st.Credentials["api_key"] != "••••1234" {
		t.Errorf("status after connecting: %s", raw)
	}
	if resp, _ := a.vapiCall(tok, http.MethodGet, "/api/v1/vapi/settings", ""); resp.StatusCode != http.StatusOK {
		t.Fatal(resp.StatusCode)
	}
	if r := a.vapi.Requests(); len(r) != 1 || r[0].Authorization != "Bearer "+vapiKey {
		t.Errorf("Vapi received %+v", r)
	}
}
