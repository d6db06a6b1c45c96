package handlers

import (
	"context"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ava/console/components"
	"github.com/ava/console/services"
	"github.com/ava/console/services/calendar"
	"github.com/ava/console/services/integrations"
)

// CalendarEvents is what the handlers need of the calendar service.
type CalendarEvents interface {
	Connection(ctx context.Context, accountID int64) (integrations.Resolved, error)
	// Events returns EINVALID naming days out of range, ENOTFOUND when
	// Calendar is not connected, and a needs-reconnect error
	// (integrations.IsNeedsReconnect) when Google no longer honours the grant.
	Events(ctx context.Context, accountID int64, days int) ([]calendar.Event, error)
}

// calendarRoutes registers the Calendar page, its fragment and the API.
func (h *Handlers) calendarRoutes(r router, d policy) {
	r.get("/calendar", d, h.requirePage, h.calendarShow)
	r.get("/fragments/calendar/events", d, h.requirePage, h.calendarFragment)
	r.get("/api/v1/integrations/calendar/google/events", d, h.requireAPI, h.apiCalendarEvents)
}

type calendarPage struct {
	Connection integrations.Resolved
	Status     integrations.Status
	CSRF       string
	Days       int
}

// calendarShow paints the Calendar page; the events arrive as a fragment.
func (h *Handlers) calendarShow(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	ctx := c.UserContext()
	conn, err := h.calendar.Connection(ctx, u.AccountID)
	if err != nil {
		return err
	}
	st, err := h.integrations.Status(ctx, u.AccountID, calendar.Name)
	if err != nil {
		return err
	}
	return h.renderPage(c, "calendar", "Calendar", calendar.Name, calendarPage{
		Connection: conn, Status: st, CSRF: csrfToken(c), Days: calendar.DefaultDays,
	})
}

// calendarDays reads ?days= (calendar.DefaultDays when absent).
func calendarDays(c *fiber.Ctx) (int, error) {
	v := c.Query("days")
	if v == "" {
		return calendar.DefaultDays, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < calendar.MinDays || n > calendar.MaxDays {
		return 0, services.FieldError("days", "days must be a whole number from %d to %d.", calendar.MinDays, calendar.MaxDays)
	}
	return n, nil
}

// calendarFragment lists the events by day, or says why there are none:
// not connected, needs reconnect, or an empty week differ.
func (h *Handlers) calendarFragment(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	days, err := calendarDays(c)
	if err != nil {
		return err
	}
	events, err := h.calendar.Events(c.UserContext(), u.AccountID, days)
	switch {
	case integrations.IsNotConnected(err):
		return renderComponent(c, components.EmptyStateLink(
			"Google Calendar is not connected",
			"Connect your Google account to see your upcoming events here.",
			"/integrations", "Connect Google Calendar",
		))
	case integrations.IsNeedsReconnect(err):
		return renderComponent(c, components.CalendarReconnect(integrations.ReconnectReason(err), calendar.ConnectPath, csrfToken(c)))
	case err != nil:
		return err
	}
	return renderComponent(c, components.CalendarEvents(components.CalendarList{
		Events: events, Days: days, ReadAt: time.Now(),
	}))
}

type calendarEventJSON struct {
	ID       string `json:"id"`
	Summary  string `json:"summary"`
	Start    string `json:"start"`
	End      string `json:"end"`
	AllDay   bool   `json:"all_day"`
	Location string `json:"location"`
	HTMLLink string `json:"html_link"`
}

// apiCalendarEvents is GET /api/v1/integrations/calendar/google/events.
func (h *Handlers) apiCalendarEvents(c *fiber.Ctx) error {
	u, _ := currentUser(c)
	days, err := calendarDays(c)
	if err != nil {
		return err
	}
	events, err := h.calendar.Events(c.UserContext(), u.AccountID, days)
	if err != nil {
		return err
	}
	out := struct {
		Events []calendarEventJSON `json:"events"`
	}{Events: []calendarEventJSON{}}
	for _, e := range events {
		out.Events = append(out.Events, calendarEventJSON{
			ID: e.ID, Summary: e.Summary, Start: e.Start, End: e.End, AllDay: e.AllDay, Location: e.Location, HTMLLink: e.HTMLLink,
		})
	}
	return c.JSON(out)
}
