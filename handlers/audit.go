package handlers

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/ava/console/services"
)

// Bounds of GET /api/v1/audit's limit.
const (
	auditDefaultLimit = 50
	auditMaxLimit     = 200
)

// auditRoutes registers the audit trail's API.
func (h *Handlers) auditRoutes(r router, d policy) {
	r.get("/api/v1/audit", d, h.requireAPI, h.apiAudit)
}

// auditChangeJSON is one change of the audit trail in the JSON API. From
// and To are the values as stored: JSON (a string, a number...).
type auditChangeJSON struct {
	ID          int64           `json:"id"`
	At          string          `json:"at"`
	Actor       *string         `json:"actor"`
	Integration string          `json:"integration"`
	Key         string          `json:"key"`
	From        json.RawMessage `json:"from"`
	To          json.RawMessage `json:"to"`
}

// storedJSON is a value of the trail as JSON; one that is not (it never
// should be) goes out as a string.
func storedJSON(v string) json.RawMessage {
	if json.Valid([]byte(v)) {
		return json.RawMessage(v)
	}
	b, _ := json.Marshal(v)
	return b
}

// apiAudit is GET /api/v1/audit?integration=vapi&limit=50: the account's
// setting changes, newest first. Without integration, every integration's.
func (h *Handlers) apiAudit(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	name := c.Query("integration")
	if _, given := c.Queries()["integration"]; given {
		known := []string{}
		found := false
		for _, s := range h.integrations.Specs() {
			known = append(known, s.Name)
			found = found || s.Name == name
		}
		if !found {
			return services.FieldError("integration", "integration must be one of %s (got %q).", strings.Join(known, ", "), name)
		}
	}
	limit := auditDefaultLimit
	if v, given := c.Queries()["limit"]; given {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > auditMaxLimit {
			return services.FieldError("limit", "limit must be a whole number from 1 to %d (got %q).", auditMaxLimit, v)
		}
		limit = n
	}
	changes, err := h.integrations.Changes(c.UserContext(), u.AccountID, name, limit)
	if err != nil {
		return err
	}
	out := struct {
		Changes []auditChangeJSON `json:"changes"`
	}{Changes: make([]auditChangeJSON, 0, len(changes))}
	for _, ch := range changes {
		j := auditChangeJSON{
			ID: ch.ID, At: ch.ChangedAt.UTC().Format(timeFormat), Integration: ch.Integration, Key: ch.Key,
			From: storedJSON(ch.OldValue), To: storedJSON(ch.NewValue),
		}
		if ch.UserEmail != "" {
			email := ch.UserEmail
			j.Actor = &email
		}
		out.Changes = append(out.Changes, j)
	}
	return c.JSON(out)
}
