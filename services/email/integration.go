package email

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/ava/console/services"
	"github.com/ava/console/services/integrations"
	"github.com/ava/console/services/upstream"
)

// Name is the integration's name (URLs, storage).
const Name = "email"

// Providers, as the provider field takes them; each is also the name of
// its upstream breaker.
const (
	ProviderResend = "resend"
	ProviderSMTP   = "smtp"
	// ProviderStub is what a send answers when the development stub took it.
	ProviderStub = "stub"
)

// Credential fields of the Email integration.
//
//nolint:gosec // G101: field names, not secrets
const (
	FieldProvider = "provider"
	FieldFrom     = "from"
	FieldAPIKey   = "api_key"
	FieldHost     = "host"
	FieldPort     = "port"
	FieldUsername = "username"
	FieldPassword = "password"
	FieldTLS      = "tls"
)

// Env is the environment's email configuration: RESEND_API_KEY, or the
// SMTP_* variables, each with EMAIL_FROM.
type Env struct {
	ResendAPIKey string
	SMTP         SMTPConfig
	From         string
}

// values are the environment's credentials as the registry stores any:
// Resend when its key is set, else SMTP when a host is.
func (e Env) values() integrations.Values {
	switch {
	case e.ResendAPIKey != "":
		return integrations.Values{FieldProvider: ProviderResend, FieldAPIKey: e.ResendAPIKey, FieldFrom: e.From}
	case e.SMTP.Host != "":
		port := e.SMTP.Port
		if port == 0 {
			port = 587
		}
		tls := e.SMTP.TLS
		if tls == "" {
			tls = TLSStartTLS
		}
		return integrations.Values{
			FieldProvider: ProviderSMTP, FieldHost: e.SMTP.Host, FieldPort: strconv.Itoa(port),
			FieldUsername: e.SMTP.Username, FieldPassword: e.SMTP.Password, FieldTLS: tls, FieldFrom: e.From,
		}
	}
	return nil
}

// Integration is Email as the registry knows it.
type Integration struct {
	resend  *ResendClient
	smtp    SMTP
	env     integrations.Values
	timeout time.Duration
}

// SMTP are the two SMTP senders: Send sends (and tests) through the smtp
// breaker; Check checks settings an owner typed, through a guard for which
// nothing counts as a failure: a mistyped host is the owner's, and must
// not pause every account's SMTP email.
type SMTP struct {
	Send, Check *SMTPSender
}

// NewIntegration returns the Email integration over the Resend client and
// the SMTP senders (all guarded). timeout is UPSTREAM_TIMEOUT, for messages.
func NewIntegration(resend *ResendClient, smtp SMTP, env Env, timeout time.Duration) *Integration {
	return &Integration{resend: resend, smtp: smtp, env: env.values(), timeout: timeout}
}

// Spec describes Email.
func (i *Integration) Spec() integrations.Spec {
	return integrations.Spec{
		Name:         Name,
		Label:        "Email",
		Blurb:        "Outgoing email, through Resend or your own SMTP server.",
		ConnectTitle: "Connect your email provider",
		Needs:        "a Resend API key or an SMTP server",
		Selector:     FieldProvider,
		Fields: []integrations.Field{
			{Name: FieldProvider, Label: "Provider", Choices: []integrations.Choice{
				{Value: ProviderResend, Label: "Resend"}, {Value: ProviderSMTP, Label: "SMTP server"},
			}},
			{Name: FieldFrom, Label: "From address", Placeholder: "Ava <ava@example.com>", MaxLen: 320, EnvVar: "EMAIL_FROM",
				Hint: "The sender of every email: an address, or a name and an address."},
			{Name: FieldAPIKey, Label: "Resend API key", Short: "API key", Secret: true, When: ProviderResend, EnvVar: "RESEND_API_KEY",
				Hint: "In Resend: API Keys. A sending-only key is enough."},
			{Name: FieldHost, Label: "SMTP host", Short: "Host", When: ProviderSMTP, MaxLen: 253, Placeholder: "smtp.example.com", EnvVar: "SMTP_HOST"},
			{Name: FieldPort, Label: "Port", Number: true, When: ProviderSMTP, Placeholder: "587", EnvVar: "SMTP_PORT"},
			{Name: FieldUsername, Label: "Username (optional)", Short: "Username", Optional: true, When: ProviderSMTP, EnvVar: "SMTP_USERNAME"},
			{Name: FieldPassword, Label: "Password", Secret: true, Optional: true, When: ProviderSMTP, EnvVar: "SMTP_PASSWORD",
				Hint: "Needed with a username."},
			{Name: FieldTLS, Label: "Encryption", Short: "Encryption", When: ProviderSMTP, EnvVar: "SMTP_TLS", Choices: []integrations.Choice{
				{Value: TLSStartTLS, Label: "STARTTLS (port 587)"}, {Value: TLSImplicit, Label: "TLS (port 465)"}, {Value: TLSNone, Label: "None (local relays only)"},
			}},
		},
		Page: &integrations.Page{Href: "/email", Title: "Email",
			Description: "Send a test email through the provider you connected."},
	}
}

// Env returns the environment's credentials.
func (i *Integration) Env() integrations.Values { return i.env }

// Stub returns the development stand-in's credentials: emails go to an
// outbox in the database, never out.
func (i *Integration) Stub() integrations.Values {
	return integrations.Values{FieldProvider: ProviderStub, FieldFrom: "Ava (stub) <stub@ava.invalid>"}
}

// Upstream is the breaker the connection's calls go through.
func (i *Integration) Upstream(conn integrations.Resolved) string {
	switch conn.Values[FieldProvider] {
	case ProviderResend:
		return ProviderResend
	case ProviderSMTP:
		return ProviderSMTP + ":" + Server(smtpConfig(conn.Values))
	}
	return ""
}

func smtpConfig(v integrations.Values) SMTPConfig {
	port, _ := strconv.Atoi(v[FieldPort])
	return SMTPConfig{Host: v[FieldHost], Port: port, Username: v[FieldUsername], Password: v[FieldPassword], TLS: v[FieldTLS]}
}

// checkFrom refuses a sender that is not one address ("Name <a@b>" allowed).
func checkFrom(from string) error {
	if _, err := mail.ParseAddress(from); err != nil || strings.ContainsAny(from, "\r\n") {
		return services.FieldError(FieldFrom, "from must be an email address, like ava@example.com or Ava <ava@example.com>.")
	}
	return nil
}

// Check verifies the provider's credentials without sending anything:
// Resend lists the domains (a sending-only key is accepted); SMTP connects,
// says EHLO, starts TLS as chosen, signs in when a username is given, and
// quits.
func (i *Integration) Check(ctx context.Context, v integrations.Values) (integrations.Values, error) {
	if err := checkFrom(v[FieldFrom]); err != nil {
		return nil, err
	}
	if v[FieldProvider] == ProviderResend {
		err := i.resend.CheckKey(ctx, v[FieldAPIKey])
		var re *ResendError
		switch {
		case err == nil:
			return v, nil
		case errors.As(err, &re) && (re.Status == http.StatusUnauthorized || re.Status == http.StatusForbidden):
			return nil, services.FieldError(FieldAPIKey, "Resend refused %s", resendSays("the API key", re))
		default:
			return nil, i.translate(err, ProviderResend)
		}
	}
	cfg := smtpConfig(v)
	switch {
	case cfg.Port < 1 || cfg.Port > 65535:
		return nil, services.FieldError(FieldPort, "port must be from 1 to 65535 (usually 587 for STARTTLS, 465 for TLS).")
	case strings.ContainsAny(cfg.Host, " /@") || strings.Contains(cfg.Host, ":") && net.ParseIP(cfg.Host) == nil:
		return nil, services.FieldError(FieldHost, "host must be a host name or an IP address, like smtp.example.com.")
	case cfg.Username != "" && cfg.Password == "":
		return nil, services.FieldError(FieldPassword, "password is required with a username.")
	case cfg.Username != "" && cfg.TLS == TLSNone:
		return nil, services.FieldError(FieldTLS, "tls must be starttls or tls to sign in: the password would cross the network in clear.")
	}
	err := i.smtp.Check.Check(ctx, cfg)
	var se *SMTPError
	var open *upstream.OpenError
	switch {
	case err == nil:
		return v, nil
	case errors.As(err, &open):
		return nil, i.translate(err, ProviderSMTP)
	case errors.As(err, &se) && se.Stage == StageAuth:
		return nil, services.FieldError(FieldPassword, "%s", se.Message)
	case errors.As(err, &se) && se.Stage == StageTLS:
		return nil, services.FieldError(FieldTLS, "%s", se.Message)
	case errors.As(err, &se):
		return nil, services.FieldError(FieldHost, "%s", se.Message)
	default:
		return nil, services.FieldError(FieldHost, "Could not reach an SMTP server at %s: %s.",
			net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), reason(err, i.timeout))
	}
}

// resendSays is what Resend said about what it refused, in its words:
// "the API key (invalid_api_key): API key is invalid."
func resendSays(what string, re *ResendError) string {
	if re.Name != "" {
		what += " (" + re.Name + ")"
	}
	msg := re.Message
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return what + ": " + msg
}

// reason is a network error in a few words, without Go's wrapping.
func reason(err error, timeout time.Duration) string {
	var op *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer within " + timeout.String()
	case errors.As(err, &op) && op.Err != nil:
		return strings.TrimPrefix(op.Err.Error(), "connect: ")
	}
	return "the connection failed"
}

// Test checks the credentials in use the way Check does, and says so.
func (i *Integration) Test(ctx context.Context, conn integrations.Resolved) (string, error) {
	switch conn.Values[FieldProvider] {
	case ProviderStub:
		return "Connected to the stub: test emails go to the outbox on the Email page, nothing is delivered.", nil
	case ProviderResend:
		if err := i.resend.CheckKey(ctx, conn.Values[FieldAPIKey]); err != nil {
			return "", i.translate(err, ProviderResend)
		}
		return "Connected: Resend accepts this API key.", nil
	default:
		cfg := smtpConfig(conn.Values)
		if err := i.smtp.Send.Check(ctx, cfg); err != nil {
			return "", i.translate(err, ProviderSMTP)
		}
		return fmt.Sprintf("Connected: the SMTP server at %s answered (%s).", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), cfg.TLS), nil
	}
}

// translate turns a failed provider call into the console's error: the
// provider's own words, our 429 for its rate limits, 502/503/504 for
// trouble on the way.
func (i *Integration) translate(err error, provider string) error {
	var re *ResendError
	var se *SMTPError
	switch {
	case errors.As(err, &re):
		switch {
		case re.Status == http.StatusTooManyRequests:
			return upstream.StatusError("Resend", re.Status, strings.TrimSuffix(re.Message, "."), re.RetryAfter, err)
		case re.Status == http.StatusUnauthorized || re.Status == http.StatusForbidden && re.Name == "invalid_api_key":
			return &services.Error{Code: services.EUPSTREAM, Err: err,
				Message: "Resend refused " + resendSays("the API key", re) + " Update the credentials on the Integrations page."}
		case re.Status >= 500:
			return upstream.StatusError("Resend", re.Status, strings.TrimSuffix(re.Message, "."), 0, err)
		default:
			return &services.Error{Code: services.EUPSTREAM, Err: err, Message: "Resend refused " + resendSays("the email", re)}
		}
	case errors.As(err, &se):
		// The sender's messages are sentences that name the SMTP server.
		return &services.Error{Code: services.EUPSTREAM, Err: err, Message: se.Message}
	case provider == ProviderResend:
		return upstream.Error("Resend", i.timeout, err)
	default:
		return upstream.Error("The SMTP server", i.timeout, err)
	}
}
