package handlers

import (
	"time"

	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/ava/console/components"
	"github.com/ava/console/services/integrations"
	"github.com/ava/console/services/twilio"
)

// TwilioNumbers is what the handlers need of the Twilio service.
type TwilioNumbers interface {
	Connection(ctx context.Context, accountID int64) (integrations.Resolved, error)
	Numbers(ctx context.Context, accountID int64) ([]twilio.Number, error)
}

// twilioRoutes registers the phone numbers page, its fragment and API.
func (h *Handlers) twilioRoutes(r router, d policy) {
	r.get("/numbers", d, h.requirePage, h.numbersShow)
	r.get("/fragments/twilio/numbers", d, h.requirePage, h.numbersFragment)
	r.get("/api/v1/twilio/numbers", d, h.requireAPI, h.apiTwilioNumbers)
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
	// ReadAt is when Twilio listed them: the page refreshes on demand
	// (Refresh), never by polling Twilio.
	ReadAt time.Time
}

// numbersFragment lists the numbers, or says why there are none: Twilio not
// connected differs from a Twilio account without numbers.
func (h *Handlers) numbersFragment(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	numbers, err := h.twilio.Numbers(c.UserContext(), u.AccountID)
	switch {
	case integrations.IsNotConnected(err):
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
	return h.renderFragment(c, "fragments/numbers_list", numbersList{Numbers: numbers, ReadAt: time.Now()})
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
