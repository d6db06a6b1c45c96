package handlers

import "github.com/gofiber/fiber/v2"

// meResponse is GET /api/v1/me: who the token or session belongs to.
type meResponse struct {
	ID        int64  `json:"id"`
	AccountID int64  `json:"account_id"`
	Email     string `json:"email"`
	CreatedAt string `json:"created_at"`
}

func (h *Handlers) apiMe(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	return c.JSON(meResponse{ID: u.ID, AccountID: u.AccountID, Email: u.Email, CreatedAt: u.CreatedAt.Format(timeFormat)})
}

// timeFormat is how the JSON API writes times (RFC 3339, UTC).
const timeFormat = "2006-01-02T15:04:05Z07:00"
