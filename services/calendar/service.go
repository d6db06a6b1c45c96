package calendar

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ava/console/services"
	"github.com/ava/console/services/integrations"
)

// Bounds of a listing.
const (
	MinDays     = 1
	MaxDays     = 31
	DefaultDays = 7
	// pageSize is what one events.list page asks for (Google's default);
	// maxPages bounds the pages followed for one listing.
	pageSize = 250
	maxPages = 10
)

// Event is one upcoming event. Timed events keep Google's RFC 3339 times
// (with the calendar's offset); all-day events are YYYY-MM-DD dates, the
// end exclusive, as Google gives them.
type Event struct {
	ID       string
	Summary  string
	Start    string
	End      string
	AllDay   bool
	Location string
	HTMLLink string
}

// Day is the date of the event's start (YYYY-MM-DD), in the offset Google
// gave it: the day it is on in the calendar's time zone.
func (e Event) Day() string {
	if len(e.Start) >= 10 {
		return e.Start[:10]
	}
	return e.Start
}

// Registry is what the service needs of the integration registry.
type Registry interface {
	Use(ctx context.Context, accountID int64, name string, fn func(ctx context.Context, conn integrations.Resolved) error) error
	Resolve(ctx context.Context, accountID int64, name string) (integrations.Resolved, error)
}

// Service reads an account's calendar.
type Service struct {
	integ *Integration
	reg   Registry
	log   *slog.Logger
}

// NewService returns the calendar service.
func NewService(integ *Integration, reg Registry, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{integ: integ, reg: reg, log: log}
}

// Connection returns the credentials the account uses (for the page's
// summary), unconfigured when it has none.
func (s *Service) Connection(ctx context.Context, accountID int64) (integrations.Resolved, error) {
	return s.reg.Resolve(ctx, accountID, Name)
}

// Events returns the events of the next days days (MinDays to MaxDays) of
// the account's primary calendar, in start order, every page followed (up
// to maxPages), cancelled events left out.
func (s *Service) Events(ctx context.Context, accountID int64, days int) ([]Event, error) {
	if days < MinDays || days > MaxDays {
		return nil, services.FieldError("days", "days must be a whole number from %d to %d.", MinDays, MaxDays)
	}
	from := s.integ.now()
	to := from.Add(time.Duration(days) * 24 * time.Hour)
	var out []Event
	err := s.reg.Use(ctx, accountID, Name, func(ctx context.Context, conn integrations.Resolved) error {
		out = nil
		if conn.IsStub() {
			out = stubEvents(from, to)
			return nil
		}
		next := ""
		for n := 0; n < maxPages; n++ {
			page, err := withToken(ctx, s.integ, &conn, func(access string) (eventsPage, error) {
				return s.integ.google.events(ctx, access, eventsQuery{from: from, to: to, max: pageSize, pageToken: next})
			})
			if err != nil {
				return err
			}
			for _, it := range page.Items {
				if it.Status != "cancelled" {
					out = append(out, toEvent(it))
				}
			}
			if next = page.NextPageToken; next == "" {
				return nil
			}
		}
		s.log.WarnContext(ctx, "calendar listing cut short", slog.Int("pages", maxPages), slog.Int("events", len(out)))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func toEvent(it apiEvent) Event {
	e := Event{ID: it.ID, Summary: it.Summary, Location: it.Location, HTMLLink: it.HTMLLink}
	if it.Start.DateTime == "" {
		e.AllDay, e.Start, e.End = true, it.Start.Date, it.End.Date
	} else {
		e.Start, e.End = it.Start.DateTime, it.End.DateTime
	}
	if e.Summary == "" {
		e.Summary = "(No title)"
	}
	return e
}

// stubEvents is the development stub's calendar: a few events from
// tomorrow on, within the window asked for.
func stubEvents(from, to time.Time) []Event {
	day := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1)
	all := []Event{
		{ID: "stub-1", Summary: "Team stand-up", Start: day.Add(9 * time.Hour).Format(time.RFC3339), End: day.Add(9*time.Hour + 15*time.Minute).Format(time.RFC3339), Location: "Front office"},
		{ID: "stub-2", Summary: "Dental check-up: Ms. Rivera", Start: day.Add(14 * time.Hour).Format(time.RFC3339), End: day.Add(15 * time.Hour).Format(time.RFC3339)},
		{ID: "stub-3", Summary: "Clinic closed (holiday)", AllDay: true, Start: day.AddDate(0, 0, 2).Format(time.DateOnly), End: day.AddDate(0, 0, 3).Format(time.DateOnly)},
	}
	var out []Event
	for _, e := range all {
		start, err := time.Parse(time.RFC3339, e.Start)
		if e.AllDay {
			start, err = time.Parse(time.DateOnly, e.Start)
		}
		if err == nil && start.Before(to) {
			out = append(out, e)
		}
	}
	return out
}

// String names an event in logs and tests.
func (e Event) String() string { return fmt.Sprintf("%s %s", e.Start, e.Summary) }
