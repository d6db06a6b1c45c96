package handlers

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ava/console/components"
	"github.com/ava/console/services/integrations"
)

// A flash is a toast for the page a redirect leads to (the end of an OAuth
// connect): its key travels in a short-lived cookie, the next page shows
// the message the key names and clears the cookie. Only keys known here are
// shown, so the cookie cannot carry words of its own.

const flashCookie = "ava_flash"

type flash struct {
	key, kind, message string
}

func flashConnected(spec integrations.Spec) flash {
	return flash{key: spec.Name + "-connected", kind: components.ToastSuccess, message: spec.Label + " connected"}
}

func flashConsentDenied(spec integrations.Spec) flash {
	return flash{key: spec.Name + "-denied", kind: components.ToastError,
		message: spec.Label + " was not connected: access was not allowed at the provider."}
}

// flashes are every flash a page may show, by key.
func flashes(specs []integrations.Spec) map[string]flash {
	out := map[string]flash{}
	for _, s := range specs {
		if s.OAuth != nil {
			for _, f := range []flash{flashConnected(s), flashConsentDenied(s)} {
				out[f.key] = f
			}
		}
	}
	return out
}

func (h *Handlers) setFlash(c *fiber.Ctx, f flash) {
	c.Cookie(&fiber.Cookie{
		Name: flashCookie, Value: f.key, Path: "/", MaxAge: 60, Expires: time.Now().Add(time.Minute),
		HTTPOnly: true, Secure: h.cfg.Production, SameSite: fiber.CookieSameSiteLaxMode,
	})
}

// takeFlash returns the pending flash, if any, and clears it.
func (h *Handlers) takeFlash(c *fiber.Ctx) (flash, bool) {
	key := c.Cookies(flashCookie)
	if key == "" {
		return flash{}, false
	}
	c.Cookie(&fiber.Cookie{
		Name: flashCookie, Value: "", Path: "/", MaxAge: -1, Expires: time.Unix(0, 0),
		HTTPOnly: true, Secure: h.cfg.Production, SameSite: fiber.CookieSameSiteLaxMode,
	})
	f, ok := h.flashes[key]
	return f, ok
}
