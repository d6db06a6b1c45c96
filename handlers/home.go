package handlers

import "github.com/gofiber/fiber/v2"

type homePage struct {
	Sections []Section
}

// home lists the console's sections with their states.
func (h *Handlers) home(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	sections, err := h.sections(c.UserContext(), u)
	if err != nil {
		return err
	}
	return h.renderPage(c, "home", "Home", "home", homePage{Sections: sections})
}
