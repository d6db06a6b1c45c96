package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/ava/console/components"
	"github.com/ava/console/services"
	"github.com/ava/console/services/integrations"
)

// Integrations is what the handlers need of the integration registry.
type Integrations interface {
	Specs() []integrations.Spec
	Statuses(ctx context.Context, accountID int64) ([]integrations.Status, error)
	// Status returns ENOTFOUND for an unknown integration.
	Status(ctx context.Context, accountID int64, name string) (integrations.Status, error)
	// Connect returns EINVALID naming the field the rules or the provider
	// refused; nothing stored changes then.
	Connect(ctx context.Context, accountID int64, name string, values integrations.Values) (integrations.Resolved, error)
	// Test returns the provider's answer in a sentence, or why it failed.
	Test(ctx context.Context, accountID int64, name string) (string, error)
	// Disconnect returns ENOTFOUND when the account stored no credentials.
	Disconnect(ctx context.Context, accountID int64, name string) error
	// Changes returns the audit trail, newest first: of one integration,
	// or of every one when name is "".
	Changes(ctx context.Context, accountID int64, name string, limit int) ([]services.SettingChange, error)
	// BeginConnect starts an OAuth connect from the browser session bound
	// by binding and returns the provider's consent URL; FinishConnect
	// completes it with what the provider sent back.
	BeginConnect(ctx context.Context, accountID int64, name, binding string) (string, error)
	FinishConnect(ctx context.Context, accountID int64, name, binding string, cb integrations.Callback) (integrations.Resolved, error)
}

// integrationRoutes registers every integration's generic routes: the
// connect form (or, for OAuth integrations, the consent's two routes), Test
// connection and Disconnect on the Integrations page, and the credentials
// API.
func (h *Handlers) integrationRoutes(r router, d policy) {
	r.get("/integrations", d, h.requirePage, h.integrationsShow)
	r.get("/api/v1/integrations", d, h.requireAPI, h.apiIntegrations)
	for _, spec := range h.integrations.Specs() {
		name := spec.Name
		if spec.OAuth != nil {
			// Connected through a consent: no typed credentials.
			h.oauthRoutes(r, d, spec)
		} else {
			r.post("/integrations/"+name, d, h.requirePage, func(c *fiber.Ctx) error { return h.integrationConnect(c, spec) })
			r.put("/api/v1/integrations/"+name+"/credentials", d, h.requireAPI, func(c *fiber.Ctx) error { return h.apiCredentialsPut(c, spec) })
		}
		r.get("/fragments/integrations/"+name, d, h.requirePage, func(c *fiber.Ctx) error { return h.integrationCard(c, name, false) })
		r.get("/fragments/integrations/"+name+"/status", d, h.requirePage, func(c *fiber.Ctx) error { return h.integrationCard(c, name, true) })
		r.post("/integrations/"+name+"/test", d, h.requirePage, func(c *fiber.Ctx) error { return h.integrationTest(c, spec) })
		r.post("/integrations/"+name+"/disconnect", d, h.requirePage, func(c *fiber.Ctx) error { return h.integrationDisconnect(c, spec) })
		r.delete("/api/v1/integrations/"+name+"/credentials", d, h.requireAPI, func(c *fiber.Ctx) error { return h.apiCredentialsDelete(c, spec) })
	}
}

type integrationsPage struct {
	Cards []components.IntegrationCard
}

// integrationsShow lists every integration with its status and its
// connect form.
func (h *Handlers) integrationsShow(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	statuses, err := h.integrations.Statuses(c.UserContext(), u.AccountID)
	if err != nil {
		return err
	}
	p := integrationsPage{}
	for _, st := range statuses {
		p.Cards = append(p.Cards, components.IntegrationCard{Status: st, CSRF: csrfToken(c)})
	}
	return h.renderPage(c, "integrations", "Integrations", "integrations", p)
}

// integrationCard is an integration's card, or only its live part
// (status): what a reconnecting Integrations page fetches again (GET
// /events sends the same on each change). The page skips the whole card
// while the owner has typed into its form; the status part has no fields.
func (h *Handlers) integrationCard(c *fiber.Ctx, name string, statusOnly bool) error {
	u, _ := currentUser(c)
	st, err := h.integrations.Status(c.UserContext(), u.AccountID, name)
	if err != nil {
		return err
	}
	card := components.IntegrationCard{Status: st, CSRF: csrfToken(c)}
	if statusOnly {
		return renderComponent(c, components.IntegrationStatusView(card))
	}
	return renderComponent(c, components.IntegrationCardView(card))
}

// formValues reads a spec's fields from the submitted form.
func formValues(c *fiber.Ctx, spec integrations.Spec) integrations.Values {
	v := integrations.Values{}
	for _, f := range spec.Fields {
		if s := c.FormValue(f.Name); s != "" {
			v[f.Name] = s
		}
	}
	return v
}

// integrationConnect checks and stores the account's credentials from the
// card's form. The card comes back with the new status and a toast, or with
// what was typed (secrets excepted) and the provider's reason.
func (h *Handlers) integrationConnect(c *fiber.Ctx, spec integrations.Spec) error {
	u, _ := currentUser(c)
	ctx := c.UserContext()
	values := formValues(c, spec)
	_, err := h.integrations.Connect(ctx, u.AccountID, spec.Name, values)
	form := components.CardForm{}
	switch code := services.ErrorCode(err); {
	case err == nil:
		h.log.InfoContext(ctx, "integration connected", "integration", spec.Name)
		if !isHTMX(c) {
			return c.Redirect("/integrations", fiber.StatusSeeOther)
		}
	case code == services.EINTERNAL:
		return err
	default:
		var e *services.Error
		if errors.As(err, &e) {
			form.Field = e.Field
		}
		form.Values, form.Error = values, services.ErrorMessage(err)
		c.Status(statusOf(code))
	}
	if err := h.renderCard(c, spec, form); err != nil {
		return err
	}
	if err == nil {
		return toast(c, components.ToastSuccess, spec.Label+" connected")
	}
	return nil
}

// integrationDisconnect removes the account's own credentials.
func (h *Handlers) integrationDisconnect(c *fiber.Ctx, spec integrations.Spec) error {
	u, _ := currentUser(c)
	if err := h.integrations.Disconnect(c.UserContext(), u.AccountID, spec.Name); err != nil {
		return err
	}
	if !isHTMX(c) {
		return c.Redirect("/integrations", fiber.StatusSeeOther)
	}
	if err := h.renderCard(c, spec, components.CardForm{}); err != nil {
		return err
	}
	return toast(c, components.ToastSuccess, spec.Label+" disconnected")
}

// renderCard answers a card's form: the card with the current status, as a
// fragment or, without htmx, as the page.
func (h *Handlers) renderCard(c *fiber.Ctx, spec integrations.Spec, form components.CardForm) error {
	u, _ := currentUser(c)
	st, err := h.integrations.Status(c.UserContext(), u.AccountID, spec.Name)
	if err != nil {
		return err
	}
	card := components.IntegrationCard{Status: st, Form: form, CSRF: csrfToken(c)}
	if !isHTMX(c) {
		return h.renderPage(c, "integrations", "Integrations", "integrations", integrationsPage{Cards: []components.IntegrationCard{card}})
	}
	return renderComponent(c, components.IntegrationCardView(card))
}

// integrationTest checks the credentials in use and reports the result in place.
func (h *Handlers) integrationTest(c *fiber.Ctx, spec integrations.Spec) error {
	u, _ := currentUser(c)
	msg, err := h.integrations.Test(c.UserContext(), u.AccountID, spec.Name)
	if err != nil {
		appErr := asAppError(err)
		if appErr.Code == services.EINTERNAL {
			return err
		}
		if appErr.RetryAfter > 0 {
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(retrySeconds(appErr.RetryAfter)))
		}
		c.Status(statusOf(appErr.Code))
		return renderComponent(c, components.TestResult(false, "Connection failed: "+services.ErrorMessage(err)))
	}
	return renderComponent(c,
		components.TestResult(true, msg),
		components.ToastOOB(components.ToastSuccess, spec.Label+" connection works"))
}

// integrationJSON is an integration's status in the JSON API.
type integrationJSON struct {
	Name             string            `json:"name"`
	Label            string            `json:"label"`
	Configured       bool              `json:"configured"`
	CredentialSource *string           `json:"credential_source"`
	Credentials      map[string]string `json:"credentials"`
	BreakerState     string            `json:"breaker_state"`
	LastError        *lastErrorJSON    `json:"last_error"`
	LastSuccessAt    *string           `json:"last_success_at"`
	// NeedsReconnect, for integrations connected through a consent, says
	// why the grant no longer works; null while it does.
	NeedsReconnect *string `json:"needs_reconnect"`
}

type lastErrorJSON struct {
	Message string `json:"message"`
	At      string `json:"at"`
}

func toIntegrationJSON(st integrations.Status) integrationJSON {
	out := integrationJSON{Name: st.Spec.Name, Label: st.Spec.Label, Configured: st.Configured, Credentials: st.Hints, BreakerState: st.BreakerState}
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
	if st.NeedsReconnect != "" {
		reason := st.NeedsReconnect
		out.NeedsReconnect = &reason
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

// apiCredentialsPut is PUT /api/v1/integrations/{name}/credentials: a JSON
// object of the spec's fields (strings; numbers for number fields).
func (h *Handlers) apiCredentialsPut(c *fiber.Ctx, spec integrations.Spec) error {
	u, _ := currentUser(c)
	ctx := c.UserContext()
	values, err := decodeCredentials(c.Body(), spec)
	if err != nil {
		return err
	}
	if _, err := h.integrations.Connect(ctx, u.AccountID, spec.Name, values); err != nil {
		return err
	}
	st, err := h.integrations.Status(ctx, u.AccountID, spec.Name)
	if err != nil {
		return err
	}
	return c.JSON(toIntegrationJSON(st))
}

// apiCredentialsDelete is DELETE /api/v1/integrations/{name}/credentials:
// the account's own credentials go; the status that remains is returned
// (the environment's credentials may still serve it).
func (h *Handlers) apiCredentialsDelete(c *fiber.Ctx, spec integrations.Spec) error {
	u, _ := currentUser(c)
	ctx := c.UserContext()
	if err := h.integrations.Disconnect(ctx, u.AccountID, spec.Name); err != nil {
		return err
	}
	st, err := h.integrations.Status(ctx, u.AccountID, spec.Name)
	if err != nil {
		return err
	}
	return c.JSON(toIntegrationJSON(st))
}

// decodeCredentials reads a credentials body strictly: a JSON object whose
// members are the spec's fields, each a string (or a number, for number
// fields). Anything else is refused naming the member.
func decodeCredentials(body []byte, spec integrations.Spec) (integrations.Values, error) {
	shape := strictBody{
		notObject: fmt.Sprintf("The body must be a JSON object with %s's credential fields: %s.", spec.Label, fieldNames(spec)),
		takes:     fmt.Sprintf("%s takes %s.", spec.Label, fieldNames(spec)),
	}
	for _, f := range spec.Fields {
		shape.fields = append(shape.fields, f.Name)
	}
	if len(spec.Fields) > 0 {
		shape.first = spec.Fields[0].Name
	}
	raw, err := shape.decode(body)
	if err != nil {
		return nil, err
	}
	values := integrations.Values{}
	for name, v := range raw {
		f, _ := spec.Field(name)
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			values[name] = s
			continue
		}
		var n json.Number
		if f.Number && json.Unmarshal(v, &n) == nil {
			values[name] = n.String()
			continue
		}
		if string(v) == "null" {
			continue
		}
		kind := "a string"
		if f.Number {
			kind = "a number"
		}
		return nil, services.FieldError(name, "%s must be %s.", name, kind)
	}
	return values, nil
}

func fieldNames(spec integrations.Spec) string {
	names := make([]string, 0, len(spec.Fields))
	for _, f := range spec.Fields {
		names = append(names, f.Name)
	}
	return strings.Join(names, ", ")
}
