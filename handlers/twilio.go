package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/ava/console/components"
	"github.com/ava/console/services"
	"github.com/ava/console/services/integrations"
	"github.com/ava/console/services/twilio"
)

// TwilioNumbers is what the handlers need of the Twilio service.
type TwilioNumbers interface {
	Connection(ctx context.Context, accountID int64) (integrations.Resolved, error)
	Numbers(ctx context.Context, accountID int64) ([]twilio.Number, error)
	Connect(ctx context.Context, accountID int64, accountSID, secret, apiKeySID string) (integrations.Resolved, error)
	Test(ctx context.Context, accountID int64) (int, error)
}

type numbersPage struct {
	Connection integrations.Resolved
}

// numbersShow paints the phone numbers page; the list arrives as a fragment.
func (h *Handlers) numbersShow(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	conn, err := h.twilio.Connection(c.UserContext(), u.AccountID)
	if err != nil {
		return err
	}
	return h.renderPage(c, "numbers", "Phone numbers", "numbers", numbersPage{Connection: conn})
}

type numbersList struct {
	Numbers []twilio.Number
}

// numbersFragment lists the numbers, or says why there are none: Twilio not
// connected differs from a Twilio account without numbers.
func (h *Handlers) numbersFragment(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	numbers, err := h.twilio.Numbers(c.UserContext(), u.AccountID)
	switch {
	case errors.Is(err, twilio.ErrNotConnected):
		return renderComponent(c, components.EmptyStateLink(
			"Twilio is not connected",
			"Connect your Twilio account to see the phone numbers that ring your receptionist.",
			"/integrations", "Connect Twilio",
		))
	case err != nil:
		return err
	case len(numbers) == 0:
		return renderComponent(c, components.EmptyState(
			"No numbers on this Twilio account",
			"Buy or port a number in the Twilio console; it shows here as soon as Twilio lists it.",
		))
	}
	return h.renderFragment(c, "fragments/numbers_list", numbersList{Numbers: numbers})
}

// twilioConnect checks and stores the account's Twilio credentials from the form.
func (h *Handlers) twilioConnect(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	form := connectForm{AccountSID: c.FormValue("account_sid"), APIKeySID: c.FormValue("api_key_sid")}
	_, err := h.twilio.Connect(c.UserContext(), u.AccountID, form.AccountSID, c.FormValue("auth_token"), form.APIKeySID)
	return h.answerConnect(c, services.IntegrationTwilio, form, err, "Twilio connected")
}

// renderIntegrationCard answers a connect form: the card with the new status
// (and a toast on success), as a fragment or, without htmx, as the page.
func (h *Handlers) renderIntegrationCard(c *fiber.Ctx, name string, form connectForm, saved bool, savedToast string) error {
	u, _ := currentUser(c)
	ctx := c.UserContext()
	st, err := h.integrations.Status(ctx, u.AccountID, name)
	if err != nil {
		return err
	}
	card := integrationCard{Status: st, Label: integrationLabels[st.Name], Form: form, CSRF: csrfToken(c)}
	if !isHTMX(c) {
		return h.renderPage(c, "integrations", "Integrations", "integrations", integrationsPage{Cards: []integrationCard{card}})
	}
	if err := h.renderFragment(c, "fragments/integration_card", card); err != nil {
		return err
	}
	if saved {
		h.log.InfoContext(ctx, "integration connected", "integration", name)
		return toast(c, components.ToastSuccess, savedToast)
	}
	return nil
}

// twilioTest checks the credentials in use and reports the result in place.
func (h *Handlers) twilioTest(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	n, err := h.twilio.Test(c.UserContext(), u.AccountID)
	if err != nil {
		if services.ErrorCode(err) == services.EINTERNAL {
			return err
		}
		c.Status(statusOf(services.ErrorCode(err)))
		return renderComponent(c, components.TestResult(false, "Connection failed: "+services.ErrorMessage(err)))
	}
	return renderComponent(c,
		components.TestResult(true, fmt.Sprintf("Connected: Twilio lists %d phone number(s) on this account.", n)),
		components.ToastOOB(components.ToastSuccess, "Twilio connection works"))
}

type numberJSON struct {
	SID          string           `json:"sid"`
	PhoneNumber  string           `json:"phone_number"`
	FriendlyName string           `json:"friendly_name"`
	Capabilities capabilitiesJSON `json:"capabilities"`
}

type capabilitiesJSON struct {
	Voice bool `json:"voice"`
	SMS   bool `json:"sms"`
	MMS   bool `json:"mms"`
}

// apiTwilioNumbers is GET /api/v1/twilio/numbers.
func (h *Handlers) apiTwilioNumbers(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	numbers, err := h.twilio.Numbers(c.UserContext(), u.AccountID)
	if err != nil {
		return err
	}
	out := struct {
		Numbers []numberJSON `json:"numbers"`
	}{Numbers: []numberJSON{}}
	for _, n := range numbers {
		out.Numbers = append(out.Numbers, numberJSON{
			SID: n.SID, PhoneNumber: n.PhoneNumber, FriendlyName: n.FriendlyName,
			Capabilities: capabilitiesJSON{Voice: n.Voice, SMS: n.SMS, MMS: n.MMS},
		})
	}
	return c.JSON(out)
}

// apiTwilioCredentials is PUT /api/v1/integrations/twilio/credentials.
func (h *Handlers) apiTwilioCredentials(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	ctx := c.UserContext()
	var body struct {
		AccountSID string `json:"account_sid"`
		AuthToken  string `json:"auth_token"`
		APIKeySID  string `json:"api_key_sid"`
	}
	if err := json.Unmarshal(c.Body(), &body); err != nil {
		return services.FieldError("account_sid", `The body must be a JSON object: {"account_sid": "AC...", "auth_token": "..."} (and "api_key_sid": "SK..." when auth_token is an API key's secret).`)
	}
	if _, err := h.twilio.Connect(ctx, u.AccountID, body.AccountSID, body.AuthToken, body.APIKeySID); err != nil {
		return err
	}
	st, err := h.integrations.Status(ctx, u.AccountID, services.IntegrationTwilio)
	if err != nil {
		return err
	}
	return c.JSON(toIntegrationJSON(st))
}
