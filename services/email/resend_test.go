package email_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ava/console/services"
	"github.com/ava/console/services/email"
	"github.com/ava/console/services/email/resendtest"
	"github.com/ava/console/services/upstream"
	"github.com/ava/console/services/upstream/upstreamtest"
)

const (
	fullKey    = "re_full_0123456789abcdef"
	sendingKey = "re_send_0123456789abcdef"
)

func testSettings(timeout time.Duration) upstream.Settings {
	return upstream.Settings{Timeout: timeout, FailureThreshold: 3, RecoveryTimeout: 30 * time.Second, SuccessThreshold: 2}
}

func newGuards(t *testing.T, timeout time.Duration) (*upstream.Guards, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	g, err := upstream.NewGuards(testSettings(timeout), slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	return g, reg
}

type resendWorld struct {
	fake   *resendtest.Server
	url    string
	guards *upstream.Guards
	reg    *prometheus.Registry
	client *email.ResendClient
}

func newResendWorld(t *testing.T) *resendWorld {
	t.Helper()
	fake := resendtest.New()
	fake.AddKey(fullKey, false)
	fake.AddKey(sendingKey, true)
	fake.AddDomain("example.com")
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	g, reg := newGuards(t, 2*time.Second)
	return &resendWorld{fake: fake, url: srv.URL, guards: g, reg: reg, client: email.NewResendClient(srv.URL+"/", g.Client("resend"))}
}

func (w *resendWorld) state() string { return w.guards.Breaker("resend").State() }

func testEmail() email.Message {
	return email.Message{
		From: "Front desk <desk@example.com>", To: "client@example.org",
		Subject: "Your appointment", Text: "See you tomorrow at 10:00.",
	}
}

func resendErr(t *testing.T, err error) *email.ResendError {
	t.Helper()
	var re *email.ResendError
	if !errors.As(err, &re) {
		t.Fatalf("%v (%T), want *email.ResendError", err, err)
	}
	return re
}

func TestResendCheckKeyFull(t *testing.T) {
	t.Parallel()
	w := newResendWorld(t)
	if err := w.client.CheckKey(context.Background(), fullKey); err != nil {
		t.Fatal(err)
	}
	r := w.fake.Requests()[0]
	if r.Method != http.MethodGet || r.Path != "/domains" || r.Authorization != "Bearer "+fullKey || r.UserAgent != "ava-console/1" {
		t.Errorf("request %+v", r)
	}
}

func TestResendCheckKeySendingOnlyIsValid(t *testing.T) {
	t.Parallel()
	w := newResendWorld(t)
	if err := w.client.CheckKey(context.Background(), sendingKey); err != nil {
		t.Fatalf("a sending-only key must pass the check: %v", err)
	}
}

func TestResendCheckKeyRefused(t *testing.T) {
	t.Parallel()
	w := newResendWorld(t)
	tests := []struct {
		key, name, message string
		status             int
	}{
		{"re_wrong", "invalid_api_key", "API key is invalid", 403},
		{"", "missing_api_key", "Missing API key in the authorization header.", 401},
	}
	for _, tt := range tests {
		re := resendErr(t, w.client.CheckKey(context.Background(), tt.key))
		if re.Status != tt.status || re.Name != tt.name || re.Message != tt.message {
			t.Errorf("key %q: %+v, want %d %s %q", tt.key, re, tt.status, tt.name, tt.message)
		}
		if !strings.Contains(re.Error(), tt.name) {
			t.Errorf("Error() %q does not name %s", re.Error(), tt.name)
		}
	}
}

func TestResendSend(t *testing.T) {
	t.Parallel()
	w := newResendWorld(t)
	ctx := services.WithCorrelationID(context.Background(), "corr-42")
	m := testEmail()
	m.IdempotencyKey = "reminder-17-attempt-1"
	sent, err := w.client.Send(ctx, sendingKey, m)
	if err != nil {
		t.Fatal(err)
	}
	got := w.fake.Sent()
	if len(got) != 1 || got[0].ID != sent.ID || sent.ID == "" {
		t.Fatalf("sent %+v, fake has %+v", sent, got)
	}
	e := got[0]
	if e.From != m.From || len(e.To) != 1 || e.To[0] != m.To || e.Subject != m.Subject || e.Text != m.Text ||
		e.IdempotencyKey != m.IdempotencyKey {
		t.Errorf("fake received %+v", e)
	}
	r := w.fake.Requests()[0]
	if r.Method != http.MethodPost || r.Path != "/emails" {
		t.Errorf("request %s %s", r.Method, r.Path)
	}
	if r.Authorization != "Bearer "+sendingKey || r.UserAgent != "ava-console/1" ||
		r.IdempotencyKey != m.IdempotencyKey || r.CorrelationID != "corr-42" {
		t.Errorf("headers %+v", r)
	}
	if to, ok := r.Body["to"].([]any); !ok || len(to) != 1 || to[0] != m.To {
		t.Errorf("body to %v, want a list", r.Body["to"])
	}
}

func TestResendSendMessageCorrelationID(t *testing.T) {
	t.Parallel()
	w := newResendWorld(t)
	m := testEmail()
	m.CorrelationID = "from-the-outbox"
	if _, err := w.client.Send(context.Background(), fullKey, m); err != nil {
		t.Fatal(err)
	}
	if got := w.fake.Requests()[0].CorrelationID; got != "from-the-outbox" {
		t.Errorf("X-Correlation-ID %q", got)
	}
}

func TestResendIdempotency(t *testing.T) {
	t.Parallel()
	w := newResendWorld(t)
	m := testEmail()
	m.IdempotencyKey = "k-1"
	first, err := w.client.Send(context.Background(), fullKey, m)
	if err != nil {
		t.Fatal(err)
	}
	again, err := w.client.Send(context.Background(), fullKey, m)
	if err != nil || again.ID != first.ID {
		t.Fatalf("same key, same body: %+v, %v; want the first id %s", again, err, first.ID)
	}
	if n := len(w.fake.Sent()); n != 1 {
		t.Errorf("%d emails sent, want 1", n)
	}
	m.Text = "Something else"
	re := resendErr(t, func() error { _, err := w.client.Send(context.Background(), fullKey, m); return err }())
	if re.Status != 409 || re.Name != "invalid_idempotent_request" {
		t.Errorf("same key, other body: %+v", re)
	}
}

func TestResendValidation(t *testing.T) {
	t.Parallel()
	w := newResendWorld(t)
	bad := testEmail()
	bad.From = "not an address"
	re := resendErr(t, func() error { _, err := w.client.Send(context.Background(), fullKey, bad); return err }())
	if re.Status != 422 || re.Name != "validation_error" || !strings.Contains(re.Message, "Invalid `from` field") {
		t.Errorf("bad from: %+v", re)
	}
	missing := testEmail()
	missing.Subject = ""
	re = resendErr(t, func() error { _, err := w.client.Send(context.Background(), fullKey, missing); return err }())
	if re.Status != 422 || re.Name != "missing_required_field" || !strings.Contains(re.Message, "subject") {
		t.Errorf("no subject: %+v", re)
	}
	if n := len(w.fake.Sent()); n != 0 {
		t.Errorf("%d emails sent", n)
	}
}

func TestResendRateLimit(t *testing.T) {
	t.Parallel()
	w := newResendWorld(t)
	w.fake.FailNext(1, resendtest.Failure{Status: 429, Message: "Too many requests. Please limit the number of requests per second.", RetryAfter: "7"})
	re := resendErr(t, func() error { _, err := w.client.Send(context.Background(), fullKey, testEmail()); return err }())
	if re.Status != 429 || re.Name != "rate_limit_exceeded" || re.RetryAfter != 7*time.Second {
		t.Errorf("429: %+v", re)
	}
}

func TestResendErrorBodyNotJSON(t *testing.T) {
	t.Parallel()
	// What Resend's edge answers, before the API, to a request without User-Agent.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, "error code: 1010")
	}))
	t.Cleanup(srv.Close)
	g, _ := newGuards(t, 2*time.Second)
	re := resendErr(t, email.NewResendClient(srv.URL, g.Client("resend")).CheckKey(context.Background(), fullKey))
	if re.Status != 403 || re.Name != "" || re.Message != "HTTP 403" {
		t.Errorf("%+v", re)
	}
}

func TestResendFakeWantsUserAgent(t *testing.T) {
	t.Parallel()
	w := newResendWorld(t)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, w.url+"/domains", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+fullKey)
	req.Header.Set("User-Agent", "") // Go then sends none
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 403 || string(body) != "error code: 1010" {
		t.Errorf("%d %q, want 403 error code: 1010", resp.StatusCode, body)
	}
}

func TestResendServerErrorsOpenTheBreaker(t *testing.T) {
	t.Parallel()
	w := newResendWorld(t)
	w.fake.FailAlways(resendtest.Failure{Status: 500})
	for i := range 3 {
		re := resendErr(t, func() error { _, err := w.client.Send(context.Background(), fullKey, testEmail()); return err }())
		if re.Status != 500 || re.Name != "internal_server_error" {
			t.Errorf("call %d: %+v", i, re)
		}
	}
	if w.state() != "open" {
		t.Fatalf("breaker %s after 3 5xx, want open", w.state())
	}
	before := len(w.fake.Requests())
	_, err := w.client.Send(context.Background(), fullKey, testEmail())
	var open *upstream.OpenError
	if !errors.As(err, &open) || open.Upstream != "resend" {
		t.Fatalf("%v, want *upstream.OpenError", err)
	}
	if after := len(w.fake.Requests()); after != before {
		t.Errorf("the open breaker let a request through (%d -> %d)", before, after)
	}
	var se *services.Error
	if !errors.As(upstream.Error("Resend", time.Second, err), &se) || se.Code != services.EUNAVAILABLE {
		t.Errorf("upstream.Error: %v, want EUNAVAILABLE", se)
	}
}

func TestResendClientErrorsDoNotOpenTheBreaker(t *testing.T) {
	t.Parallel()
	w := newResendWorld(t)
	for range 5 {
		_ = resendErr(t, w.client.CheckKey(context.Background(), "re_wrong"))
	}
	if w.state() != "closed" {
		t.Fatalf("breaker %s after 5 4xx, want closed", w.state())
	}
	if err := w.client.CheckKey(context.Background(), fullKey); err != nil {
		t.Fatal(err)
	}
	v, _, err := upstreamtest.Metric(w.reg, "ava_upstream_requests_total", map[string]string{"upstream": "resend", "outcome": upstream.OutcomeClientError})
	if err != nil || v != 5 {
		t.Errorf("client_error outcomes %v (%v), want 5", v, err)
	}
}

func TestResendDroppedConnectionsCount(t *testing.T) {
	t.Parallel()
	w := newResendWorld(t)
	w.fake.FailAlways(resendtest.Failure{Drop: true})
	for i := range 3 {
		_, err := w.client.Send(context.Background(), fullKey, testEmail())
		var re *email.ResendError
		if err == nil || errors.As(err, &re) {
			t.Fatalf("call %d: %v, want a transport error", i, err)
		}
	}
	if w.state() != "open" {
		t.Errorf("breaker %s after 3 dropped connections, want open", w.state())
	}
}

func TestResendTimeout(t *testing.T) {
	t.Parallel()
	fake := resendtest.New()
	fake.AddKey(fullKey, false)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	g, _ := newGuards(t, 100*time.Millisecond)
	client := email.NewResendClient(srv.URL, g.Client("resend"))
	fake.SetDelay(2 * time.Second)
	err := client.CheckKey(context.Background(), fullKey)
	var se *services.Error
	if !errors.As(upstream.Error("Resend", 100*time.Millisecond, err), &se) || se.Code != services.ETIMEOUT {
		t.Errorf("%v, want a timeout", err)
	}
}
