package handlers

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ava/console/services"
)

type healthResponse struct {
	Status string `json:"status"`
}

// healthz says the process is alive and serving.
func (h *Handlers) healthz(c *fiber.Ctx) error {
	return c.JSON(healthResponse{Status: "ok"})
}

// readyz says whether the console can serve: its database answers.
func (h *Handlers) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	if err := h.db.Ping(ctx); err != nil {
		h.log.ErrorContext(ctx, "readiness check failed", "error", err)
		return &services.Error{Code: services.EUNAVAILABLE, Message: "The database does not answer.", RetryAfter: 5 * time.Second}
	}
	return c.JSON(healthResponse{Status: "ready"})
}
