package e2e

// Helpers of the Google Calendar browser tests (calendar_test.go): a fake Google
// (services/calendar/googletest, Interactive consent) holding a week of events, a console
// wired to it (its own address as AVA_BASE_URL, so the redirect URI leads back to it), the
// consent walked in the browser, and locators for /calendar, the Google Calendar card of
// /integrations and the Calendar section of the home page.

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"

	"github.com/ava/console/services/calendar"
	"github.com/ava/console/services/calendar/googletest"
)

const (
	// calendarSummary is the primary calendar's name at the fake (its owner's address).
	calendarSummary = "front-desk@northsidedental.test"
	// consentTitle is the title of Google's consent page (and of the fake's).
	consentTitle = "Sign in - Google Accounts"
	// calendarEmptyTitle is the empty state of a week without events.
	calendarEmptyTitle = "No events in the next 7 days"
)

// calendarZone is the calendar's own time zone: the page shows times in the offset Google
// gives them, whatever the browser's or the server's zone.
var calendarZone = time.FixedZone("CEST", 2*3600)

// calendarEvent is one event as the page shows it.
type calendarEvent struct {
	Time, Summary, Location string
}

// calendarDay is one day of the list: its heading, its date and its events in order.
type calendarDay struct {
	Date, Label string
	Events      []calendarEvent
}

// calendarWeek is the fake's week: the events Google lists (a cancelled one among them,
// which the page must leave out) and the days the page shows them in.
type calendarWeek struct {
	Events []googletest.Event
	Days   []calendarDay
}

// newCalendarWeek is tomorrow (in calendarZone) with two timed events, the day after next
// with an all-day one, and a cancelled event the page must not list.
func newCalendarWeek(now time.Time) calendarWeek {
	local := now.In(calendarZone)
	day1 := time.Date(local.Year(), local.Month(), local.Day()+1, 0, 0, 0, 0, calendarZone)
	day3 := day1.AddDate(0, 0, 2)
	at := func(d time.Time, h, m int) googletest.EventTime {
		return googletest.EventTime{DateTime: d.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute).Format(time.RFC3339)}
	}
	date := func(d time.Time) googletest.EventTime { return googletest.EventTime{Date: d.Format(time.DateOnly)} }
	label := func(d time.Time) string { return d.Format("Monday 2 January 2006") }
	return calendarWeek{
		Events: []googletest.Event{
			{ID: "checkup", Summary: "Check-up: Maria Lopez", Location: "Room 2", Start: at(day1, 9, 30), End: at(day1, 10, 0)},
			{ID: "moved", Status: "cancelled", Summary: "Cancelled: call with the lab", Start: at(day1, 11, 0), End: at(day1, 11, 30)},
			{ID: "standup", Summary: "Team stand-up", Start: at(day1, 14, 0), End: at(day1, 14, 15)},
			{ID: "holiday", Summary: "Clinic closed (holiday)", Start: date(day3), End: date(day3.AddDate(0, 0, 1))},
		},
		Days: []calendarDay{
			{Date: day1.Format(time.DateOnly), Label: label(day1), Events: []calendarEvent{
				{Time: "09:30 – 10:00", Summary: "Check-up: Maria Lopez", Location: "Room 2"},
				{Time: "14:00 – 14:15", Summary: "Team stand-up"},
			}},
			{Date: day3.Format(time.DateOnly), Label: label(day3), Events: []calendarEvent{
				{Time: "All day", Summary: "Clinic closed (holiday)"},
			}},
		},
	}
}

// startGoogle starts a fake Google with Interactive consent, calendarSummary as the
// calendar's name and week's events.
func startGoogle(t testing.TB, week calendarWeek) *googletest.Fake {
	t.Helper()
	f := googletest.Start(t, googletest.Options{Consent: googletest.Interactive})
	f.SetCalendarSummary(calendarSummary)
	f.SetEvents(week.Events...)
	return f
}

// withGoogle points the console's Google OAuth client and Google Calendar at the fake and
// sets AVA_BASE_URL to the console's own address (the redirect URI is made from it). The
// browser opens the consent page at "localhost" rather than 127.0.0.1: another site, as
// accounts.google.com is, so the way back to the console is a cross-site navigation (the
// session cookie must survive it, as it must in production).
func withGoogle(f *googletest.Fake) consoleOption {
	return func(t testing.TB, cfg *consoleConfig) {
		withEnv("GOOGLE_OAUTH_CLIENT_ID", f.ClientID())(t, cfg)
		withEnv("GOOGLE_OAUTH_CLIENT_SECRET", f.ClientSecret())(t, cfg)
		withEnv("GOOGLE_OAUTH_AUTH_URL", crossSite(t, f.AuthURL()))(t, cfg)
		withEnv("GOOGLE_OAUTH_TOKEN_URL", f.TokenURL())(t, cfg)
		withEnv("GOOGLE_OAUTH_REVOKE_URL", f.RevokeURL())(t, cfg)
		withEnv("GOOGLE_CALENDAR_BASE_URL", f.URL)(t, cfg)
		withSelfBaseURL()(t, cfg)
	}
}

// crossSite is u (on 127.0.0.1) at localhost: the same server, another site for the browser.
func crossSite(t testing.TB, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil || p.Hostname() != "127.0.0.1" {
		t.Fatalf("fake Google URL %q is not on 127.0.0.1", u)
	}
	p.Host = "localhost:" + p.Port()
	return p.String()
}

// calendarOwner starts a fake Google with a week of events and a console wired to it
// (plus opts), opens a page of vp and signs the first owner in.
func calendarOwner(t testing.TB, vp emailViewport, opts ...consoleOption) (*console, *googletest.Fake, playwright.Page, calendarWeek) {
	t.Helper()
	week := newCalendarWeek(time.Now())
	f := startGoogle(t, week)
	c := startConsole(t, append([]consoleOption{withGoogle(f)}, opts...)...)
	page := vp.Open(t)
	createOwner(t, page, c, ownerEmail, ownerPassword)
	return c, f, page, week
}

// calendarCard is the Google Calendar card of /integrations.
func calendarCard(page playwright.Page) playwright.Locator {
	return page.Locator("section#integration-calendar")
}

// calendarRegion is the region of /calendar the events load into.
func calendarRegion(page playwright.Page) playwright.Locator {
	return page.Locator("#calendar-events")
}

// calendarItems are the events listed on /calendar.
func calendarItems(page playwright.Page) playwright.Locator {
	return calendarRegion(page).GetByTestId("calendar-event")
}

// homeCalendarState is the state badge of the Calendar section of the home page.
func homeCalendarState(page playwright.Page) playwright.Locator {
	section := page.Locator("li.section-card").Filter(playwright.LocatorFilterOptions{Has: getRole(page, "heading", "Calendar")})
	return section.Locator(".badge")
}

// homeCalendarStateAt opens the home page and returns the Calendar section's state badge.
func homeCalendarStateAt(t testing.TB, page playwright.Page, c *console) playwright.Locator {
	t.Helper()
	open(t, page, c, "/")
	return homeCalendarState(page)
}

// cardBadge is the state badge in a card's head ("Connected", "Not connected"...).
func cardBadge(card playwright.Locator) playwright.Locator {
	return card.Locator(".integration-head .badge")
}

// consent answers the fake's consent page ("Allow" or "Cancel") once the browser is on it,
// after checking what it asks for.
func consent(t testing.TB, page playwright.Page, choice string) {
	t.Helper()
	check(t, expect.Page(page).ToHaveTitle(consentTitle), "on Google's consent page")
	check(t, expect.Page(page).ToHaveURL(regexp.MustCompile(`^http://localhost:\d+`+regexp.QuoteMeta(googletest.AuthPath)+`\?`)), "consent page URL")
	check(t, expect.Locator(getRole(page, "heading", "Ava console wants to access your Google Account")).ToBeVisible(), "consent heading")
	check(t, expect.Locator(page.Locator("main")).ToContainText(calendarSummary), "the account on the consent page")
	check(t, expect.Locator(page.Locator("li.scope")).ToHaveText([]string{"View events on all your calendars" + calendar.Scope}), "only read access to events is asked for")
	click(t, page, "button", choice)
}

// connectCalendar connects Google Calendar through the Integrations card and the consent
// page (Allow) and waits for /calendar with its toast.
func connectCalendar(t testing.TB, page playwright.Page, c *console) {
	t.Helper()
	open(t, page, c, "/integrations")
	clickIn(t, calendarCard(page), "button", "Connect Google Calendar")
	consent(t, page, "Allow")
	expectAt(t, page, c, "/calendar")
	check(t, expect.Locator(toasts(page)).ToContainText("Google Calendar connected"), "toast after connecting")
}

// expectCalendarWeek checks that /calendar lists week's days with their events (each
// linked to its page at Google), leaves the cancelled event out and says when Google was read.
func expectCalendarWeek(t testing.TB, page playwright.Page, week calendarWeek) {
	t.Helper()
	expectCalendarDays(t, page, true, week.Days)
	check(t, expect.Locator(calendarRegion(page)).Not().ToContainText("Cancelled:"), "the cancelled event is not listed")
}

// expectCalendarDays checks that /calendar lists want: each day a region named by its
// date, with its events (time, summary, location; linked to Google when linked) in order
// and no other event, then the read time, and no error or skeleton.
func expectCalendarDays(t testing.TB, page playwright.Page, linked bool, want []calendarDay) {
	t.Helper()
	region := calendarRegion(page)
	check(t, expect.Locator(region.Locator(`[data-state="list"]`)).ToBeVisible(), "the list")
	days := region.Locator("section.calendar-day")
	check(t, expect.Locator(days).ToHaveCount(len(want)), "one section a day")
	total := 0
	for i, d := range want {
		day := days.Nth(i)
		check(t, expect.Locator(day).ToHaveAccessibleName(d.Label), fmt.Sprintf("day %d is a region named by its date", i+1))
		check(t, expect.Locator(day.Locator("h3 time")).ToHaveAttribute("datetime", d.Date), fmt.Sprintf("day %d date", i+1))
		items := day.GetByTestId("calendar-event")
		check(t, expect.Locator(items).ToHaveCount(len(d.Events)), fmt.Sprintf("%d event(s) on %s", len(d.Events), d.Label))
		for j, e := range d.Events {
			item := items.Nth(j)
			what := fmt.Sprintf("%s, event %d", d.Label, j+1)
			check(t, expect.Locator(item.Locator(".event-time")).ToHaveText(exactly(e.Time)), what+": time")
			check(t, expect.Locator(item.Locator(".event-summary")).ToHaveText(exactly(e.Summary)), what+": summary")
			if linked {
				check(t, expect.Locator(getRoleIn(item, "link", e.Summary)).ToHaveAttribute("href", regexp.MustCompile(`^https://`)), what+": link to the event at Google")
			}
			if e.Location != "" {
				check(t, expect.Locator(item.Locator(".event-location")).ToHaveText(exactly(e.Location)), what+": location")
			} else {
				check(t, expect.Locator(item.Locator(".event-location")).ToHaveCount(0), what+": no location")
			}
		}
		total += len(d.Events)
	}
	check(t, expect.Locator(calendarItems(page)).ToHaveCount(total), "no other event")
	expectReadAt(t, page)
	expectNoCalendarError(t, page)
}

// expectReadAt checks the hint that says when Google was read.
func expectReadAt(t testing.TB, page playwright.Page) {
	t.Helper()
	readAt := calendarRegion(page).Locator("p.read-at")
	check(t, expect.Locator(readAt).ToHaveText(regexp.MustCompile(`^\s*Read (from Google )?at \S.*\.\s*$`)), "read time")
	check(t, expect.Locator(readAt.Locator("time")).ToHaveAttribute("datetime", regexp.MustCompile(`^\d{4}-\d\d-\d\dT`)), "read time as a datetime")
}

// expectNoCalendarError checks that the page shows no alert and no loading state.
func expectNoCalendarError(t testing.TB, page playwright.Page) {
	t.Helper()
	main := page.Locator("main")
	check(t, expect.Locator(main.GetByRole("alert")).ToHaveCount(0), "no alert")
	check(t, expect.Locator(main.Locator(`[data-state="error"]`)).ToHaveCount(0), "no error state")
	check(t, expect.Locator(calendarRegion(page).Locator(".skeleton")).ToHaveCount(0), "skeleton replaced")
}

// refreshCalendar clicks Refresh and returns the answer of the fragment.
func refreshCalendar(t testing.TB, page playwright.Page) playwright.Response {
	t.Helper()
	return expectFragment(t, page, func() error { return getRole(page, "button", "Refresh").Click() })
}

// tryCalendarAgain clicks the alert's "Try again" and returns the answer of the fragment.
func tryCalendarAgain(t testing.TB, page playwright.Page) playwright.Response {
	t.Helper()
	return expectFragment(t, page, func() error {
		return getRoleIn(regionAlert(calendarRegion(page)), "button", "Try again").Click()
	})
}

// expectFragment runs action and returns the answer of GET /fragments/calendar/events.
func expectFragment(t testing.TB, page playwright.Page, action func() error) playwright.Response {
	t.Helper()
	return expectResponse(t, page, "**/fragments/calendar/events*", action)
}

// expectFragmentStatus fails the test now if the fragment did not answer want.
func expectFragmentStatus(t testing.TB, res playwright.Response, want int, what string) {
	t.Helper()
	if res.Status() != want {
		body, _ := res.Text()
		t.Fatalf("%s: GET %s answered %d, want %d\n%s", what, res.URL(), res.Status(), want, tail(body, 15))
	}
}

// calendarListings are the fake's events.list requests.
func calendarListings(f *googletest.Fake) []googletest.Request {
	var out []googletest.Request
	for _, r := range f.Requests() {
		if strings.HasPrefix(r.Path, googletest.CalendarPath) {
			out = append(out, r)
		}
	}
	return out
}

// authorizations are the fake's authorization requests (the browser sent to the consent page).
func authorizations(f *googletest.Fake) []googletest.Request {
	var out []googletest.Request
	for _, r := range f.Requests() {
		if r.Path == googletest.AuthPath {
			out = append(out, r)
		}
	}
	return out
}

// expectAuthorization checks what the console asked Google for: its client, the code flow
// with PKCE (S256), offline access with the consent asked again, read-only access to
// events, and the redirect URI made of AVA_BASE_URL (the console's own address).
func expectAuthorization(t testing.TB, r googletest.Request, c *console, f *googletest.Fake) {
	t.Helper()
	q := r.Query
	for k, want := range map[string]string{
		"client_id": f.ClientID(), "redirect_uri": c.URL + calendar.CallbackPath, "response_type": "code",
		"scope": calendar.Scope, "access_type": "offline", "prompt": "consent", "code_challenge_method": "S256",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("authorization request: %s = %q, want %q", k, got, want)
		}
	}
	if len(q.Get("state")) < 22 || len(q.Get("code_challenge")) != 43 {
		t.Errorf("authorization request: state %q, code_challenge %q, want random ones", q.Get("state"), q.Get("code_challenge"))
	}
}

// expectNoTokensShown fails the test if the page's HTML or the server log holds any token
// the fake issued.
func expectNoTokensShown(t testing.TB, page playwright.Page, c *console, f *googletest.Fake) {
	t.Helper()
	html, err := page.Content()
	check(t, err, "read the page")
	logs := c.logs()
	for _, tok := range f.Tokens() {
		if strings.Contains(html, tok) {
			t.Errorf("%s holds a Google token (…%s)", page.URL(), tok[len(tok)-4:])
		}
		if strings.Contains(logs, tok) {
			t.Errorf("the server log holds a Google token (…%s)", tok[len(tok)-4:])
		}
	}
}
