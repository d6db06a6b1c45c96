package email_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ava/console/services"
	"github.com/ava/console/services/email"
	"github.com/ava/console/services/upstream"
	"github.com/ava/console/services/upstream/upstreamtest"
)

// sandboxTo is Resend's test address that accepts and "delivers" anything.
const sandboxTo = "delivered@resend.dev"

// TestSandbox runs against the real Resend API, opt-in: set
// RESEND_SANDBOX_KEY (a Resend API key; a sending-only key is enough).
// It checks the key, sends one email to delivered@resend.dev from
// RESEND_SANDBOX_FROM (default "Ava console <onboarding@resend.dev>"),
// repeats it with the same Idempotency-Key, and checks that a wrong key is
// refused. RESEND_SANDBOX_BASE_URL overrides https://api.resend.com.
func TestSandbox(t *testing.T) {
	key := os.Getenv("RESEND_SANDBOX_KEY")
	if key == "" {
		t.Skip("RESEND_SANDBOX_KEY is not set: the real-Resend test needs a Resend API key; it sends to delivered@resend.dev")
	}
	from := os.Getenv("RESEND_SANDBOX_FROM")
	if from == "" {
		from = "Ava console <onboarding@resend.dev>"
	}
	base := os.Getenv("RESEND_SANDBOX_BASE_URL")
	if base == "" {
		base = "https://api.resend.com"
	}
	reg := prometheus.NewRegistry()
	guards, err := upstream.NewGuards(upstream.Settings{
		Timeout: 15 * time.Second, FailureThreshold: 3, RecoveryTimeout: time.Minute, SuccessThreshold: 1,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	c := email.NewResendClient(base, guards.Client(email.ProviderResend))
	ctx := services.WithCorrelationID(context.Background(), "ava-sandbox-test")

	if err := sandboxCall(t, func() error { return c.CheckKey(ctx, key) }); err != nil {
		t.Fatalf("check the key: %v", err)
	}

	m := email.Message{
		From: from, To: sandboxTo,
		Subject:       "Ava console sandbox test " + time.Now().UTC().Format(time.RFC3339),
		Text:          "Sent by the opt-in sandbox test of services/email.",
		CorrelationID: "ava-sandbox-test", IdempotencyKey: uuid.NewString(),
	}
	var sent email.Sent
	if err := sandboxCall(t, func() error { var err error; sent, err = c.Send(ctx, key, m); return err }); err != nil {
		t.Fatalf("send to %s from %s: %v", sandboxTo, from, err)
	}
	if sent.ID == "" {
		t.Fatal("Resend answered no email id")
	}
	t.Logf("Resend accepted email %s", sent.ID)

	// The same Idempotency-Key with the same payload is the same email.
	var again email.Sent
	if err := sandboxCall(t, func() error { var err error; again, err = c.Send(ctx, key, m); return err }); err != nil {
		t.Fatalf("send again with the same Idempotency-Key: %v", err)
	}
	if again.ID != sent.ID {
		t.Errorf("the repeated send made email %s, want %s (idempotent)", again.ID, sent.ID)
	}

	// A wrong key is Resend's refusal, in its words.
	err = sandboxCall(t, func() error { return c.CheckKey(ctx, "re_not_a_real_key_0000000000") })
	var re *email.ResendError
	switch {
	case !errors.As(err, &re):
		t.Errorf("wrong key: %v (%T), want *email.ResendError", err, err)
	case re.Status != http.StatusUnauthorized && re.Status != http.StatusForbidden || re.Message == "":
		t.Errorf("wrong key: %+v, want 401 or 403 with Resend's message", re)
	default:
		t.Logf("Resend refused a wrong key: %v", re)
	}

	if state := guards.Breaker(email.ProviderResend).State(); state != "closed" {
		t.Errorf("the resend breaker is %s", state)
	}
	if v, _, err := upstreamtest.Metric(reg, "ava_upstream_requests_total", map[string]string{"upstream": "resend", "outcome": "success"}); err != nil || v < 2 {
		// The two sends; checking a sending-only key counts as a client error.
		t.Errorf("successful calls counted %v (%v), want at least 2", v, err)
	}
}

// sandboxCall runs call, once more after Resend's Retry-After when Resend
// rate limits it (its default limit is a few requests a second).
func sandboxCall(t *testing.T, call func() error) error {
	t.Helper()
	err := call()
	var re *email.ResendError
	if !errors.As(err, &re) || re.Status != http.StatusTooManyRequests {
		return err
	}
	wait := min(max(re.RetryAfter, time.Second), 10*time.Second)
	t.Logf("Resend rate limited the call; retrying in %s", wait)
	time.Sleep(wait)
	return call()
}
