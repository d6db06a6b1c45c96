package handlers

import (
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ava/console/services"
	"github.com/ava/console/services/account"
)

type setupForm struct {
	Email       string
	Error       string
	Field       string
	MinPassword int
	MaxPassword int
}

func newSetupForm() setupForm {
	return setupForm{MinPassword: account.MinPasswordLen, MaxPassword: account.MaxPasswordLen}
}

// setupShow offers to create the owner account, only while none exists.
func (h *Handlers) setupShow(c *fiber.Ctx) error {
	needed, err := h.accounts.SetupNeeded(c.UserContext())
	if err != nil {
		return err
	}
	if !needed {
		return c.Redirect("/login", fiber.StatusSeeOther)
	}
	if err := h.formCSRF(c); err != nil {
		return err
	}
	return h.renderPage(c, "setup", "Create the owner account", "", newSetupForm())
}

// setupSubmit creates the owner account and signs them in.
func (h *Handlers) setupSubmit(c *fiber.Ctx) error {
	ctx := c.UserContext()
	form := newSetupForm()
	form.Email = c.FormValue("email")
	password := c.FormValue("password")
	if password != c.FormValue("password_confirm") {
		form.Error, form.Field = "The two passwords differ. Type the same password twice.", "password_confirm"
		c.Status(fiber.StatusUnprocessableEntity)
		return h.renderPage(c, "setup", "Create the owner account", "", form)
	}
	u, err := h.accounts.CreateOwner(ctx, form.Email, password, true)
	switch services.ErrorCode(err) {
	case "":
	case services.EINVALID:
		var e *services.Error
		if errors.As(err, &e) {
			form.Field = e.Field
		}
		form.Error = services.ErrorMessage(err)
		c.Status(fiber.StatusUnprocessableEntity)
		return h.renderPage(c, "setup", "Create the owner account", "", form)
	case services.ECONFLICT:
		// Someone finished setup first: the account exists, sign in instead.
		return c.Redirect("/login", fiber.StatusSeeOther)
	default:
		return err
	}
	h.log.InfoContext(ctx, "owner account created", "user_id", u.ID, "account_id", u.AccountID)
	if err := h.signIn(c, u); err != nil {
		return err
	}
	return c.Redirect("/", fiber.StatusSeeOther)
}

type loginForm struct {
	Email string
	Error string
}

func (h *Handlers) loginShow(c *fiber.Ctx) error {
	if _, ok := currentUser(c); ok {
		return c.Redirect("/", fiber.StatusSeeOther)
	}
	needed, err := h.accounts.SetupNeeded(c.UserContext())
	if err != nil {
		return err
	}
	if needed {
		return c.Redirect("/setup", fiber.StatusSeeOther)
	}
	if err := h.formCSRF(c); err != nil {
		return err
	}
	return h.renderPage(c, "login", "Sign in", "", loginForm{})
}

func (h *Handlers) loginSubmit(c *fiber.Ctx) error {
	ctx := c.UserContext()
	email := c.FormValue("email")
	u, err := h.accounts.Authenticate(ctx, email, c.FormValue("password"))
	if services.ErrorCode(err) == services.EUNAUTHORIZED {
		h.log.InfoContext(ctx, "sign-in refused")
		c.Status(fiber.StatusUnauthorized)
		return h.renderPage(c, "login", "Sign in", "", loginForm{Email: email, Error: services.ErrorMessage(err)})
	} else if err != nil {
		return err
	}
	if err := h.signIn(c, u); err != nil {
		return err
	}
	h.log.InfoContext(services.WithAccountID(ctx, u.AccountID), "signed in", "user_id", u.ID)
	return c.Redirect("/", fiber.StatusSeeOther)
}

// signIn starts a session for u, sets its cookie and drops the signed-out
// CSRF token: from now on the session's token is the one (a token seen
// before sign-in is not trusted after it).
func (h *Handlers) signIn(c *fiber.Ctx, u services.User) error {
	token, expires, err := h.accounts.StartSession(c.UserContext(), u.ID)
	if err != nil {
		return err
	}
	c.Cookie(h.sessionCookie(token, expires))
	h.dropFormCSRF(c)
	return nil
}

func (h *Handlers) sessionCookie(value string, expires time.Time) *fiber.Cookie {
	return &fiber.Cookie{
		Name: h.sessionCookieName(), Value: value, Path: "/", Expires: expires,
		HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode, Secure: h.cfg.Production,
	}
}

// logout ends the session and forgets the cookie; the session's CSRF token
// ends with it.
func (h *Handlers) logout(c *fiber.Ctx) error {
	if err := h.accounts.EndSession(c.UserContext(), c.Cookies(h.sessionCookieName())); err != nil {
		return err
	}
	c.Cookie(h.sessionCookie("", time.Unix(0, 0)))
	if isHTMX(c) {
		c.Set("HX-Redirect", "/login")
		return c.SendStatus(fiber.StatusNoContent)
	}
	return c.Redirect("/login", fiber.StatusSeeOther)
}
