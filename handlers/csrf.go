package handlers

import (
	"crypto/subtle"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ava/console/services/account"
)

// CSRF protection that keeps nothing in memory and works on every instance
// sharing AVA_SECRET_KEY, also after a restart:
//
//   - signed in (identified by the session cookie), the token is derived
//     from the session (Accounts.CSRFToken);
//   - signed out (the sign-in and setup forms), it is a signed double-submit
//     token: the ava_csrf cookie (set only by the pages that render such a
//     form) and the form field or header must be equal and carry our
//     signature (Accounts.FormTokenIssued).
//
// The token comes from the X-CSRF-Token header (htmx: hx-headers on <body>)
// or the _csrf field of a form body, never from the query string. Calls to
// the JSON API with an API token carry no ambient credentials (identify
// ignores cookies for them), so there is nothing to forge: they skip it.

func (h *Handlers) csrfCookieName() string {
	if h.cfg.Production {
		return "__Host-ava_csrf" // the browser enforces Secure, Path=/ and no Domain
	}
	return "ava_csrf"
}

// checkCSRF puts the request's token in c.Locals(localCSRF) for the
// templates and refuses state-changing requests without a valid one.
func (h *Handlers) checkCSRF(c *fiber.Ctx) error {
	session, _ := c.Locals(localSession).(string)
	if apiBearer(c) != "" || session == "" && strings.HasPrefix(c.Path(), "/api/") {
		// No ambient credentials: nothing to forge. A call without any
		// gets its 401 (or 404, 405) from the route.
		return c.Next()
	}
	var want string
	if session != "" {
		want = h.accounts.CSRFToken(session)
	} else if cookie := c.Cookies(h.csrfCookieName()); cookie != "" {
		if _, ok := h.accounts.FormTokenIssued(cookie); ok {
			want = cookie
		}
	}
	if want != "" {
		c.Locals(localCSRF, want)
	}
	switch c.Method() {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions, fiber.MethodTrace:
		return c.Next()
	}
	got := submittedCSRF(c)
	if want == "" || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return errCSRF()
	}
	return c.Next()
}

// submittedCSRF is the token a request carries: the X-CSRF-Token header, or
// the _csrf field of a form body (url-encoded or multipart). The query
// string is never read.
func submittedCSRF(c *fiber.Ctx) string {
	if t := c.Get("X-CSRF-Token"); t != "" {
		return t
	}
	ct := strings.ToLower(c.Get(fiber.HeaderContentType))
	switch {
	case strings.HasPrefix(ct, fiber.MIMEApplicationForm):
		return string(c.Request().PostArgs().Peek("_csrf"))
	case strings.HasPrefix(ct, fiber.MIMEMultipartForm):
		form, err := c.Request().MultipartForm()
		if err != nil || len(form.Value["_csrf"]) == 0 {
			return ""
		}
		return form.Value["_csrf"][0]
	}
	return ""
}

// formCSRF makes sure a page rendering a signed-out form (sign-in, setup)
// has a token: the one of the request's cookie while it has at least half
// its life left (several open tabs share it), else a new one in a new
// cookie. Signed-in pages have the session's already.
func (h *Handlers) formCSRF(c *fiber.Ctx) error {
	if session, _ := c.Locals(localSession).(string); session != "" {
		return nil
	}
	if cookie := c.Cookies(h.csrfCookieName()); cookie != "" {
		if issued, ok := h.accounts.FormTokenIssued(cookie); ok && time.Since(issued) < account.FormTokenTTL/2 {
			return nil
		}
	}
	token, err := h.accounts.NewFormToken()
	if err != nil {
		return err
	}
	c.Cookie(h.formCSRFCookie(token, time.Now().Add(account.FormTokenTTL)))
	c.Locals(localCSRF, token)
	return nil
}

// dropFormCSRF forgets the signed-out token (at sign-in: from then on the
// session's token is the one).
func (h *Handlers) dropFormCSRF(c *fiber.Ctx) {
	if c.Cookies(h.csrfCookieName()) != "" {
		c.Cookie(h.formCSRFCookie("", time.Unix(0, 0)))
	}
}

func (h *Handlers) formCSRFCookie(value string, expires time.Time) *fiber.Cookie {
	return &fiber.Cookie{
		Name: h.csrfCookieName(), Value: value, Path: "/", Expires: expires,
		HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode, Secure: h.cfg.Production,
	}
}
