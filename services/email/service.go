package email

import (
	"context"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ava/console/services"
	"github.com/ava/console/services/integrations"
)

// Bounds of a test email.
const (
	MaxSubject = 200
	MaxText    = 10000
)

// Connections runs calls with an account's credentials and records their
// outcome (the integration registry).
type Connections interface {
	Resolve(ctx context.Context, accountID int64, name string) (integrations.Resolved, error)
	Use(ctx context.Context, accountID int64, name string, fn func(ctx context.Context, conn integrations.Resolved) error) error
}

// OutboxStore keeps what the development stub "sent".
type OutboxStore interface {
	AddOutboxEmail(ctx context.Context, e services.OutboxEmail) error
	OutboxEmails(ctx context.Context, accountID int64, limit int) ([]services.OutboxEmail, error)
}

// Receipt is what a send answers: the provider's id of the message.
type Receipt struct {
	ID       string
	Provider string
	To       string
}

// Service sends an account's test emails.
type Service struct {
	email  *Integration
	creds  Connections
	outbox OutboxStore
	now    func() time.Time
}

// NewService returns the email service.
func NewService(email *Integration, creds Connections, outbox OutboxStore) *Service {
	return &Service{email: email, creds: creds, outbox: outbox, now: time.Now}
}

// Connection returns the account's resolved Email credentials (masked
// hints, source), whether configured or not.
func (s *Service) Connection(ctx context.Context, accountID int64) (integrations.Resolved, error) {
	return s.creds.Resolve(ctx, accountID, Name)
}

// ValidateTest checks a test email before any call: one address in to, a
// subject of 1-200 characters on one line, a text of 1-10000 characters.
// Returns EINVALID naming the field.
func ValidateTest(to, subject, text string) (string, error) {
	to = strings.TrimSpace(to)
	list, err := mail.ParseAddressList(to)
	switch {
	case to == "":
		return "", services.FieldError("to", "to is required: the address to send the test email to.")
	case err != nil || strings.ContainsAny(to, "\r\n"):
		return "", services.FieldError("to", "to must be one email address, like someone@example.com.")
	case len(list) != 1:
		return "", services.FieldError("to", "to must be one email address, not %d.", len(list))
	}
	n := utf8.RuneCountInString(strings.TrimSpace(subject))
	switch {
	case n == 0:
		return "", services.FieldError("subject", "subject is required: 1 to %d characters.", MaxSubject)
	case n > MaxSubject:
		return "", services.FieldError("subject", "subject must be 1 to %d characters (it has %d).", MaxSubject, n)
	case strings.ContainsAny(subject, "\r\n"):
		return "", services.FieldError("subject", "subject must be one line.")
	}
	n = utf8.RuneCountInString(text)
	switch {
	case strings.TrimSpace(text) == "":
		return "", services.FieldError("text", "text is required: 1 to %d characters.", MaxText)
	case n > MaxText:
		return "", services.FieldError("text", "text must be 1 to %d characters (it has %d).", MaxText, n)
	}
	return list[0].Address, nil
}

// SendTest sends a test email from the account's sender through its
// provider (or into the stub's outbox).
func (s *Service) SendTest(ctx context.Context, accountID int64, to, subject, text string) (Receipt, error) {
	addr, err := ValidateTest(to, subject, text)
	if err != nil {
		return Receipt{}, err
	}
	var r Receipt
	err = s.creds.Use(ctx, accountID, Name, func(ctx context.Context, conn integrations.Resolved) error {
		m := Message{
			From: conn.Values[FieldFrom], To: addr, Subject: strings.TrimSpace(subject), Text: text,
			CorrelationID: services.CorrelationID(ctx), IdempotencyKey: uuid.NewString(),
		}
		provider := conn.Values[FieldProvider]
		r = Receipt{Provider: provider, To: addr}
		var sent Sent
		var err error
		switch provider {
		case ProviderStub:
			sent.ID = "stub-" + uuid.NewString()
			if err := s.outbox.AddOutboxEmail(ctx, services.OutboxEmail{
				AccountID: accountID, MessageID: sent.ID, From: m.From, To: m.To, Subject: m.Subject, Text: m.Text, SentAt: s.now(),
			}); err != nil {
				return services.Internal(err)
			}
		case ProviderResend:
			sent, err = s.email.resend.Send(ctx, conn.Values[FieldAPIKey], m)
		default:
			sent, err = s.email.smtp.Send.Send(ctx, smtpConfig(conn.Values), m)
		}
		if err != nil {
			return s.email.translate(err, provider)
		}
		r.ID = sent.ID
		return nil
	})
	return r, err
}

// Outbox returns the stub's latest emails for the account, newest first.
func (s *Service) Outbox(ctx context.Context, accountID int64, limit int) ([]services.OutboxEmail, error) {
	out, err := s.outbox.OutboxEmails(ctx, accountID, limit)
	if err != nil {
		return nil, services.Internal(err)
	}
	return out, nil
}
