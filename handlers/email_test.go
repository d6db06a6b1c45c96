package handlers_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ava/console/services/email/resendtest"
)

// invalidInput matches an input (or textarea) of the Email form with
// aria-invalid set.
func invalidInput(field string) *regexp.Regexp {
	return regexp.MustCompile(`<(input|textarea) id="email-` + field + `"[^>]*aria-invalid="true"`)
}

// assertInvalidOnly checks that the form marks field, and only it, invalid.
func assertInvalidOnly(t *testing.T, body, field string) {
	t.Helper()
	for _, f := range []string{"to", "subject", "text"} {
		if got := invalidInput(f).MatchString(body); got != (f == field) {
			t.Errorf("aria-invalid on %s: %v, want %v\n%s", f, got, f == field, body)
		}
	}
}

func emailForm(to, subject, text string) url.Values {
	return url.Values{"to": {to}, "subject": {subject}, "text": {text}}
}

// emailPageOwner is a signed-in owner (session cookie) whose account uses
// the fake Resend; it returns the API token.
func (a *testApp) emailPageOwner() string {
	a.t.Helper()
	tok := a.apiOwner(true)
	a.connectResend(tok, resendFullKey, false)
	return tok
}

func TestEmailPageNotConnected(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	a.signedIn()
	resp, body := a.get("/email")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d\n%s", resp.StatusCode, body)
	}
	if !strings.Contains(body, "Email is not connected") || !strings.Contains(body, `href="/integrations"`) || !strings.Contains(body, "Connect Email") {
		t.Errorf("no empty state:\n%s", body)
	}
	if strings.Contains(body, `id="email-test"`) || strings.Contains(body, `hx-get="/fragments/email/outbox"`) {
		t.Errorf("the page offers a form or an outbox without a connection:\n%s", body)
	}
}

func TestEmailPageNeedsASession(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	a.apiOwner(false) // an owner exists, but this browser is not signed in
	resp, _ := a.get("/email")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Errorf("GET /email signed out: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestEmailPageConnected(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	a.emailPageOwner()
	resp, body := a.get("/email")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d\n%s", resp.StatusCode, body)
	}
	for _, want := range []string{`id="email-test"`, `hx-post="/email/test"`, `name="_csrf"`, "Resend", "Ava &lt;ava@example.com&gt;", "This account's own"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(body, resendFullKey) {
		t.Error("the page shows the API key")
	}
	if strings.Contains(body, `hx-get="/fragments/email/outbox"`) {
		t.Error("the page shows the stub's outbox with a real provider")
	}
}

func TestEmailPageRefusedValue(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	a.emailPageOwner()
	for _, tt := range []struct {
		name, to, subject, text, field, message string
	}{
		{"bad address", "not an address", "My subject", "My text", "to", "to must be one email address"},
		{"subject too long", emailTo, strings.Repeat("s", 201), "My text", "subject", "subject must be 1 to 200 characters (it has 201)"},
		{"text empty", emailTo, "My subject", "", "text", "text is required"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := a.postForm("/email/test", emailForm(tt.to, tt.subject, tt.text), "HX-Request", "true")
			if resp.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("%d, want 422\n%s", resp.StatusCode, body)
			}
			if !strings.HasPrefix(strings.TrimSpace(body), `<form id="email-test"`) {
				t.Errorf("the answer is not the form:\n%s", body)
			}
			if !strings.Contains(body, tt.message) {
				t.Errorf("no %q in\n%s", tt.message, body)
			}
			for _, kept := range []string{`value="` + tt.to + `"`, `value="` + tt.subject + `"`, `>` + tt.text + `</textarea>`} {
				if !strings.Contains(body, kept) {
					t.Errorf("the typed value is lost: no %s", kept)
				}
			}
			assertInvalidOnly(t, body, tt.field)
			if resp.Header.Get("HX-Trigger") != "" || strings.Contains(body, "hx-swap-oob") {
				t.Errorf("a refused send triggers %q or a toast", resp.Header.Get("HX-Trigger"))
			}
		})
	}
	if n := len(a.resend.Requests()); n != 0 {
		t.Errorf("refused values reached Resend: %d requests", n)
	}
}

func TestEmailPageProviderError(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	a.emailPageOwner()

	t.Run("rate limited", func(t *testing.T) {
		a.resend.FailNext(1, resendtest.Failure{Status: 429, Message: "Too many requests for the page test", RetryAfter: "7"})
		resp, body := a.postForm("/email/test", emailForm(emailTo, "Kept subject", "Kept text"), "HX-Request", "true", "X-Correlation-ID", "page-send-429")
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("%d, want 429\n%s", resp.StatusCode, body)
		}
		if resp.Header.Get("Retry-After") != "7" {
			t.Errorf("Retry-After %q, want 7", resp.Header.Get("Retry-After"))
		}
		for _, want := range []string{
			`role="alert"`, "The test email was not sent", "Too many requests for the page test",
			"Reference: <code>page-send-429</code>", `<button type="submit" class="button button-secondary">Try again</button>`,
			`value="` + emailTo + `"`, `value="Kept subject"`, `>Kept text</textarea>`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("no %q in\n%s", want, body)
			}
		}
		assertInvalidOnly(t, body, "")
	})

	t.Run("refused by Resend", func(t *testing.T) {
		a.resend.FailNext(1, resendtest.Failure{Status: 422, Name: "validation_error", Message: "The domain is not verified for the page test."})
		resp, body := a.postForm("/email/test", emailForm(emailTo, "Kept subject", "Kept text"), "HX-Request", "true", "X-Correlation-ID", "page-send-422")
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("%d, want 502\n%s", resp.StatusCode, body)
		}
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			t.Errorf("Retry-After %q on a refusal", ra)
		}
		for _, want := range []string{"The domain is not verified for the page test", "Reference: <code>page-send-422</code>", ">Try again</button>"} {
			if !strings.Contains(body, want) {
				t.Errorf("no %q in\n%s", want, body)
			}
		}
	})

	t.Run("breaker open", func(t *testing.T) {
		a.resend.FailAlways(resendtest.Failure{Status: 503})
		defer a.resend.Recover()
		for range 3 {
			a.postForm("/email/test", emailForm(emailTo, "s", "t"), "HX-Request", "true")
		}
		resp, body := a.postForm("/email/test", emailForm(emailTo, "s", "t"), "HX-Request", "true")
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "Try again") {
			t.Errorf("with the breaker open: %d, Retry-After %q\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	})
}

func TestEmailPageSent(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	a.emailPageOwner()
	resp, body := a.postForm("/email/test", emailForm(emailTo, "Page subject", "Page text"), "HX-Request", "true")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d\n%s", resp.StatusCode, body)
	}
	sent := a.resend.Sent()
	if len(sent) != 1 || sent[0].Subject != "Page subject" || sent[0].Text != "Page text" || sent[0].To[0] != emailTo {
		t.Fatalf("sent %+v", sent)
	}
	id := sent[0].ID
	if resp.Header.Get("HX-Trigger") != "email-sent" {
		t.Errorf("HX-Trigger %q, want email-sent", resp.Header.Get("HX-Trigger"))
	}
	oob := strings.Index(body, `hx-swap-oob="beforeend:#toasts"`)
	if oob < 0 {
		t.Fatalf("no out-of-band toast:\n%s", body)
	}
	if toast := body[oob:]; !strings.Contains(toast, "Test email sent to "+emailTo+" (id "+id+")") {
		t.Errorf("the toast does not name the recipient and the id:\n%s", toast)
	}
	if !strings.Contains(body[:oob], "Sent to "+emailTo+" through Resend (id "+id+")") {
		t.Errorf("the form does not say what was sent:\n%s", body)
	}

	// Without htmx the form posts and comes back to the page.
	resp, _ = a.postForm("/email/test", emailForm(emailTo, "Page subject", "Page text"))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/email" {
		t.Errorf("plain form post: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if n := len(a.resend.Sent()); n != 2 {
		t.Errorf("%d emails sent, want 2", n)
	}
}

func TestEmailPageFormNeedsCSRF(t *testing.T) {
	t.Parallel()
	a := newTestApp(t)
	a.emailPageOwner()
	resp, _ := a.postForm("/email/test", url.Values{"_csrf": {"forged"}, "to": {emailTo}, "subject": {"s"}, "text": {"t"}}, "HX-Request", "true")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("forged CSRF token: %d, want 403", resp.StatusCode)
	}
	if n := len(a.resend.Requests()); n != 0 {
		t.Errorf("a forged form reached Resend: %d requests", n)
	}
}

// TestEmailSMTPPasswordNeverShown connects SMTP with a password (once
// refused through the card's form, then accepted through the API), sends
// an email, and looks for the password everywhere it could leak.
func TestEmailSMTPPasswordNeverShown(t *testing.T) {
	t.Parallel()
	srv := startSMTP(t)
	a := newTestApp(t, withSMTPServer(srv))
	tok := a.apiOwner(true)

	// A refused attempt from the Integrations page: the card comes back
	// with what was typed, but not the password.
	const wrong = "wrong-smtp-password-4455"
	resp, card := a.postForm("/integrations/email", url.Values{
		"provider": {"smtp"}, "host": {srv.Host()}, "port": {strconv.Itoa(closedPort(t))}, "username": {smtpTestUser}, "password": {wrong},
		"tls": {"starttls"}, "from": {emailFrom},
	}, "HX-Request", "true")
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("connect on a closed port: %d\n%s", resp.StatusCode, card)
	}
	if strings.Contains(card, wrong) {
		t.Error("the refused card shows the typed password")
	}

	a.connectSMTP(tok, srv)
	if resp, got := a.sendTestEmail(tok, testEmailBody(t, emailTo)); resp.StatusCode != http.StatusOK {
		t.Fatalf("send: %d %s", resp.StatusCode, got)
	}
	srv.RejectRecipient(550, "No such user")
	a.sendTestEmail(tok, testEmailBody(t, emailTo))
	a.postForm("/integrations/email/test", url.Values{}, "HX-Request", "true")

	_, integrationsPage := a.get("/integrations")
	if !strings.Contains(integrationsPage, masked(smtpTestPass)) {
		t.Errorf("the card does not show the masked password %q", masked(smtpTestPass))
	}
	_, emailPage := a.get("/email")
	_, status := a.emailCall(tok, http.MethodGet, "/api/v1/integrations", "")
	// AUTH PLAIN sends "\x00user\x00password" in base64.
	plain := base64.StdEncoding.EncodeToString([]byte("\x00" + smtpTestUser + "\x00" + smtpTestPass))
	texts := map[string]string{
		"the log": a.logs.String(), "the Integrations page": integrationsPage, "the Email page": emailPage, "the status": status,
	}
	for what, text := range texts {
		for _, secret := range []string{smtpTestPass, wrong, plain} {
			if strings.Contains(text, secret) {
				t.Errorf("%s contains %q", what, secret)
			}
		}
	}
	path, _ := a.console.Config.SQLitePath()
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		data, err := os.ReadFile(f) //nolint:gosec // the test's own database
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, secret := range []string{smtpTestPass, wrong} {
			if bytes.Contains(data, []byte(secret)) {
				t.Errorf("%s contains %q in clear", f, secret)
			}
		}
	}
}
