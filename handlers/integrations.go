package handlers

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/ava/console/components"
	"github.com/ava/console/services"
	"github.com/ava/console/services/integrations"
)

// IntegrationStatuses reports the live status of each integration.
type IntegrationStatuses interface {
	Statuses(ctx context.Context, accountID int64) ([]integrations.Status, error)
	Status(ctx context.Context, accountID int64, name string) (integrations.Status, error)
}

// integrationLabels are the integrations' display names.
var integrationLabels = map[string]string{
	services.IntegrationVapi:     "Vapi",
	services.IntegrationTwilio:   "Twilio",
	services.IntegrationEmail:    "Email (Resend)",
	services.IntegrationCalendar: "Google Calendar",
}

type integrationCard struct {
	Status integrations.Status
	Label  string
	// Form is the connect form's state after a refused save.
	Form connectForm
	CSRF string
}

type connectForm struct {
	AssistantID string
	AccountSID  string
	APIKeySID   string
	Error       string
	Field       string
	Saved       bool
}

type integrationsPage struct {
	Cards []integrationCard
}

// integrationsShow lists every integration with its status; Vapi can be
// connected here.
func (h *Handlers) integrationsShow(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	statuses, err := h.integrations.Statuses(c.UserContext(), u.AccountID)
	if err != nil {
		return err
	}
	p := integrationsPage{}
	for _, st := range statuses {
		p.Cards = append(p.Cards, integrationCard{Status: st, Label: integrationLabels[st.Name], CSRF: csrfToken(c)})
	}
	return h.renderPage(c, "integrations", "Integrations", "integrations", p)
}

// vapiConnect checks and stores the account's Vapi credentials from the form.
// The card comes back with the new status, or with Vapi's reason.
func (h *Handlers) vapiConnect(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	form := connectForm{AssistantID: c.FormValue("assistant_id")}
	_, _, err := h.vapi.Connect(c.UserContext(), u.AccountID, c.FormValue("api_key"), form.AssistantID)
	return h.answerConnect(c, services.IntegrationVapi, form, err, "Vapi connected")
}

// answerConnect answers a connect form after the provider was asked: back to
// the page (no htmx) or the card with the new status and a toast on success;
// the card with the form as typed (secrets excepted) and the reason otherwise.
func (h *Handlers) answerConnect(c *fiber.Ctx, name string, form connectForm, err error, savedToast string) error {
	switch code := services.ErrorCode(err); {
	case err == nil:
		if !isHTMX(c) {
			return c.Redirect("/integrations", fiber.StatusSeeOther)
		}
		form = connectForm{Saved: true}
	case code == services.EINTERNAL:
		return err
	default:
		var e *services.Error
		if errors.As(err, &e) {
			form.Field = e.Field
		}
		form.Error = services.ErrorMessage(err)
		c.Status(statusOf(code))
	}
	return h.renderIntegrationCard(c, name, form, err == nil, savedToast)
}

// vapiTest checks the credentials in use and reports the result in place.
func (h *Handlers) vapiTest(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	name, err := h.vapi.Test(c.UserContext(), u.AccountID)
	if err != nil {
		if services.ErrorCode(err) == services.EINTERNAL {
			return err
		}
		appErr := asAppError(err)
		c.Status(statusOf(appErr.Code))
		return renderComponent(c, components.TestResult(false, "Connection failed: "+services.ErrorMessage(err)))
	}
	return renderComponent(c,
		components.TestResult(true, "Connected: Vapi answered with assistant "+name+"."),
		components.ToastOOB(components.ToastSuccess, "Vapi connection works"))
}

// integrationJSON is an integration's status in the JSON API.
type integrationJSON struct {
	Name             string            `json:"name"`
	Configured       bool              `json:"configured"`
	CredentialSource *string           `json:"credential_source"`
	Credentials      map[string]string `json:"credentials"`
	BreakerState     string            `json:"breaker_state"`
	LastError        *lastErrorJSON    `json:"last_error"`
	LastSuccessAt    *string           `json:"last_success_at"`
}

type lastErrorJSON struct {
	Message string `json:"message"`
	At      string `json:"at"`
}

func toIntegrationJSON(st integrations.Status) integrationJSON {
	out := integrationJSON{Name: st.Name, Configured: st.Configured, Credentials: st.Hints, BreakerState: st.BreakerState}
	if out.Credentials == nil {
		out.Credentials = map[string]string{}
	}
	if st.Source != "" {
		src := st.Source
		out.CredentialSource = &src
	}
	if st.LastErrorAt != nil {
		out.LastError = &lastErrorJSON{Message: st.LastError, At: st.LastErrorAt.UTC().Format(timeFormat)}
	}
	if st.LastOKAt != nil {
		at := st.LastOKAt.UTC().Format(timeFormat)
		out.LastSuccessAt = &at
	}
	return out
}

// apiIntegrations is GET /api/v1/integrations.
func (h *Handlers) apiIntegrations(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	statuses, err := h.integrations.Statuses(c.UserContext(), u.AccountID)
	if err != nil {
		return err
	}
	out := struct {
		Integrations []integrationJSON `json:"integrations"`
	}{Integrations: []integrationJSON{}}
	for _, st := range statuses {
		out.Integrations = append(out.Integrations, toIntegrationJSON(st))
	}
	return c.JSON(out)
}

// apiVapiCredentials is PUT /api/v1/integrations/vapi/credentials.
func (h *Handlers) apiVapiCredentials(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	ctx := c.UserContext()
	var body struct {
		APIKey      string `json:"api_key"`
		AssistantID string `json:"assistant_id"`
	}
	if err := json.Unmarshal(c.Body(), &body); err != nil {
		return services.FieldError("api_key", `The body must be a JSON object: {"api_key": "...", "assistant_id": "..."}.`)
	}
	if _, _, err := h.vapi.Connect(ctx, u.AccountID, body.APIKey, body.AssistantID); err != nil {
		return err
	}
	st, err := h.integrations.Status(ctx, u.AccountID, services.IntegrationVapi)
	if err != nil {
		return err
	}
	return c.JSON(toIntegrationJSON(st))
}
