package email_test

import (
	"context"
	"crypto/tls"
	"errors"
	"mime"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ava/console/services"
	"github.com/ava/console/services/email"
	"github.com/ava/console/services/email/smtptest"
	"github.com/ava/console/services/upstream"
	"github.com/ava/console/services/upstream/upstreamtest"
)

const (
	smtpUser = "desk@example.com"
	smtpPass = "correct horse battery staple"
)

type smtpWorld struct {
	srv    *smtptest.Server
	guards *upstream.Guards
	reg    *prometheus.Registry
	sender *email.SMTPSender
}

func newSMTPWorld(t *testing.T, opts smtptest.Options, timeout time.Duration) *smtpWorld {
	t.Helper()
	g, reg := newGuards(t, timeout)
	sender := email.NewSMTPSender(func(ctx context.Context, _ string, fn func(ctx context.Context) error) error {
		return g.Do(ctx, "smtp", fn)
	})
	srv := smtptest.Start(t, opts)
	sender.TLSConfig = &tls.Config{RootCAs: srv.RootCAs(), MinVersion: tls.VersionTLS12}
	return &smtpWorld{srv: srv, guards: g, reg: reg, sender: sender}
}

func (w *smtpWorld) config(mode, user, pass string) email.SMTPConfig {
	return email.SMTPConfig{Host: w.srv.Host(), Port: w.srv.Port(), Username: user, Password: pass, TLS: mode}
}

func (w *smtpWorld) state() string { return w.guards.Breaker("smtp").State() }

func (w *smtpWorld) outcomes(t *testing.T, outcome string) float64 {
	t.Helper()
	v, _, err := upstreamtest.Metric(w.reg, "ava_upstream_requests_total", map[string]string{"upstream": "smtp", "outcome": outcome})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func smtpErr(t *testing.T, err error) *email.SMTPError {
	t.Helper()
	var se *email.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("%v (%T), want *email.SMTPError", err, err)
	}
	return se
}

func TestSMTPCheckStartTLSWithAuth(t *testing.T) {
	t.Parallel()
	w := newSMTPWorld(t, smtptest.Options{TLS: "starttls", Username: smtpUser, Password: smtpPass}, 5*time.Second)
	if err := w.sender.Check(context.Background(), w.config(email.TLSStartTLS, smtpUser, smtpPass)); err != nil {
		t.Fatal(err)
	}
	sessions := w.srv.Sessions()
	if len(sessions) != 1 || sessions[0].AuthUser != smtpUser || !sessions[0].TLS || sessions[0].Mail {
		t.Errorf("sessions %+v, want one over TLS, signed in, with no mail", sessions)
	}
	if n := len(w.srv.Messages()); n != 0 {
		t.Errorf("Check sent %d messages", n)
	}
	if got := w.outcomes(t, upstream.OutcomeSuccess); got != 1 {
		t.Errorf("success outcomes %v", got)
	}
}

func TestSMTPCheckImplicitTLS(t *testing.T) {
	t.Parallel()
	w := newSMTPWorld(t, smtptest.Options{TLS: "tls", Username: smtpUser, Password: smtpPass}, 5*time.Second)
	if err := w.sender.Check(context.Background(), w.config(email.TLSImplicit, smtpUser, smtpPass)); err != nil {
		t.Fatal(err)
	}
	if s := w.srv.Sessions(); len(s) != 1 || s[0].AuthUser != smtpUser || !s[0].TLS {
		t.Errorf("sessions %+v", s)
	}
}

func TestSMTPCheckWithoutTLS(t *testing.T) {
	t.Parallel()
	w := newSMTPWorld(t, smtptest.Options{TLS: "none", Username: smtpUser, Password: smtpPass}, 5*time.Second)
	// Without a username nothing secret goes over the wire.
	if err := w.sender.Check(context.Background(), w.config(email.TLSNone, "", "")); err != nil {
		t.Fatal(err)
	}
	// With one the password would go in clear: refused before connecting.
	se := smtpErr(t, w.sender.Check(context.Background(), w.config(email.TLSNone, smtpUser, smtpPass)))
	if se.Stage != email.StageAuth || !se.Permanent() || !strings.Contains(se.Message, "not be encrypted") {
		t.Errorf("%+v", se)
	}
	if n := w.srv.Connections(); n != 1 {
		t.Errorf("%d connections, want only the one without a username", n)
	}
	for _, s := range w.srv.Sessions() {
		if s.AuthUser != "" {
			t.Errorf("the password went over an unencrypted connection: %+v", s)
		}
	}
}

func TestSMTPWrongPasswordIsNeutral(t *testing.T) {
	t.Parallel()
	w := newSMTPWorld(t, smtptest.Options{TLS: "starttls", Username: smtpUser, Password: smtpPass}, 5*time.Second)
	for i := range 5 {
		se := smtpErr(t, w.sender.Check(context.Background(), w.config(email.TLSStartTLS, smtpUser, "wrong")))
		if se.Stage != email.StageAuth || se.Code != 535 || !se.Permanent() ||
			!strings.Contains(se.Message, "username or password") || !strings.Contains(se.Message, "Authentication failed") {
			t.Fatalf("try %d: %+v", i, se)
		}
	}
	if w.state() != "closed" {
		t.Errorf("breaker %s after 5 wrong passwords, want closed", w.state())
	}
	if got := w.outcomes(t, upstream.OutcomeClientError); got != 5 {
		t.Errorf("client_error outcomes %v, want 5", got)
	}
	if err := w.sender.Check(context.Background(), w.config(email.TLSStartTLS, smtpUser, smtpPass)); err != nil {
		t.Errorf("the right password after wrong ones: %v", err)
	}
}

func TestSMTPUnreachableOpensTheBreaker(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close() // nothing listens there now
	g, _ := newGuards(t, 2*time.Second)
	sender := email.NewSMTPSender(func(ctx context.Context, _ string, fn func(ctx context.Context) error) error {
		return g.Do(ctx, "smtp", fn)
	})
	cfg := email.SMTPConfig{Host: "127.0.0.1", Port: port, TLS: email.TLSStartTLS}
	for i := range 3 {
		err := sender.Check(context.Background(), cfg)
		var se *email.SMTPError
		if err == nil || errors.As(err, &se) {
			t.Fatalf("try %d: %v, want the network's error", i, err)
		}
		var e *services.Error
		if !errors.As(upstream.Error("SMTP", 2*time.Second, err), &e) || e.Code != services.EUPSTREAM {
			t.Errorf("upstream.Error: %v, want EUPSTREAM", e)
		}
	}
	if s := g.Breaker("smtp").State(); s != "open" {
		t.Fatalf("breaker %s after 3 refused connections, want open", s)
	}
	var open *upstream.OpenError
	if err := sender.Check(context.Background(), cfg); !errors.As(err, &open) {
		t.Errorf("%v, want *upstream.OpenError", err)
	}
}

func TestSMTPDroppedConnectionsCount(t *testing.T) {
	t.Parallel()
	w := newSMTPWorld(t, smtptest.Options{TLS: "starttls"}, 5*time.Second)
	w.srv.DropNext(3)
	for i := range 3 {
		err := w.sender.Check(context.Background(), w.config(email.TLSStartTLS, "", ""))
		var se *email.SMTPError
		if err == nil || errors.As(err, &se) {
			t.Fatalf("try %d: %v, want the network's error", i, err)
		}
	}
	if w.state() != "open" {
		t.Errorf("breaker %s after 3 dropped connections, want open", w.state())
	}
}

func TestSMTPRecipientRefused(t *testing.T) {
	t.Parallel()
	w := newSMTPWorld(t, smtptest.Options{TLS: "starttls", Username: smtpUser, Password: smtpPass}, 5*time.Second)
	w.srv.RejectRecipient(550, "No such user here")
	m := email.Message{From: "Front desk <desk@example.com>", To: "nobody@example.org", Subject: "Hi", Text: "Hello"}
	for range 4 {
		_, err := w.sender.Send(context.Background(), w.config(email.TLSStartTLS, smtpUser, smtpPass), m)
		se := smtpErr(t, err)
		if se.Stage != email.StageRcpt || se.Code != 550 || !se.Permanent() ||
			!strings.Contains(se.Message, "nobody@example.org") || !strings.Contains(se.Message, "No such user here") {
			t.Fatalf("%+v", se)
		}
	}
	if w.state() != "closed" {
		t.Errorf("breaker %s after refused recipients, want closed", w.state())
	}
	if n := len(w.srv.Messages()); n != 0 {
		t.Errorf("%d messages delivered", n)
	}
}

func TestSMTPTemporaryRefusalIsAFailure(t *testing.T) {
	t.Parallel()
	w := newSMTPWorld(t, smtptest.Options{TLS: "starttls"}, 5*time.Second)
	w.srv.RejectRecipient(451, "Greylisted, try again later")
	m := email.Message{From: "desk@example.com", To: "client@example.org", Subject: "Hi", Text: "Hello"}
	for range 3 {
		_, err := w.sender.Send(context.Background(), w.config(email.TLSStartTLS, "", ""), m)
		se := smtpErr(t, err)
		if se.Code != 451 || se.Permanent() || !strings.Contains(se.Message, "Try again later") {
			t.Fatalf("%+v", se)
		}
	}
	if w.state() != "open" {
		t.Errorf("breaker %s after 3 4xx replies, want open", w.state())
	}
}

func TestSMTPSend(t *testing.T) {
	t.Parallel()
	w := newSMTPWorld(t, smtptest.Options{TLS: "starttls", Username: smtpUser, Password: smtpPass}, 5*time.Second)
	ctx := services.WithCorrelationID(context.Background(), "corr-smtp-1")
	m := email.Message{
		From: "Front desk <desk@example.com>", To: "client@example.org",
		Subject: "Rendez-vous confirmé", Text: "See you tomorrow at 10:00.\nCost: 50% = paid.",
	}
	sent, err := w.sender.Send(ctx, w.config(email.TLSStartTLS, smtpUser, smtpPass), m)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(sent.ID, "@example.com") || strings.ContainsAny(sent.ID, "<>") {
		t.Errorf("Sent.ID %q, want a Message-ID without brackets", sent.ID)
	}
	msgs := w.srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages received", len(msgs))
	}
	got := msgs[0]
	if got.From != "desk@example.com" || len(got.To) != 1 || got.To[0] != "client@example.org" {
		t.Errorf("envelope %s -> %v", got.From, got.To)
	}
	h := got.Header
	subject, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil || subject != m.Subject {
		t.Errorf("Subject %q (%q, %v)", subject, h.Get("Subject"), err)
	}
	if from, err := h.AddressList("From"); err != nil || len(from) != 1 || from[0].Address != "desk@example.com" || from[0].Name != "Front desk" {
		t.Errorf("From %q", h.Get("From"))
	}
	if to, err := h.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != "client@example.org" {
		t.Errorf("To %q", h.Get("To"))
	}
	if h.Get("Message-Id") != "<"+sent.ID+">" {
		t.Errorf("Message-ID %q, want <%s>", h.Get("Message-Id"), sent.ID)
	}
	if h.Get("X-Correlation-Id") != "corr-smtp-1" {
		t.Errorf("X-Correlation-ID %q", h.Get("X-Correlation-Id"))
	}
	if !strings.HasPrefix(h.Get("Content-Type"), "text/plain") || h.Get("Date") == "" {
		t.Errorf("Content-Type %q, Date %q", h.Get("Content-Type"), h.Get("Date"))
	}
	if strings.TrimRight(got.Body, "\n") != m.Text {
		t.Errorf("body %q, want %q", got.Body, m.Text)
	}
	if s := w.srv.Sessions(); len(s) != 1 || !s[0].Mail || s[0].AuthUser != smtpUser {
		t.Errorf("sessions %+v", s)
	}
}

func TestSMTPSendMessageCorrelationID(t *testing.T) {
	t.Parallel()
	w := newSMTPWorld(t, smtptest.Options{TLS: "tls"}, 5*time.Second)
	m := email.Message{From: "desk@example.com", To: "client@example.org", Subject: "Hi", Text: "Hello", CorrelationID: "outbox-9"}
	if _, err := w.sender.Send(context.Background(), w.config(email.TLSImplicit, "", ""), m); err != nil {
		t.Fatal(err)
	}
	if got := w.srv.Messages()[0].Header.Get("X-Correlation-Id"); got != "outbox-9" {
		t.Errorf("X-Correlation-ID %q", got)
	}
}

func TestSMTPSendInvalidAddress(t *testing.T) {
	t.Parallel()
	w := newSMTPWorld(t, smtptest.Options{TLS: "starttls"}, 5*time.Second)
	m := email.Message{From: "desk@example.com", To: "not an address", Subject: "Hi", Text: "Hello"}
	_, err := w.sender.Send(context.Background(), w.config(email.TLSStartTLS, "", ""), m)
	if se := smtpErr(t, err); se.Stage != email.StageRcpt || !se.Permanent() {
		t.Errorf("%+v", se)
	}
	if n := w.srv.Connections(); n != 0 {
		t.Errorf("%d connections for an invalid address", n)
	}
}

func TestSMTPTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	w := newSMTPWorld(t, smtptest.Options{TLS: "starttls"}, timeout)
	w.srv.SetDelay(3 * time.Second)
	for i := range 3 {
		start := time.Now()
		err := w.sender.Check(context.Background(), w.config(email.TLSStartTLS, "", ""))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("try %d: %v, want it to match context.DeadlineExceeded", i, err)
		}
		var se *email.SMTPError
		if errors.As(err, &se) {
			t.Errorf("a timeout is not an SMTPError: %v", se)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("try %d took %s with a %s timeout", i, took, timeout)
		}
		var e *services.Error
		if !errors.As(upstream.Error("SMTP", timeout, err), &e) || e.Code != services.ETIMEOUT {
			t.Errorf("upstream.Error: %v, want ETIMEOUT", e)
		}
	}
	if w.state() != "open" {
		t.Errorf("breaker %s after 3 timeouts, want open", w.state())
	}
	if got := w.outcomes(t, upstream.OutcomeTimeout); got != 3 {
		t.Errorf("timeout outcomes %v, want 3", got)
	}
}

func TestSMTPStartTLSNotOffered(t *testing.T) {
	t.Parallel()
	w := newSMTPWorld(t, smtptest.Options{TLS: "none"}, 5*time.Second)
	se := smtpErr(t, w.sender.Check(context.Background(), w.config(email.TLSStartTLS, "", "")))
	if se.Stage != email.StageTLS || !se.Permanent() || !strings.Contains(se.Message, "STARTTLS") {
		t.Errorf("%+v", se)
	}
}

func TestSMTPUntrustedCertificateIsAFailure(t *testing.T) {
	t.Parallel()
	w := newSMTPWorld(t, smtptest.Options{TLS: "starttls"}, 5*time.Second)
	w.sender.TLSConfig = nil // system roots: the test certificate is not among them
	for range 3 {
		se := smtpErr(t, w.sender.Check(context.Background(), w.config(email.TLSStartTLS, "", "")))
		if se.Stage != email.StageTLS || se.Permanent() || !strings.Contains(se.Message, "certificate") {
			t.Fatalf("%+v", se)
		}
	}
	if w.state() != "open" {
		t.Errorf("breaker %s after 3 certificate failures, want open", w.state())
	}
}

func TestSMTPImplicitTLSOnAPlainPort(t *testing.T) {
	t.Parallel()
	w := newSMTPWorld(t, smtptest.Options{TLS: "starttls"}, 5*time.Second)
	se := smtpErr(t, w.sender.Check(context.Background(), w.config(email.TLSImplicit, "", "")))
	if se.Stage != email.StageTLS || se.Permanent() || !strings.Contains(se.Message, "465") {
		t.Errorf("%+v", se)
	}
}

func TestSMTPCanceled(t *testing.T) {
	t.Parallel()
	w := newSMTPWorld(t, smtptest.Options{TLS: "starttls"}, 5*time.Second)
	w.srv.SetDelay(3 * time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	err := w.sender.Check(ctx, w.config(email.TLSStartTLS, "", ""))
	if !errors.Is(err, context.Canceled) || time.Since(start) > 2*time.Second {
		t.Errorf("%v after %s, want context.Canceled soon", err, time.Since(start))
	}
	if w.state() != "closed" {
		t.Errorf("breaker %s", w.state())
	}
}
