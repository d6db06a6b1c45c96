package handlers_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/ava/console/app/console"
	"github.com/ava/console/services/email/resendtest"
	"github.com/ava/console/services/email/smtptest"
	"github.com/ava/console/services/upstream/upstreamtest"
)

const (
	emailFrom        = "Ava <ava@example.com>"
	resendFullKey    = "re_full_key_0123456789abcdef_wxyz"
	resendSendingKey = "re_sending_only_0123456789_ab12"
	smtpTestUser     = "desk@example.com"
	smtpTestPass     = "smtp-secret-pass-7788"
	emailTo          = "someone@example.com"
	emailSubject     = "Test email from the handler tests"
	emailText        = "Hello from the handler tests.\nSecond line."
)

// withOptions changes the console's Options (what console.New takes
// besides the configuration).
func withOptions(f func(*console.Options)) appOption {
	return func(s *appSetup) { f(&s.opts) }
}

// withSMTPServer makes the console's SMTP connections trust the smtptest
// server's self-signed certificate.
func withSMTPServer(srv *smtptest.Server) appOption {
	return withOptions(func(o *console.Options) {
		o.SMTPTLS = &tls.Config{RootCAs: srv.RootCAs(), MinVersion: tls.VersionTLS12}
	})
}

// jsonBody encodes v for a request body.
func jsonBody(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// emailCall is one call of the JSON API with the owner's token, checked
// against the OpenAPI document by callAPI.
func (a *testApp) emailCall(token, method, path, body string, header ...string) (*http.Response, string) {
	a.t.Helper()
	h := map[string]string{}
	for i := 0; i+1 < len(header); i += 2 {
		h[header[i]] = header[i+1]
	}
	return a.callAPI(apiRequest{method: method, path: path, token: token, body: body, header: h})
}

// putEmailCredentials is PUT /api/v1/integrations/email/credentials.
func (a *testApp) putEmailCredentials(token, body string) (*http.Response, string) {
	a.t.Helper()
	return a.emailCall(token, http.MethodPut, "/api/v1/integrations/email/credentials", body)
}

// sendTestEmail is POST /api/v1/integrations/email/test.
func (a *testApp) sendTestEmail(token, body string, header ...string) (*http.Response, string) {
	a.t.Helper()
	return a.emailCall(token, http.MethodPost, "/api/v1/integrations/email/test", body, header...)
}

func testEmailBody(t *testing.T, to string) string {
	t.Helper()
	return jsonBody(t, map[string]string{"to": to, "subject": emailSubject, "text": emailText})
}

// emailStatus returns Email's entry of GET /api/v1/integrations.
func (a *testApp) emailStatus(token string) integrationBody {
	a.t.Helper()
	resp, body := a.emailCall(token, http.MethodGet, "/api/v1/integrations", "")
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("integrations: %d\n%s", resp.StatusCode, body)
	}
	var got struct {
		Integrations []integrationBody `json:"integrations"`
	}
	decodeJSON(a.t, body, &got)
	for _, i := range got.Integrations {
		if i.Name == "email" {
			return i
		}
	}
	a.t.Fatalf("no email in %s", body)
	return integrationBody{}
}

// connectResend makes key valid at the fake and stores it as the account's
// Email credentials; the fake's requests are reset after.
func (a *testApp) connectResend(token, key string, sendingOnly bool) integrationBody {
	a.t.Helper()
	a.resend.AddKey(key, sendingOnly)
	resp, body := a.putEmailCredentials(token, jsonBody(a.t, map[string]string{"provider": "resend", "api_key": key, "from": emailFrom}))
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("connect Resend: %d\n%s", resp.StatusCode, body)
	}
	var st integrationBody
	decodeJSON(a.t, body, &st)
	a.resend.ResetRequests()
	return st
}

// smtpCredentials is the credentials body for the smtptest server.
func smtpCredentials(srv *smtptest.Server, mode, user, pass string) map[string]any {
	m := map[string]any{"provider": "smtp", "host": srv.Host(), "port": srv.Port(), "tls": mode, "from": emailFrom}
	if user != "" {
		m["username"] = user
	}
	if pass != "" {
		m["password"] = pass
	}
	return m
}

// connectSMTP stores the smtptest server (STARTTLS, signed in) as the
// account's Email provider.
func (a *testApp) connectSMTP(token string, srv *smtptest.Server) integrationBody {
	a.t.Helper()
	resp, body := a.putEmailCredentials(token, jsonBody(a.t, smtpCredentials(srv, "starttls", smtpTestUser, smtpTestPass)))
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("connect SMTP: %d\n%s", resp.StatusCode, body)
	}
	var st integrationBody
	decodeJSON(a.t, body, &st)
	return st
}

// startSMTP starts an smtptest server with STARTTLS and AUTH PLAIN.
func startSMTP(t *testing.T) *smtptest.Server {
	t.Helper()
	return smtptest.Start(t, smtptest.Options{TLS: "starttls", Username: smtpTestUser, Password: smtpTestPass})
}

// closedPort returns a port on 127.0.0.1 that nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

func masked(secret string) string { return "••••" + secret[len(secret)-4:] }

// upstreamCount is ava_upstream_requests_total for the upstream and outcome.
func (a *testApp) upstreamCount(upstream, outcome string) float64 {
	a.t.Helper()
	v, _, err := upstreamtest.Metric(a.registry, "ava_upstream_requests_total", map[string]string{"upstream": upstream, "outcome": outcome})
	if err != nil {
		a.t.Fatal(err)
	}
	return v
}

func assertEmailCredentials(t *testing.T, st integrationBody, want map[string]string) {
	t.Helper()
	if !st.Configured || st.CredentialSource == nil || *st.CredentialSource != "account" {
		t.Errorf("status %+v, want configured from the account", st)
	}
	if len(st.Credentials) != len(want) {
		t.Errorf("credentials %v, want exactly %v", st.Credentials, want)
	}
	for k, v := range want {
		if st.Credentials[k] != v {
			t.Errorf("credentials[%q] = %q, want %q (all: %v)", k, st.Credentials[k], v, st.Credentials)
		}
	}
}

func TestEmailCredentialsResend(t *testing.T) {
	t.Parallel()

	t.Run("full key", func(t *testing.T) {
		t.Parallel()
		a := newTestApp(t)
		tok := a.apiOwner(false)
		a.resend.AddKey(resendFullKey, false)
		resp, body := a.putEmailCredentials(tok, jsonBody(t, map[string]string{"provider": "resend", "api_key": resendFullKey, "from": emailFrom}))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		var st integrationBody
		decodeJSON(t, body, &st)
		assertEmailCredentials(t, st, map[string]string{"provider": "resend", "api_key": masked(resendFullKey), "from": emailFrom})
		if strings.Contains(body, resendFullKey) {
			t.Errorf("the answer shows the key: %s", body)
		}
		reqs := a.resend.Requests()
		if len(reqs) != 1 || reqs[0].Method != http.MethodGet || reqs[0].Path != "/domains" || reqs[0].Authorization != "Bearer "+resendFullKey {
			t.Errorf("requests at Resend %+v, want one GET /domains with the key", reqs)
		}
		if n := len(a.resend.Sent()); n != 0 {
			t.Errorf("checking the key sent %d emails", n)
		}
	})

	t.Run("sending-only key", func(t *testing.T) {
		t.Parallel()
		a := newTestApp(t)
		tok := a.apiOwner(false)
		st := a.connectResend(tok, resendSendingKey, true)
		assertEmailCredentials(t, st, map[string]string{"provider": "resend", "api_key": masked(resendSendingKey), "from": emailFrom})
	})

	t.Run("refused key", func(t *testing.T) {
		t.Parallel()
		a := newTestApp(t)
		tok := a.apiOwner(false)
		resp, body := a.putEmailCredentials(tok, jsonBody(t, map[string]string{"provider": "resend", "api_key": "re_not_a_valid_key_0000", "from": emailFrom}))
		p := assertProblem(t, resp, body, http.StatusUnprocessableEntity)
		if p.Field != "api_key" || !strings.Contains(p.Detail, "Resend refused the API key") || !strings.Contains(p.Detail, "API key is invalid") {
			t.Errorf("problem %+v, want field api_key with Resend's message", p)
		}
		if st := a.emailStatus(tok); st.Configured {
			t.Errorf("a refused key was stored: %+v", st)
		}
	})

	t.Run("bad from", func(t *testing.T) {
		t.Parallel()
		a := newTestApp(t)
		tok := a.apiOwner(false)
		a.resend.AddKey(resendFullKey, false)
		for _, from := range []string{"not an address", "Ava <ava@example.com", "a@example.com, b@example.com"} {
			resp, body := a.putEmailCredentials(tok, jsonBody(t, map[string]string{"provider": "resend", "api_key": resendFullKey, "from": from}))
			p := assertProblem(t, resp, body, http.StatusUnprocessableEntity)
			if p.Field != "from" || !strings.Contains(p.Detail, "email address") {
				t.Errorf("from %q: problem %+v, want field from", from, p)
			}
		}
		if reqs := a.resend.Requests(); len(reqs) != 0 {
			t.Errorf("a bad from reached Resend: %+v", reqs)
		}
	})

	t.Run("provider missing or unknown", func(t *testing.T) {
		t.Parallel()
		a := newTestApp(t)
		tok := a.apiOwner(false)
		for _, body := range []string{
			`{"api_key":"` + resendFullKey + `","from":"ava@example.com"}`,
			`{"provider":"","api_key":"` + resendFullKey + `","from":"ava@example.com"}`,
			`{"provider":"mailgun","api_key":"` + resendFullKey + `","from":"ava@example.com"}`,
			`{"provider":"Resend","api_key":"` + resendFullKey + `","from":"ava@example.com"}`,
		} {
			resp, got := a.putEmailCredentials(tok, body)
			p := assertProblem(t, resp, got, http.StatusUnprocessableEntity)
			if p.Field != "provider" {
				t.Errorf("%s: field %q, want provider", body, p.Field)
			}
			if !strings.Contains(p.Detail, "resend") || !strings.Contains(p.Detail, "smtp") {
				t.Errorf("%s: detail %q does not name the allowed values (resend, smtp)", body, p.Detail)
			}
		}
		if reqs := a.resend.Requests(); len(reqs) != 0 {
			t.Errorf("a bad provider reached Resend: %+v", reqs)
		}
	})

	t.Run("members of the other provider are ignored", func(t *testing.T) {
		t.Parallel()
		a := newTestApp(t)
		tok := a.apiOwner(false)
		a.resend.AddKey(resendFullKey, false)
		resp, body := a.putEmailCredentials(tok, jsonBody(t, map[string]any{
			"provider": "resend", "api_key": resendFullKey, "from": emailFrom,
			"host": "smtp.example.com", "port": 587, "username": "someone", "password": "pw-0000", "tls": "starttls",
		}))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		var st integrationBody
		decodeJSON(t, body, &st)
		assertEmailCredentials(t, st, map[string]string{"provider": "resend", "api_key": masked(resendFullKey), "from": emailFrom})
		for _, f := range []string{"host", "port", "username", "password", "tls"} {
			if _, ok := st.Credentials[f]; ok {
				t.Errorf("the stored hints have %s: %v", f, st.Credentials)
			}
		}
	})

	t.Run("unknown member", func(t *testing.T) {
		t.Parallel()
		a := newTestApp(t)
		tok := a.apiOwner(false)
		resp, body := a.putEmailCredentials(tok, `{"provider":"resend","api_key":"`+resendFullKey+`","from":"ava@example.com","region":"eu"}`)
		p := assertProblem(t, resp, body, http.StatusUnprocessableEntity)
		if p.Field != "region" || !strings.Contains(p.Detail, `"region"`) {
			t.Errorf("problem %+v, want the member named", p)
		}
	})

	t.Run("not an object", func(t *testing.T) {
		t.Parallel()
		a := newTestApp(t)
		tok := a.apiOwner(false)
		for _, body := range []string{`["resend"]`, `"resend"`, `null`, `42`, `{"provider":`} {
			resp, got := a.putEmailCredentials(tok, body)
			p := assertProblem(t, resp, got, http.StatusUnprocessableEntity)
			if p.Field != "provider" || !strings.Contains(p.Detail, "JSON object") {
				t.Errorf("%s: problem %+v", body, p)
			}
		}
		if reqs := a.resend.Requests(); len(reqs) != 0 {
			t.Errorf("a malformed body reached Resend: %+v", reqs)
		}
	})
}

func TestEmailCredentialsSMTP(t *testing.T) {
	t.Parallel()

	t.Run("STARTTLS and AUTH, checked without mail", func(t *testing.T) {
		t.Parallel()
		srv := startSMTP(t)
		a := newTestApp(t, withSMTPServer(srv))
		tok := a.apiOwner(false)
		// The port goes as a JSON number.
		body := jsonBody(t, smtpCredentials(srv, "starttls", smtpTestUser, smtpTestPass))
		if !strings.Contains(body, `"port":`+strconv.Itoa(srv.Port())) {
			t.Fatalf("the body should carry the port as a number: %s", body)
		}
		resp, got := a.putEmailCredentials(tok, body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, got)
		}
		var st integrationBody
		decodeJSON(t, got, &st)
		assertEmailCredentials(t, st, map[string]string{
			"provider": "smtp", "host": srv.Host(), "port": strconv.Itoa(srv.Port()), "username": smtpTestUser,
			"password": masked(smtpTestPass), "tls": "starttls", "from": emailFrom,
		})
		if strings.Contains(got, smtpTestPass) {
			t.Errorf("the answer shows the password: %s", got)
		}
		sessions := srv.Sessions()
		if len(sessions) != 1 || !sessions[0].TLS || sessions[0].AuthUser != smtpTestUser || sessions[0].Mail {
			t.Errorf("sessions %+v, want one over TLS, signed in, without MAIL", sessions)
		}
		if n := len(srv.Messages()); n != 0 {
			t.Errorf("the check sent %d messages", n)
		}
		if st := a.emailStatus(tok); st.BreakerState != "closed" || st.LastSuccessAt == nil {
			t.Errorf("status after connecting: %+v", st)
		}
	})

	t.Run("port as a string", func(t *testing.T) {
		t.Parallel()
		srv := startSMTP(t)
		a := newTestApp(t, withSMTPServer(srv))
		tok := a.apiOwner(false)
		m := smtpCredentials(srv, "starttls", smtpTestUser, smtpTestPass)
		m["port"] = strconv.Itoa(srv.Port())
		resp, got := a.putEmailCredentials(tok, jsonBody(t, m))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, got)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		srv := startSMTP(t)
		a := newTestApp(t, withSMTPServer(srv))
		tok := a.apiOwner(false)
		resp, got := a.putEmailCredentials(tok, jsonBody(t, smtpCredentials(srv, "starttls", smtpTestUser, "not-the-password")))
		p := assertProblem(t, resp, got, http.StatusUnprocessableEntity)
		if p.Field != "password" || !strings.Contains(p.Detail, "did not accept the username or password") || !strings.Contains(p.Detail, "535") {
			t.Errorf("problem %+v, want field password with the server's reply", p)
		}
		if st := a.emailStatus(tok); st.Configured {
			t.Errorf("refused credentials were stored: %+v", st)
		}
		if n := len(srv.Messages()); n != 0 {
			t.Errorf("%d messages sent", n)
		}
	})

	t.Run("unreachable port", func(t *testing.T) {
		t.Parallel()
		srv := startSMTP(t)
		a := newTestApp(t, withSMTPServer(srv))
		tok := a.apiOwner(false)
		port := closedPort(t)
		m := smtpCredentials(srv, "starttls", smtpTestUser, smtpTestPass)
		m["port"] = port
		resp, got := a.putEmailCredentials(tok, jsonBody(t, m))
		p := assertProblem(t, resp, got, http.StatusUnprocessableEntity)
		if p.Field != "host" || !strings.Contains(p.Detail, "Could not reach an SMTP server at 127.0.0.1:"+strconv.Itoa(port)) {
			t.Errorf("problem %+v, want field host saying where", p)
		}
	})

	t.Run("bad ports", func(t *testing.T) {
		t.Parallel()
		srv := startSMTP(t)
		a := newTestApp(t, withSMTPServer(srv))
		tok := a.apiOwner(false)
		for _, port := range []any{0, 70000, "abc", -1, 587.5, "0"} {
			m := smtpCredentials(srv, "starttls", smtpTestUser, smtpTestPass)
			m["port"] = port
			resp, got := a.putEmailCredentials(tok, jsonBody(t, m))
			p := assertProblem(t, resp, got, http.StatusUnprocessableEntity)
			if p.Field != "port" {
				t.Errorf("port %v: problem %+v, want field port", port, p)
			}
		}
		if n := srv.Connections(); n != 0 {
			t.Errorf("bad ports made %d connections", n)
		}
	})

	t.Run("username with tls none", func(t *testing.T) {
		t.Parallel()
		srv := smtptest.Start(t, smtptest.Options{TLS: "none", Username: smtpTestUser, Password: smtpTestPass})
		a := newTestApp(t, withSMTPServer(srv))
		tok := a.apiOwner(false)
		resp, got := a.putEmailCredentials(tok, jsonBody(t, smtpCredentials(srv, "none", smtpTestUser, smtpTestPass)))
		p := assertProblem(t, resp, got, http.StatusUnprocessableEntity)
		if p.Field != "tls" || !strings.Contains(p.Detail, "in clear") {
			t.Errorf("problem %+v, want field tls", p)
		}
		if n := srv.Connections(); n != 0 {
			t.Errorf("the password was offered to the server: %d connections", n)
		}
	})

	t.Run("username without password", func(t *testing.T) {
		t.Parallel()
		srv := startSMTP(t)
		a := newTestApp(t, withSMTPServer(srv))
		tok := a.apiOwner(false)
		resp, got := a.putEmailCredentials(tok, jsonBody(t, smtpCredentials(srv, "starttls", smtpTestUser, "")))
		if p := assertProblem(t, resp, got, http.StatusUnprocessableEntity); p.Field != "password" {
			t.Errorf("problem %+v, want field password", p)
		}
	})

	t.Run("no sign-in without tls", func(t *testing.T) {
		t.Parallel()
		srv := smtptest.Start(t, smtptest.Options{TLS: "none"})
		a := newTestApp(t, withSMTPServer(srv))
		tok := a.apiOwner(false)
		resp, got := a.putEmailCredentials(tok, jsonBody(t, smtpCredentials(srv, "none", "", "")))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, got)
		}
		var st integrationBody
		decodeJSON(t, got, &st)
		if _, ok := st.Credentials["username"]; ok {
			t.Errorf("an absent username is hinted: %v", st.Credentials)
		}
		if st.Credentials["tls"] != "none" {
			t.Errorf("credentials %v", st.Credentials)
		}
	})
}

func TestEmailTestValidation(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	tok := a.apiOwner(false)
	a.connectResend(tok, resendFullKey, false)
	body := func(to, subject, text string) string {
		return jsonBody(t, map[string]string{"to": to, "subject": subject, "text": text})
	}
	for _, tt := range []struct {
		name, body, field string
	}{
		{"to missing", `{"subject":"Hi","text":"Hello"}`, "to"},
		{"to empty", body("", "Hi", "Hello"), "to"},
		{"two addresses", body("a@example.com, b@example.com", "Hi", "Hello"), "to"},
		{"garbage to", body("not an address", "Hi", "Hello"), "to"},
		{"to with a newline", body("a@example.com\r\nBcc: b@example.com", "Hi", "Hello"), "to"},
		{"subject missing", `{"to":"a@example.com","text":"Hello"}`, "subject"},
		{"subject empty", body("a@example.com", "", "Hello"), "subject"},
		{"subject blank", body("a@example.com", "   ", "Hello"), "subject"},
		{"subject of 201 characters", body("a@example.com", strings.Repeat("s", 201), "Hello"), "subject"},
		{"subject with a newline", body("a@example.com", "Hello\nBcc: b@example.com", "Hello"), "subject"},
		{"text empty", body("a@example.com", "Hi", ""), "text"},
		{"text blank", body("a@example.com", "Hi", " \n "), "text"},
		{"text of 10001 characters", body("a@example.com", "Hi", strings.Repeat("t", 10001)), "text"},
		{"unknown member", `{"to":"a@example.com","subject":"Hi","text":"Hello","cc":"b@example.com"}`, "cc"},
		{"differently-cased member", `{"To":"a@example.com","subject":"Hi","text":"Hello"}`, "To"},
		{"wrong type", `{"to":["a@example.com"],"subject":"Hi","text":"Hello"}`, "to"},
		{"not an object", `["a@example.com"]`, "to"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, got := a.sendTestEmail(tok, tt.body)
			p := assertProblem(t, resp, got, http.StatusUnprocessableEntity)
			if p.Field != tt.field || p.Type != "urn:ava:problem:invalid" {
				t.Errorf("problem %+v, want field %q", p, tt.field)
			}
			if !strings.Contains(p.Detail, tt.field) {
				t.Errorf("detail %q does not name %q", p.Detail, tt.field)
			}
		})
	}
	if reqs := a.resend.Requests(); len(reqs) != 0 {
		t.Errorf("refused test emails reached Resend: %d requests", len(reqs))
	}
	if st := a.emailStatus(tok); st.LastError != nil {
		t.Errorf("a refused value was recorded as the provider's error: %+v", st.LastError)
	}
}

func TestEmailTestResend(t *testing.T) {
	t.Parallel()

	t.Run("success", func(t *testing.T) {
		t.Parallel()
		a := newTestApp(t)
		tok := a.apiOwner(false)
		a.connectResend(tok, resendSendingKey, true)
		// The limits are inclusive.
		subject, text := strings.Repeat("s", 200), strings.Repeat("t", 10000)
		resp, got := a.sendTestEmail(tok, jsonBody(t, map[string]string{"to": "Someone <" + emailTo + ">", "subject": subject, "text": text}),
			"X-Correlation-ID", "email-api-send-1")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, got)
		}
		var sent struct{ ID, Provider, To string }
		decodeJSON(t, got, &sent)
		emails := a.resend.Sent()
		if len(emails) != 1 {
			t.Fatalf("Resend accepted %d emails, want 1", len(emails))
		}
		if sent.ID == "" || sent.ID != emails[0].ID || sent.Provider != "resend" || sent.To != emailTo {
			t.Errorf("answer %+v, want the fake's id %q, provider resend, to %s", sent, emails[0].ID, emailTo)
		}
		if e := emails[0]; e.From != emailFrom || len(e.To) != 1 || e.To[0] != emailTo || e.Subject != subject || e.Text != text {
			t.Errorf("email at Resend: from %q to %v subject %d chars, text %d chars", e.From, e.To, len(e.Subject), len(e.Text))
		}
		reqs := a.resend.Requests()
		if len(reqs) != 1 {
			t.Fatalf("%d requests at Resend, want 1", len(reqs))
		}
		r := reqs[0]
		if r.Method != http.MethodPost || r.Path != "/emails" || r.Authorization != "Bearer "+resendSendingKey ||
			r.UserAgent == "" || r.IdempotencyKey == "" || r.CorrelationID != "email-api-send-1" {
			t.Errorf("request at Resend %+v", r)
		}
		if resp.Header.Get("X-Correlation-ID") != "email-api-send-1" {
			t.Errorf("X-Correlation-ID %q", resp.Header.Get("X-Correlation-ID"))
		}

		resp, got = a.sendTestEmail(tok, testEmailBody(t, emailTo))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("second send: %d %s", resp.StatusCode, got)
		}
		reqs = a.resend.Requests()
		if len(reqs) != 2 || reqs[1].IdempotencyKey == "" || reqs[1].IdempotencyKey == reqs[0].IdempotencyKey {
			t.Errorf("idempotency keys %q then %q, want two fresh ones", reqs[0].IdempotencyKey, reqs[len(reqs)-1].IdempotencyKey)
		}
		if n := len(a.resend.Sent()); n != 2 {
			t.Errorf("two sends made %d emails", n)
		}
		if st := a.emailStatus(tok); st.LastSuccessAt == nil || st.LastError != nil {
			t.Errorf("status after sending: %+v", st)
		}
	})

	t.Run("rate limited", func(t *testing.T) {
		t.Parallel()
		a := newTestApp(t)
		tok := a.apiOwner(false)
		a.connectResend(tok, resendFullKey, false)
		a.resend.FailNext(1, resendtest.Failure{Status: 429, Message: "Too many requests. You can only make 2 requests per second.", RetryAfter: "7"})
		resp, got := a.sendTestEmail(tok, testEmailBody(t, emailTo))
		p := assertProblem(t, resp, got, http.StatusTooManyRequests)
		if resp.Header.Get("Retry-After") != "7" {
			t.Errorf("Retry-After %q, want 7", resp.Header.Get("Retry-After"))
		}
		if !strings.Contains(p.Detail, "You can only make 2 requests per second") || p.Type != "urn:ava:problem:rate_limited" {
			t.Errorf("problem %+v, want Resend's message", p)
		}
		if n := len(a.resend.Sent()); n != 0 {
			t.Errorf("%d emails sent", n)
		}
	})

	t.Run("refused by Resend", func(t *testing.T) {
		t.Parallel()
		a := newTestApp(t)
		tok := a.apiOwner(false)
		a.connectResend(tok, resendFullKey, false)
		a.resend.FailNext(1, resendtest.Failure{Status: 422, Name: "validation_error", Message: "The `example.com` domain is not verified."})
		resp, got := a.sendTestEmail(tok, testEmailBody(t, emailTo))
		p := assertProblem(t, resp, got, http.StatusBadGateway)
		if !strings.Contains(p.Detail, "The `example.com` domain is not verified") || !strings.Contains(p.Detail, "Resend refused the email") {
			t.Errorf("problem %+v, want Resend's words", p)
		}
		st := a.emailStatus(tok)
		if st.LastError == nil || !strings.Contains(st.LastError.Message, "domain is not verified") || st.BreakerState != "closed" {
			t.Errorf("status %+v, want the refusal recorded and the breaker closed", st)
		}
	})

	t.Run("server errors open the breaker", func(t *testing.T) {
		t.Parallel()
		a := newTestApp(t)
		tok := a.apiOwner(false)
		a.connectResend(tok, resendFullKey, false)
		a.resend.FailAlways(resendtest.Failure{Status: 500, Message: "Resend is down for the test"})
		for i := range 3 {
			resp, got := a.sendTestEmail(tok, testEmailBody(t, emailTo))
			p := assertProblem(t, resp, got, http.StatusBadGateway)
			if !strings.Contains(p.Detail, "Resend is down for the test") {
				t.Errorf("send %d: %+v", i+1, p)
			}
		}
		if st := a.emailStatus(tok); st.BreakerState != "open" {
			t.Fatalf("breaker after three 5xx: %q", st.BreakerState)
		}
		if state := a.guards.Breaker("resend").State(); state != "open" {
			t.Errorf("the resend breaker is %q", state)
		}
		before := len(a.resend.Requests())
		resp, got := a.sendTestEmail(tok, testEmailBody(t, emailTo))
		p := assertProblem(t, resp, got, http.StatusServiceUnavailable)
		if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
			t.Errorf("Retry-After %q, want seconds", resp.Header.Get("Retry-After"))
		}
		if !strings.Contains(p.Detail, "Resend") {
			t.Errorf("problem %+v", p)
		}
		if after := len(a.resend.Requests()); after != before {
			t.Errorf("the open breaker let %d call(s) through", after-before)
		}
		if v := a.upstreamCount("resend", "breaker_open"); v != 1 {
			t.Errorf("rejected calls counted %v, want 1", v)
		}
	})

	t.Run("client errors keep the breaker closed", func(t *testing.T) {
		t.Parallel()
		a := newTestApp(t)
		tok := a.apiOwner(false)
		a.connectResend(tok, resendFullKey, false)
		a.resend.FailAlways(resendtest.Failure{Status: 422, Name: "validation_error", Message: "Invalid `to` field."})
		for range 5 {
			resp, got := a.sendTestEmail(tok, testEmailBody(t, emailTo))
			assertProblem(t, resp, got, http.StatusBadGateway)
		}
		if st := a.emailStatus(tok); st.BreakerState != "closed" {
			t.Fatalf("breaker after five 4xx: %q", st.BreakerState)
		}
		if n := len(a.resend.Requests()); n != 5 {
			t.Errorf("%d requests at Resend, want 5", n)
		}
	})

	t.Run("not connected", func(t *testing.T) {
		t.Parallel()
		a := newTestApp(t)
		tok := a.apiOwner(false)
		resp, got := a.sendTestEmail(tok, testEmailBody(t, emailTo))
		if p := assertProblem(t, resp, got, http.StatusNotFound); !strings.Contains(p.Detail, "Email is not connected") {
			t.Errorf("problem %+v", p)
		}
		if n := len(a.resend.Requests()); n != 0 {
			t.Errorf("%d requests at Resend", n)
		}
	})
}

func TestEmailTestSMTP(t *testing.T) {
	t.Parallel()

	t.Run("delivered", func(t *testing.T) {
		t.Parallel()
		srv := startSMTP(t)
		a := newTestApp(t, withSMTPServer(srv))
		tok := a.apiOwner(false)
		a.connectSMTP(tok, srv)
		resp, got := a.sendTestEmail(tok, testEmailBody(t, emailTo), "X-Correlation-ID", "email-smtp-send-1")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, got)
		}
		var sent struct{ ID, Provider, To string }
		decodeJSON(t, got, &sent)
		msgs := srv.Messages()
		if len(msgs) != 1 {
			t.Fatalf("the server received %d messages, want 1", len(msgs))
		}
		m := msgs[0]
		if len(m.To) != 1 || m.To[0] != emailTo || m.From != "ava@example.com" {
			t.Errorf("envelope from %q to %v", m.From, m.To)
		}
		if m.Header.Get("Subject") != emailSubject || !strings.Contains(m.Header.Get("To"), emailTo) || !strings.Contains(m.Header.Get("From"), "ava@example.com") {
			t.Errorf("headers Subject %q To %q From %q", m.Header.Get("Subject"), m.Header.Get("To"), m.Header.Get("From"))
		}
		if strings.TrimRight(m.Body, "\n") != emailText {
			t.Errorf("body %q, want %q", m.Body, emailText)
		}
		if cid := m.Header.Get("X-Correlation-ID"); cid != "email-smtp-send-1" {
			t.Errorf("X-Correlation-ID header %q", cid)
		}
		if mid := strings.Trim(m.Header.Get("Message-ID"), "<>"); sent.ID == "" || sent.ID != mid || sent.Provider != "smtp" || sent.To != emailTo {
			t.Errorf("answer %+v, want id %q (the Message-ID), provider smtp", sent, mid)
		}
		sessions := srv.Sessions()
		if last := sessions[len(sessions)-1]; !last.TLS || last.AuthUser != smtpTestUser || !last.Mail {
			t.Errorf("the sending session %+v, want TLS and signed in", last)
		}
	})

	t.Run("recipient refused", func(t *testing.T) {
		t.Parallel()
		srv := startSMTP(t)
		a := newTestApp(t, withSMTPServer(srv))
		tok := a.apiOwner(false)
		a.connectSMTP(tok, srv)
		srv.RejectRecipient(550, "No such user here")
		for i := range 4 {
			resp, got := a.sendTestEmail(tok, testEmailBody(t, emailTo))
			p := assertProblem(t, resp, got, http.StatusBadGateway)
			if !strings.Contains(p.Detail, "refused the recipient "+emailTo) || !strings.Contains(p.Detail, "550") || !strings.Contains(p.Detail, "No such user here") {
				t.Errorf("send %d: problem %+v, want the server's words", i+1, p)
			}
		}
		if st := a.emailStatus(tok); st.BreakerState != "closed" {
			t.Errorf("breaker after refused recipients: %q, want closed", st.BreakerState)
		}
		if n := len(srv.Messages()); n != 0 {
			t.Errorf("%d messages delivered", n)
		}
	})

	t.Run("server gone", func(t *testing.T) {
		t.Parallel()
		srv := startSMTP(t)
		a := newTestApp(t, withSMTPServer(srv))
		tok := a.apiOwner(false)
		a.connectSMTP(tok, srv)
		srv.DropNext(3)
		for range 3 {
			resp, got := a.sendTestEmail(tok, testEmailBody(t, emailTo))
			if resp.StatusCode < 500 {
				t.Fatalf("dropped connection: %d %s", resp.StatusCode, got)
			}
		}
		if st := a.emailStatus(tok); st.BreakerState != "open" {
			t.Fatalf("breaker after three dropped connections: %q", st.BreakerState)
		}
		before := srv.Connections()
		resp, got := a.sendTestEmail(tok, testEmailBody(t, emailTo))
		assertProblem(t, resp, got, http.StatusServiceUnavailable)
		if resp.Header.Get("Retry-After") == "" {
			t.Error("no Retry-After with the breaker open")
		}
		if after := srv.Connections(); after != before {
			t.Errorf("the open breaker let %d connection(s) through", after-before)
		}
	})
}

func TestEmailEnvironmentCredentials(t *testing.T) {
	t.Parallel()

	t.Run("resend", func(t *testing.T) {
		t.Parallel()
		const envKey = "re_environment_key_0000_env1"
		a := newTestApp(t, withEnv("RESEND_API_KEY", envKey), withEnv("EMAIL_FROM", "Ava env <env@example.com>"))
		a.resend.AddKey(envKey, true)
		tok := a.apiOwner(false)
		st := a.emailStatus(tok)
		if !st.Configured || st.CredentialSource == nil || *st.CredentialSource != "environment" ||
			st.Credentials["provider"] != "resend" || st.Credentials["api_key"] != masked(envKey) || st.Credentials["from"] != "Ava env <env@example.com>" {
			t.Fatalf("status %+v", st)
		}
		resp, got := a.sendTestEmail(tok, testEmailBody(t, emailTo))
		if resp.StatusCode != http.StatusOK || !strings.Contains(got, `"provider":"resend"`) {
			t.Fatalf("%d %s", resp.StatusCode, got)
		}
		reqs := a.resend.Requests()
		if len(reqs) != 1 || reqs[0].Authorization != "Bearer "+envKey {
			t.Errorf("requests %+v, want one with the environment's key", reqs)
		}
		if e := a.resend.Sent(); len(e) != 1 || e[0].From != "Ava env <env@example.com>" {
			t.Errorf("sent %+v", e)
		}
	})

	t.Run("smtp", func(t *testing.T) {
		t.Parallel()
		srv := startSMTP(t)
		a := newTestApp(t, withSMTPServer(srv),
			withEnv("SMTP_HOST", srv.Host()), withEnv("SMTP_PORT", strconv.Itoa(srv.Port())),
			withEnv("SMTP_USERNAME", smtpTestUser), withEnv("SMTP_PASSWORD", smtpTestPass), withEnv("SMTP_TLS", "starttls"),
			withEnv("EMAIL_FROM", "env@example.com"))
		tok := a.apiOwner(false)
		st := a.emailStatus(tok)
		if !st.Configured || st.CredentialSource == nil || *st.CredentialSource != "environment" ||
			st.Credentials["provider"] != "smtp" || st.Credentials["host"] != srv.Host() || st.Credentials["password"] != masked(smtpTestPass) {
			t.Fatalf("status %+v", st)
		}
		resp, got := a.sendTestEmail(tok, testEmailBody(t, emailTo))
		if resp.StatusCode != http.StatusOK || !strings.Contains(got, `"provider":"smtp"`) {
			t.Fatalf("%d %s", resp.StatusCode, got)
		}
		if msgs := srv.Messages(); len(msgs) != 1 || msgs[0].From != "env@example.com" {
			t.Errorf("messages %+v", msgs)
		}
		if n := len(a.resend.Requests()); n != 0 {
			t.Errorf("%d requests at Resend", n)
		}
	})

	t.Run("the account's own credentials come first", func(t *testing.T) {
		t.Parallel()
		const envKey = "re_environment_key_0000_env2"
		a := newTestApp(t, withEnv("RESEND_API_KEY", envKey), withEnv("EMAIL_FROM", "env@example.com"))
		a.resend.AddKey(envKey, false)
		tok := a.apiOwner(false)
		a.connectResend(tok, resendFullKey, false)
		if st := a.emailStatus(tok); st.CredentialSource == nil || *st.CredentialSource != "account" {
			t.Fatalf("status %+v", st)
		}
		if resp, got := a.sendTestEmail(tok, testEmailBody(t, emailTo)); resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, got)
		}
		if reqs := a.resend.Requests(); len(reqs) != 1 || reqs[0].Authorization != "Bearer "+resendFullKey {
			t.Errorf("requests %+v", reqs)
		}
		resp, got := a.emailCall(tok, http.MethodDelete, "/api/v1/integrations/email/credentials", "")
		var st integrationBody
		decodeJSON(t, got, &st)
		if resp.StatusCode != http.StatusOK || st.CredentialSource == nil || *st.CredentialSource != "environment" {
			t.Errorf("after removing the account's: %d %s", resp.StatusCode, got)
		}
	})
}

func TestEmailStub(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, withEnv("INTEGRATIONS_STUB_MODE", "true"))
	tok := a.apiOwner(true)
	if st := a.emailStatus(tok); st.CredentialSource == nil || *st.CredentialSource != "stub" || st.Credentials["provider"] != "stub" {
		t.Fatalf("status %+v", st)
	}
	resp, got := a.sendTestEmail(tok, jsonBody(t, map[string]string{"to": emailTo, "subject": "Into the stub outbox", "text": "Kept, not delivered."}))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, got)
	}
	var sent struct{ ID, Provider, To string }
	decodeJSON(t, got, &sent)
	if sent.Provider != "stub" || sent.To != emailTo || !strings.HasPrefix(sent.ID, "stub-") {
		t.Errorf("answer %+v", sent)
	}
	resp, page := a.get("/fragments/email/outbox", "HX-Request", "true")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `data-id="`+sent.ID+`"`) ||
		!strings.Contains(page, "Into the stub outbox") || !strings.Contains(page, "Kept, not delivered.") || !strings.Contains(page, emailTo) {
		t.Errorf("outbox: %d\n%s", resp.StatusCode, page)
	}
	if n := len(a.resend.Requests()); n != 0 {
		t.Errorf("the stub reached Resend: %d requests", n)
	}
	_, page = a.get("/email")
	if !strings.Contains(page, `hx-get="/fragments/email/outbox"`) || !strings.Contains(page, "Stub outbox") {
		t.Errorf("the Email page does not show the stub's outbox:\n%s", page)
	}
}

func TestEmailStubOutboxEmpty(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, withEnv("INTEGRATIONS_STUB_MODE", "true"))
	a.apiOwner(true)
	resp, page := a.get("/fragments/email/outbox", "HX-Request", "true")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "The stub outbox is empty") {
		t.Errorf("empty outbox: %d\n%s", resp.StatusCode, page)
	}
}

func TestEmailUpstreamMetrics(t *testing.T) {
	t.Parallel()

	t.Run("resend", func(t *testing.T) {
		t.Parallel()
		a := newTestApp(t)
		tok := a.apiOwner(false)
		a.connectResend(tok, resendFullKey, false)
		before := a.upstreamCount("resend", "success")
		if resp, got := a.sendTestEmail(tok, testEmailBody(t, emailTo)); resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, got)
		}
		if after := a.upstreamCount("resend", "success"); before != 1 || after != 2 {
			t.Errorf("resend successes %v then %v, want 1 (the check) then 2", before, after)
		}
		a.resend.FailNext(1, resendtest.Failure{Status: 500})
		a.sendTestEmail(tok, testEmailBody(t, emailTo))
		if v := a.upstreamCount("resend", "server_error"); v != 1 {
			t.Errorf("resend server errors %v, want 1", v)
		}
		if v := a.upstreamCount("smtp", "success"); v != 0 {
			t.Errorf("smtp successes %v, want 0", v)
		}
	})

	t.Run("smtp", func(t *testing.T) {
		t.Parallel()
		srv := startSMTP(t)
		a := newTestApp(t, withSMTPServer(srv))
		tok := a.apiOwner(false)
		a.connectSMTP(tok, srv)
		before := a.upstreamCount("smtp", "success")
		if resp, got := a.sendTestEmail(tok, testEmailBody(t, emailTo)); resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, got)
		}
		if after := a.upstreamCount("smtp", "success"); before != 1 || after != 2 {
			t.Errorf("smtp successes %v then %v, want 1 (the check) then 2", before, after)
		}
		srv.RejectRecipient(550, "No such user")
		a.sendTestEmail(tok, testEmailBody(t, emailTo))
		if v := a.upstreamCount("smtp", "client_error"); v != 1 {
			t.Errorf("smtp client errors %v, want 1", v)
		}
		if v := a.upstreamCount("resend", "success"); v != 0 {
			t.Errorf("resend successes %v, want 0", v)
		}
	})
}

// Resend answers 403 validation_error when the from domain is not verified
// (or, from onboarding@resend.dev, for any recipient but the account's
// own): the email is refused, not the key.
func TestEmailResendForbiddenEmailIsNotAKeyProblem(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	tok := a.apiOwner(false)
	a.connectResend(tok, resendFullKey, false)
	a.resend.FailNext(1, resendtest.Failure{Status: 403, Name: "validation_error", Message: "The example.com domain is not verified. Please, add and verify your domain."})
	resp, got := a.sendTestEmail(tok, testEmailBody(t, emailTo))
	p := assertProblem(t, resp, got, http.StatusBadGateway)
	if !strings.Contains(p.Detail, "The example.com domain is not verified") {
		t.Errorf("problem %+v, want Resend's words", p)
	}
	if strings.Contains(p.Detail, "API key") {
		t.Errorf("a 403 validation_error about the email is reported as a refused API key: %q", p.Detail)
	}
	if !strings.Contains(p.Detail, "Resend refused the email") {
		t.Errorf("problem %+v, want the email refused", p)
	}
}

// Mistyped ports while connecting must not stop the right settings from
// being accepted.
func TestEmailSMTPTyposDoNotLockOutTheRightSettings(t *testing.T) {
	t.Parallel()
	srv := startSMTP(t)
	a := newTestApp(t, withSMTPServer(srv))
	tok := a.apiOwner(false)
	for range 3 {
		m := smtpCredentials(srv, "starttls", smtpTestUser, smtpTestPass)
		m["port"] = closedPort(t)
		resp, got := a.putEmailCredentials(tok, jsonBody(t, m))
		if p := assertProblem(t, resp, got, http.StatusUnprocessableEntity); p.Field != "host" {
			t.Fatalf("unreachable port: %+v", p)
		}
	}
	resp, got := a.putEmailCredentials(tok, jsonBody(t, smtpCredentials(srv, "starttls", smtpTestUser, smtpTestPass)))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the right settings after typos: %d %s", resp.StatusCode, got)
	}
}

func TestEmailSMTPTestConnection(t *testing.T) {
	t.Parallel()
	srv := startSMTP(t)
	a := newTestApp(t, withSMTPServer(srv))
	tok := a.apiOwner(true)
	a.connectSMTP(tok, srv)
	resp, body := a.postForm("/integrations/email/test", nil, "HX-Request", "true")
	want := "Connected: the SMTP server at 127.0.0.1:" + strconv.Itoa(srv.Port()) + " answered (starttls)"
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, want) || !strings.Contains(body, "Email connection works") {
		t.Fatalf("test connection: %d\n%s", resp.StatusCode, body)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("Test connection sent %d messages", n)
	}
	srv.DropNext(1)
	resp, body = a.postForm("/integrations/email/test", nil, "HX-Request", "true")
	if resp.StatusCode < 500 || !strings.Contains(body, "Connection failed:") {
		t.Errorf("test connection to a server that hangs up: %d\n%s", resp.StatusCode, body)
	}
	if st := a.emailStatus(tok); st.LastError == nil {
		t.Errorf("the failure was not recorded: %+v", st)
	}
}

// One account's SMTP server failing opens the breaker of that server only:
// another account's server keeps sending.
func TestEmailOneSMTPServerDownPausesNoOtherAccount(t *testing.T) {
	t.Parallel()
	down, up := startSMTP(t), startSMTP(t)
	// Both fakes' certificates, so one console trusts either server.
	roots := down.RootCAs().Clone()
	if err := up.TrustIn(roots); err != nil {
		t.Fatal(err)
	}
	a := newTestApp(t, withOptions(func(o *console.Options) {
		o.SMTPTLS = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}))
	tokA := a.apiOwner(false)
	a.connectSMTP(tokA, down)
	u, err := a.db.CreateUser(context.Background(), "second@example.com", "not-a-hash", false)
	if err != nil {
		t.Fatal(err)
	}
	tokB, _ := a.apiToken(u.ID, "second")
	a.connectSMTP(tokB, up)

	down.DropNext(3)
	for range 3 {
		if resp, got := a.sendTestEmail(tokA, testEmailBody(t, emailTo)); resp.StatusCode < 500 {
			t.Fatalf("A's dropped connection: %d %s", resp.StatusCode, got)
		}
	}
	if st := a.emailStatus(tokA); st.BreakerState != "open" {
		t.Fatalf("A's breaker after three drops: %q", st.BreakerState)
	}
	resp, got := a.sendTestEmail(tokB, testEmailBody(t, emailTo))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("B while A's server is down: %d %s", resp.StatusCode, got)
	}
	if st := a.emailStatus(tokB); st.BreakerState != "closed" {
		t.Errorf("B's breaker: %q, want closed", st.BreakerState)
	}
	if n := len(up.Messages()); n != 1 {
		t.Errorf("B's server received %d messages, want 1", n)
	}
}
