package handlers

import (
	"context"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/ava/console/components"
	"github.com/ava/console/services"
	"github.com/ava/console/services/email"
	"github.com/ava/console/services/integrations"
)

// EmailSender is what the handlers need of the email service.
type EmailSender interface {
	Connection(ctx context.Context, accountID int64) (integrations.Resolved, error)
	// SendTest returns EINVALID naming the field before any call, ENOTFOUND
	// when Email is not connected, and the provider's refusal otherwise.
	SendTest(ctx context.Context, accountID int64, to, subject, text string) (email.Receipt, error)
	Outbox(ctx context.Context, accountID int64, limit int) ([]services.OutboxEmail, error)
}

// outboxSize is how many of the stub's emails the Email page lists.
const outboxSize = 20

// emailRoutes registers the Email page, its form and outbox, and the API.
func (h *Handlers) emailRoutes(r router, d policy) {
	r.get("/email", d, h.requirePage, h.emailShow)
	r.post("/email/test", d, h.requirePage, h.emailSendForm)
	r.get("/fragments/email/outbox", d, h.requirePage, h.emailOutbox)
	r.post("/api/v1/integrations/email/test", d, h.requireAPI, h.apiEmailTest)
}

type emailPage struct {
	Connection integrations.Resolved
	Form       components.EmailForm
}

// emailShow is the Email page: the connection, the test form and, with
// the stub, its outbox.
func (h *Handlers) emailShow(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	conn, err := h.email.Connection(c.UserContext(), u.AccountID)
	if err != nil {
		return err
	}
	return h.renderPage(c, "email", "Email", email.Name, emailPage{Connection: conn, Form: components.EmailForm{
		Subject: "Test email from Ava console", Text: "This is a test email sent from Ava console.", CSRF: csrfToken(c),
	}})
}

// emailSendForm sends the test email from the page's form. The form comes
// back with what was typed and what happened: sent (with a toast), the
// refused field, or the provider's reason with Try again.
func (h *Handlers) emailSendForm(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	ctx := c.UserContext()
	f := components.EmailForm{To: c.FormValue("to"), Subject: c.FormValue("subject"), Text: c.FormValue("text"), CSRF: csrfToken(c)}
	r, err := h.email.SendTest(ctx, u.AccountID, f.To, f.Subject, f.Text)
	code := services.ErrorCode(err)
	switch {
	case err == nil:
		h.log.InfoContext(ctx, "test email sent", "provider", r.Provider, "id", r.ID)
		if !isHTMX(c) {
			return c.Redirect("/email", fiber.StatusSeeOther)
		}
		f.Sent = fmt.Sprintf("Sent to %s through %s (id %s).", r.To, providerName(r.Provider), r.ID)
		c.Set("HX-Trigger", "email-sent")
	case !isHTMX(c) || code == services.EINTERNAL || code == services.ENOTFOUND || code == services.EFORBIDDEN:
		return err
	case code == services.EINVALID:
		appErr := asAppError(err)
		f.Error, f.Field = appErr.Message, appErr.Field
		c.Status(statusOf(code))
	default:
		appErr := asAppError(err)
		if appErr.RetryAfter > 0 {
			c.Set(fiber.HeaderRetryAfter, fmt.Sprint(retrySeconds(appErr.RetryAfter)))
		}
		f.Failed = &components.Alert{Title: "The test email was not sent", Message: services.ErrorMessage(err),
			Reference: services.CorrelationID(ctx), RetrySubmit: true}
		h.log.InfoContext(ctx, "test email not sent", "code", string(code), "reason", appErr.Message)
		c.Status(statusOf(code))
	}
	if err := renderComponent(c, components.EmailTestForm(f)); err != nil {
		return err
	}
	if err == nil {
		return toast(c, components.ToastSuccess, fmt.Sprintf("Test email sent to %s (id %s)", r.To, r.ID))
	}
	return nil
}

func providerName(p string) string {
	switch p {
	case email.ProviderResend:
		return "Resend"
	case email.ProviderSMTP:
		return "the SMTP server"
	}
	return "the stub"
}

// emailOutbox lists the stub's latest emails.
func (h *Handlers) emailOutbox(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	emails, err := h.email.Outbox(c.UserContext(), u.AccountID, outboxSize)
	if err != nil {
		return err
	}
	items := make([]components.OutboxItem, 0, len(emails))
	for _, e := range emails {
		items = append(items, components.OutboxItem{ID: e.MessageID, From: e.From, To: e.To, Subject: e.Subject, Text: e.Text, SentAt: e.SentAt})
	}
	return renderComponent(c, components.EmailOutbox(items))
}

// apiEmailTest is POST /api/v1/integrations/email/test.
func (h *Handlers) apiEmailTest(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	var body struct {
		To      string `json:"to"`
		Subject string `json:"subject"`
		Text    string `json:"text"`
	}
	if err := decodeStrict(c.Body(), &body, "to", `{"to": "...", "subject": "...", "text": "..."}`); err != nil {
		return err
	}
	r, err := h.email.SendTest(c.UserContext(), u.AccountID, body.To, body.Subject, body.Text)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"id": r.ID, "provider": r.Provider, "to": r.To})
}
