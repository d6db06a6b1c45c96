package handlers

import (
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/ava/console/components"
	"github.com/ava/console/services"
	"github.com/ava/console/services/account"
)

// tokensPage is the tokens page's create form and its outcome.
type tokensPage struct {
	CSRF    string
	MaxName int
	Result  *tokenResult
	// Input is the name as typed, kept when it was refused.
	Input string
}

// tokenResult is the outcome of creating a token: the token, shown once, or
// why it was refused.
type tokenResult struct {
	Name  string
	Token string
	Error string
}

type tokenList struct {
	Tokens []services.APIToken
	CSRF   string
}

func (h *Handlers) tokensShow(c *fiber.Ctx) error {
	return h.renderPage(c, "tokens", "API tokens", "tokens", tokensPage{CSRF: csrfToken(c), MaxName: account.MaxTokenName})
}

// tokenList is the fragment listing the owner's tokens.
func (h *Handlers) tokenList(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	tokens, err := h.accounts.Tokens(c.UserContext(), u.ID)
	if err != nil {
		return err
	}
	return h.renderFragment(c, "fragments/token_list", tokenList{Tokens: tokens, CSRF: csrfToken(c)})
}

// tokenCreate creates a token and shows it once: as a fragment with a toast
// for htmx, as the whole page otherwise.
func (h *Handlers) tokenCreate(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	ctx := c.UserContext()
	name := c.FormValue("name")
	plain, t, err := h.accounts.CreateToken(ctx, u.ID, name)
	result := &tokenResult{Name: t.Name, Token: plain}
	switch services.ErrorCode(err) {
	case "":
		h.log.InfoContext(ctx, "api token created", "token_id", t.ID)
	case services.EINVALID:
		result = &tokenResult{Error: services.ErrorMessage(err)}
		c.Status(fiber.StatusUnprocessableEntity)
	default:
		return err
	}
	view := tokensPage{CSRF: csrfToken(c), MaxName: account.MaxTokenName, Result: result, Input: name}
	if !isHTMX(c) {
		return h.renderPage(c, "tokens", "API tokens", "tokens", view)
	}
	if err := h.renderFragment(c, "fragments/token_create", view); err != nil {
		return err
	}
	if result.Error != "" {
		return nil
	}
	c.Set("HX-Trigger", "tokens-changed")
	return toast(c, components.ToastSuccess, "Token created")
}

// tokenRevoke revokes one of the owner's tokens.
func (h *Handlers) tokenRevoke(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	ctx := c.UserContext()
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil {
		return services.Errorf(services.ENOTFOUND, "API token not found.")
	}
	t, err := h.accounts.RevokeToken(ctx, u.ID, id)
	if err != nil {
		return err
	}
	h.log.InfoContext(ctx, "api token revoked", "token_id", t.ID)
	if !isHTMX(c) {
		return c.Redirect("/tokens", fiber.StatusSeeOther)
	}
	if err := h.tokenList(c); err != nil {
		return err
	}
	return toast(c, components.ToastSuccess, "Token revoked")
}
