package handlers

import (
	"github.com/gofiber/fiber/v2"

	"github.com/ava/console/services/integrations"
)

// oauthRoutes registers, for an integration connected through a consent,
// the POST that sends the owner to the provider and the callback the
// provider sends them back to.
func (h *Handlers) oauthRoutes(r router, d policy, spec integrations.Spec) {
	r.post(spec.OAuth.Connect, d, h.requirePage, func(c *fiber.Ctx) error { return h.oauthConnect(c, spec) })
	r.get(spec.OAuth.Callback, d, h.requirePage, func(c *fiber.Ctx) error { return h.oauthCallback(c, spec) })
}

// oauthBinding is what ties a connect to the browser session that started
// it: the session's CSRF token, derived from the session and from nothing
// a third party can send.
func oauthBinding(c *fiber.Ctx) string { return csrfToken(c) }

// oauthConnect starts the consent: 303 to the provider.
func (h *Handlers) oauthConnect(c *fiber.Ctx, spec integrations.Spec) error {
	u, _ := currentUser(c)
	to, err := h.integrations.BeginConnect(c.UserContext(), u.AccountID, spec.Name, oauthBinding(c))
	if err != nil {
		return err
	}
	h.log.InfoContext(c.UserContext(), "oauth connect started", "integration", spec.Name)
	return c.Redirect(to, fiber.StatusSeeOther)
}

// oauthCallback finishes the consent. Connected: to the integration's page
// with a toast. Cancelled at the provider: back to Integrations, saying so.
// A state that is forged, used or expired: an error page, and no call.
func (h *Handlers) oauthCallback(c *fiber.Ctx, spec integrations.Spec) error {
	u, _ := currentUser(c)
	ctx := c.UserContext()
	_, err := h.integrations.FinishConnect(ctx, u.AccountID, spec.Name, oauthBinding(c), integrations.Callback{
		State: c.Query("state"), Code: c.Query("code"), Error: c.Query("error"), ErrorDescription: c.Query("error_description"),
	})
	switch {
	case integrations.IsConsentDenied(err):
		h.log.InfoContext(ctx, "oauth consent refused by the owner", "integration", spec.Name)
		h.setFlash(c, flashConsentDenied(spec))
		return c.Redirect("/integrations", fiber.StatusSeeOther)
	case err != nil:
		return err
	}
	h.log.InfoContext(ctx, "integration connected", "integration", spec.Name)
	h.setFlash(c, flashConnected(spec))
	to := "/integrations"
	if spec.Page != nil {
		to = spec.Page.Href
	}
	return c.Redirect(to, fiber.StatusSeeOther)
}
