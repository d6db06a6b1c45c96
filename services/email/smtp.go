package email

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"github.com/ava/console/services"
	"github.com/ava/console/services/upstream"
)

// TLS modes of an SMTP connection.
const (
	TLSStartTLS = "starttls" // plain connection upgraded with STARTTLS, which is mandatory (usually port 587)
	TLSImplicit = "tls"      // TLS from the first byte (usually port 465)
	TLSNone     = "none"     // unencrypted: no password is ever sent over it
)

// Stages of an SMTP session, as SMTPError.Stage names them.
const (
	StageConnect = "connect"
	StageTLS     = "tls"
	StageAuth    = "auth"
	StageMail    = "mail"
	StageRcpt    = "rcpt"
	StageData    = "data"
)

// SMTPConfig is how to reach an account's SMTP server.
type SMTPConfig struct {
	Host string
	Port int
	// Username, when set, signs in with AUTH PLAIN (or LOGIN if that is all
	// the server offers); it needs an encrypted connection.
	Username, Password string
	// TLS is TLSStartTLS, TLSImplicit or TLSNone.
	TLS string
}

// SMTPError is an SMTP session that went wrong in a way the owner can act
// on: a reply of the server (Code is its reply code), or a refusal of ours
// before anything was sent (Code 0: no STARTTLS offered, a password over an
// unencrypted connection, an invalid address), or a TLS certificate or
// handshake failure (Stage "tls", Code 0). Message is fit to show the owner.
type SMTPError struct {
	Code    int
	Message string
	Stage   string
	err     error
	// failure marks a refusal that counts against the server (TLS failures).
	failure bool
}

func (e *SMTPError) Error() string { return fmt.Sprintf("smtp %s: %s", e.Stage, e.Message) }

// Unwrap returns the underlying error (the server's *textproto.Error, the
// x509 error...), for the log.
func (e *SMTPError) Unwrap() error { return e.err }

// Permanent reports whether sending again unchanged would fail the same
// way: a 5xx reply, or a refusal of ours. Those count neither as success nor
// as failure for the breaker (they are about one account's settings or
// message, not about the server being up). 4xx replies and TLS failures are
// not permanent and count as failures.
func (e *SMTPError) Permanent() bool {
	return !e.failure && (e.Code == 0 || e.Code >= 500)
}

// Guard runs one SMTP session with server (host:port) through the upstream
// breaker: func(ctx, server, fn) error { return guards.Do(ctx, "smtp:"+server, fn) }.
type Guard func(ctx context.Context, server string, fn func(ctx context.Context) error) error

// Server is the destination of a configuration: host:port.
func Server(cfg SMTPConfig) string { return net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)) }

// SMTPSender talks to accounts' SMTP servers.
type SMTPSender struct {
	// TLSConfig verifies servers' certificates; nil means the system roots.
	// Its ServerName is set to the configured host when empty.
	TLSConfig *tls.Config

	guard Guard
}

// NewSMTPSender returns a sender whose sessions all run inside guard (nil:
// unguarded, bounded only by the caller's context).
func NewSMTPSender(guard Guard) *SMTPSender {
	return &SMTPSender{guard: guard}
}

// Check connects, says EHLO, starts TLS and signs in (when cfg has a
// username), then quits: it tells whether cfg works without sending mail.
// Errors: *SMTPError (see its doc), *upstream.OpenError, or the network's
// error (connection refused, dropped; timeouts match context.DeadlineExceeded).
func (s *SMTPSender) Check(ctx context.Context, cfg SMTPConfig) error {
	if err := validConfig(cfg); err != nil {
		return err
	}
	return s.run(ctx, cfg, func(ctx context.Context) error {
		return s.session(ctx, cfg, func(*smtp.Client) error { return nil })
	})
}

// Send sends m as a text/plain email, with X-Correlation-ID set to
// m.CorrelationID or else the context's. Sent.ID is the Message-ID it was
// sent with (<uuid@sender's domain>), without its angle brackets. Errors are
// as Check's, with stages
// "mail", "rcpt" and "data" too; a timeout after the message was written
// may still have delivered it.
func (s *SMTPSender) Send(ctx context.Context, cfg SMTPConfig, m Message) (Sent, error) {
	if err := validConfig(cfg); err != nil {
		return Sent{}, err
	}
	if m.CorrelationID == "" {
		m.CorrelationID = services.CorrelationID(ctx)
	}
	msg, id, err := buildMessage(m)
	if err != nil {
		return Sent{}, err
	}
	from, err := msg.GetSender(false)
	if err != nil {
		return Sent{}, &SMTPError{Stage: StageMail, Message: "The message has no sender address.", err: err}
	}
	rcpts, err := msg.GetRecipients()
	if err != nil {
		return Sent{}, &SMTPError{Stage: StageRcpt, Message: "The message has no recipient.", err: err}
	}
	err = s.run(ctx, cfg, func(ctx context.Context) error {
		return s.session(ctx, cfg, func(c *smtp.Client) error {
			if err := c.Mail(from); err != nil {
				return failed(ctx, StageMail, m.From, err)
			}
			for _, rcpt := range rcpts {
				if err := c.Rcpt(rcpt); err != nil {
					return failed(ctx, StageRcpt, m.To, err)
				}
			}
			w, err := c.Data()
			if err != nil {
				return failed(ctx, StageData, "", err)
			}
			if _, err := msg.WriteTo(w); err != nil {
				_ = w.Close()
				return failed(ctx, StageData, "", err)
			}
			if err := w.Close(); err != nil {
				return failed(ctx, StageData, "", err)
			}
			return nil
		})
	})
	if err != nil {
		return Sent{}, err
	}
	return Sent{ID: id}, nil
}

// run marks permanent refusals Neutral inside the guard, so that the
// breaker does not count them; the guard hands them back unwrapped.
func (s *SMTPSender) run(ctx context.Context, cfg SMTPConfig, fn func(ctx context.Context) error) error {
	if s.guard == nil {
		return fn(ctx)
	}
	return s.guard(ctx, Server(cfg), func(ctx context.Context) error {
		err := fn(ctx)
		var se *SMTPError
		if errors.As(err, &se) && se.Permanent() {
			return upstream.Neutral(err)
		}
		return err
	})
}

// session opens a session (greeting, EHLO, TLS, AUTH), runs fn in it and
// quits. The connection lives no longer than ctx.
func (s *SMTPSender) session(ctx context.Context, cfg SMTPConfig, fn func(*smtp.Client) error) error {
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return failed(ctx, StageConnect, "", err)
	}
	// go-mail's smtp.Client knows no contexts: the deadline bounds every
	// read and write, and cancellation closes the connection under it.
	stop := context.AfterFunc(ctx, func() { _ = raw.Close() })
	defer func() {
		stop()
		_ = raw.Close()
	}()
	if dl, ok := ctx.Deadline(); ok {
		if err := raw.SetDeadline(dl); err != nil {
			return failed(ctx, StageConnect, "", err)
		}
	}
	tlsConf := s.tlsConfig(cfg.Host)
	conn := raw
	if cfg.TLS == TLSImplicit {
		tc := tls.Client(raw, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			return failed(ctx, StageTLS, "", err)
		}
		conn = tc // a *tls.Conn: smtp.Client then knows the session is encrypted
	}
	c, err := smtp.NewClient(conn, cfg.Host)
	if err != nil {
		return failed(ctx, StageConnect, "", err)
	}
	if err := c.Hello(heloName()); err != nil {
		return failed(ctx, StageConnect, "", err)
	}
	if cfg.TLS == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return &SMTPError{Stage: StageTLS, Message: "The SMTP server does not offer STARTTLS, so the connection " +
				"would not be encrypted. Check the port, or choose TLS (usually port 465)."}
		}
		if err := c.StartTLS(tlsConf); err != nil {
			return failed(ctx, StageTLS, "", err)
		}
	}
	if cfg.Username != "" {
		if err := signIn(ctx, c, cfg); err != nil {
			return err
		}
	}
	if err := fn(c); err != nil {
		return err
	}
	// The server has accepted all it had to: a failed QUIT changes nothing.
	_ = c.Quit()
	return nil
}

func signIn(ctx context.Context, c *smtp.Client, cfg SMTPConfig) error {
	ok, offered := c.Extension("AUTH")
	if !ok {
		return &SMTPError{Stage: StageAuth, Message: "The SMTP server does not offer sign-in (AUTH) on this connection. " +
			"Leave the username empty if it needs none."}
	}
	mechs := strings.Fields(strings.ToUpper(offered))
	var auth smtp.Auth
	switch {
	case slices.Contains(mechs, "PLAIN"):
		auth = smtp.PlainAuth("", cfg.Username, cfg.Password, cfg.Host, false)
	case slices.Contains(mechs, "LOGIN"):
		auth = smtp.LoginAuth(cfg.Username, cfg.Password, cfg.Host, false)
	default:
		return &SMTPError{Stage: StageAuth, Message: fmt.Sprintf(
			"The SMTP server offers no sign-in method the console supports (it offers %s; the console uses PLAIN or LOGIN).", offered)}
	}
	if err := c.Auth(auth); err != nil {
		return failed(ctx, StageAuth, "", err)
	}
	return nil
}

func validConfig(cfg SMTPConfig) error {
	switch {
	case cfg.Host == "":
		return &SMTPError{Stage: StageConnect, Message: "The SMTP host is missing."}
	case cfg.Port <= 0 || cfg.Port > 65535:
		return &SMTPError{Stage: StageConnect, Message: fmt.Sprintf("The SMTP port %d is not a valid port.", cfg.Port)}
	case cfg.TLS != TLSStartTLS && cfg.TLS != TLSImplicit && cfg.TLS != TLSNone:
		return &SMTPError{Stage: StageConnect, Message: fmt.Sprintf("Unknown SMTP security mode %q (use starttls, tls or none).", cfg.TLS)}
	case cfg.TLS == TLSNone && cfg.Username != "":
		return &SMTPError{Stage: StageAuth, Message: "The connection would not be encrypted, so the password " +
			"will not be sent over it. Choose STARTTLS or TLS."}
	}
	return nil
}

func (s *SMTPSender) tlsConfig(host string) *tls.Config {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.TLSConfig != nil {
		conf = s.TLSConfig.Clone()
		if conf.MinVersion == 0 {
			conf.MinVersion = tls.VersionTLS12
		}
	}
	if conf.ServerName == "" {
		conf.ServerName = host
	}
	return conf
}

// heloName is how the console introduces itself in EHLO.
func heloName() string {
	if h, err := os.Hostname(); err == nil && h != "" && !strings.ContainsAny(h, " \r\n") {
		return h
	}
	return "localhost"
}

// buildMessage makes m a go-mail message with a fresh Message-ID, returned
// without angle brackets.
func buildMessage(m Message) (*mail.Msg, string, error) {
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	if err := msg.From(m.From); err != nil {
		return nil, "", &SMTPError{Stage: StageMail, Message: fmt.Sprintf("The sender address %q is not a valid email address.", m.From), err: err}
	}
	if err := msg.To(m.To); err != nil {
		return nil, "", &SMTPError{Stage: StageRcpt, Message: fmt.Sprintf("The recipient address %q is not a valid email address.", m.To), err: err}
	}
	domain := "ava-console"
	if from, err := msg.GetSender(false); err == nil {
		if _, d, ok := strings.Cut(strings.Trim(from, "<>"), "@"); ok && d != "" {
			domain = d
		}
	}
	id := uuid.NewString() + "@" + domain
	msg.SetMessageIDWithValue(id)
	msg.SetDate()
	msg.Subject(m.Subject)
	if cid := headerSafe(m.CorrelationID); cid != "" {
		msg.SetGenHeader(mail.Header(services.CorrelationHeader), cid)
	}
	msg.SetUserAgent("ava-console/1")
	msg.SetBodyString(mail.TypeTextPlain, m.Text)
	return msg, id, nil
}

// headerSafe keeps printable ASCII: a header value must not smuggle a line break.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, s)
}

// failed turns what went wrong at a stage into the error the sender
// returns: the server's replies and TLS failures become *SMTPError; the
// rest (refused, dropped, timed out) stays the network's error, with the
// context's error when it ended the session.
func failed(ctx context.Context, stage, address string, err error) error {
	var reply *textproto.Error
	if errors.As(err, &reply) {
		return replyError(stage, address, reply)
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("smtp %s: %w (%w)", stage, ctxErr, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("smtp %s: %w (%w)", stage, context.DeadlineExceeded, err)
	}
	if stage == StageTLS {
		if se := tlsError(err); se != nil {
			return se
		}
	}
	if errors.Is(err, smtp.ErrUnencrypted) {
		return &SMTPError{Stage: StageAuth, Message: "The connection is not encrypted, so the password was not sent.", err: err}
	}
	return fmt.Errorf("smtp %s: %w", stage, err)
}

func tlsError(err error) *SMTPError {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		header   tls.RecordHeaderError
		alert    tls.AlertError
	)
	switch {
	case errors.As(err, &verify):
		return &SMTPError{Stage: StageTLS, Message: fmt.Sprintf("The SMTP server's TLS certificate is not valid (%v).", verify.Err), err: err, failure: true}
	case errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &invalid):
		return &SMTPError{Stage: StageTLS, Message: fmt.Sprintf("The SMTP server's TLS certificate is not valid (%v).", err), err: err, failure: true}
	case errors.As(err, &header):
		return &SMTPError{Stage: StageTLS, Message: "The SMTP server did not answer in TLS. Check that the port matches " +
			"the security mode (usually 465 for TLS, 587 for STARTTLS).", err: err, failure: true}
	case errors.As(err, &alert):
		return &SMTPError{Stage: StageTLS, Message: fmt.Sprintf("The TLS handshake with the SMTP server failed (%v).", err), err: err, failure: true}
	}
	return nil
}

// replyError words a reply of the server for the owner.
func replyError(stage, address string, reply *textproto.Error) *SMTPError {
	var what string
	switch stage {
	case StageConnect:
		what = "The SMTP server refused the connection"
	case StageTLS:
		what = "The SMTP server refused to start TLS"
	case StageAuth:
		what = "The SMTP server did not accept the username or password"
	case StageMail:
		what = fmt.Sprintf("The SMTP server refused the sender %s", address)
	case StageRcpt:
		what = fmt.Sprintf("The SMTP server refused the recipient %s", address)
	default:
		what = "The SMTP server refused the message"
	}
	said := fmt.Sprintf("%d %s", reply.Code, oneLine(reply.Msg))
	msg := fmt.Sprintf("%s: %s", what, said)
	if reply.Code < 500 {
		msg = fmt.Sprintf("%s for now: %s. Try again later.", what, said)
	}
	return &SMTPError{Code: reply.Code, Message: msg, Stage: stage, err: reply}
}

// oneLine joins a multi-line reply and keeps it short enough to show.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
