package e2e

// Browser tests of the Google Calendar integration: the consent walked in the browser
// (Integrations card → Google's consent page → Allow, landing on /calendar; Disconnect;
// Cancel), and /calendar in each of its states (skeleton, list by day, empty, a Google
// error with Try again, the breaker open, needs reconnect with its Reconnect button, not
// connected, the development stub), with the Integrations card and the home section of
// the same states. Every test runs at desktop width and at phone width (390 px, no
// sideways scroll), each run with its own console against its own fake Google
// (services/calendar/googletest); helpers are in calendar_helpers_test.go.

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"

	"github.com/ava/console/services/calendar/googletest"
)

// The whole consent: "Connect Google Calendar" on the card sends the browser to Google's
// consent page (another site); Allow brings it back to /calendar with a toast, the
// calendar's name and the week by day. Disconnect on /calendar revokes the grant at Google
// and the card says Not connected; a second consent cancelled at Google brings the owner
// back to Integrations saying so, with nothing stored.
func TestCalendarConsentAllowDisconnectThenCancel(t *testing.T) {
	t.Parallel()
	eachWidth(t, func(t *testing.T, vp emailViewport) {
		c, f, page, week := calendarOwner(t, vp)
		failOnDialog(t, page)
		check(t, expect.Locator(homeCalendarState(page)).ToHaveText(regexp.MustCompile(`^\s*State:\s*Not connected\s*$`)), "home: Calendar not connected")

		open(t, page, c, "/integrations")
		card := calendarCard(page)
		check(t, expect.Locator(getRole(page, "region", "Google Calendar")).ToHaveCount(1), "the card is a region named Google Calendar")
		check(t, expect.Locator(cardBadge(card)).ToHaveText(exactly("Not connected")), "card: Not connected")
		check(t, expect.Locator(card.GetByTestId("credential-source")).ToHaveText(exactly("None")), "card: no credentials")
		check(t, expect.Locator(getRoleIn(card, "button", "Connect Google Calendar")).ToBeVisible(), "card: Connect button")
		check(t, expect.Locator(getRoleIn(card, "button", "Test connection")).ToHaveCount(0), "card: nothing to test")
		check(t, expect.Locator(card.Locator("input:not([type=hidden])")).ToHaveCount(0), "card: nothing to type (the consent is at Google)")
		fits(t, page, vp)

		// Allow.
		clickIn(t, card, "button", "Connect Google Calendar")
		consent(t, page, "Allow")
		expectAt(t, page, c, "/calendar")
		check(t, expect.Locator(toasts(page)).ToContainText("Google Calendar connected"), "toast after connecting")
		check(t, expect.Locator(page.GetByRole("heading", playwright.PageGetByRoleOptions{
			Name: "Calendar", Exact: playwright.Bool(true), Level: playwright.Int(1),
		})).ToBeVisible(), "h1 Calendar")
		check(t, expect.Locator(getRoleIn(getRole(page, "navigation", "Main"), "link", "Calendar")).ToHaveAttribute("aria-current", "page"), "Calendar is the current page")
		check(t, expect.Locator(page.Locator(".lead strong")).ToHaveText(exactly(calendarSummary)), "the calendar's name")
		check(t, expect.Locator(getRole(page, "heading", "Next 7 days")).ToBeVisible(), "list heading")
		expectCalendarWeek(t, page, week)
		fits(t, page, vp)

		if auths := authorizations(f); len(auths) != 1 {
			t.Errorf("the fake got %d authorization request(s), want 1", len(auths))
		} else {
			expectAuthorization(t, auths[0], c, f)
		}
		if n := f.Exchanges(); n != 1 {
			t.Errorf("%d code exchange(s), want 1", n)
		}
		expectNoTokensShown(t, page, c, f)

		// The toast was for that landing only.
		open(t, page, c, "/calendar")
		expectCalendarWeek(t, page, week)
		check(t, expect.Locator(toasts(page).Locator(".toast")).ToHaveCount(0), "no toast after a reload")

		check(t, expect.Locator(homeCalendarStateAt(t, page, c)).ToHaveText(regexp.MustCompile(`^\s*State:\s*Connected\s*$`)), "home: Calendar connected")
		open(t, page, c, "/integrations")
		check(t, expect.Locator(cardBadge(card)).ToHaveText(exactly("Connected")), "card: Connected")
		check(t, expect.Locator(card.GetByTestId("credential-source")).ToHaveText(exactly("This account's own")), "card: the account's own grant")
		check(t, expect.Locator(cardFact(card, "Calendar")).ToHaveText(exactly(calendarSummary)), "card: the calendar's name")
		check(t, expect.Locator(getRoleIn(card, "button", "Reconnect Google Calendar")).ToBeVisible(), "card: Reconnect")
		check(t, expect.Locator(getRoleIn(card, "button", "Disconnect Google Calendar")).ToBeVisible(), "card: Disconnect")
		expectNoTokensShown(t, page, c, f)
		fits(t, page, vp)

		// Disconnect on /calendar: the grant is revoked at Google, then forgotten.
		open(t, page, c, "/calendar")
		click(t, page, "button", "Disconnect Google Calendar")
		expectAt(t, page, c, "/integrations")
		check(t, expect.Locator(cardBadge(card)).ToHaveText(exactly("Not connected")), "card after Disconnect")
		check(t, expect.Locator(card.GetByTestId("credential-source")).ToHaveText(exactly("None")), "no credentials after Disconnect")
		check(t, expect.Locator(getRoleIn(card, "button", "Connect Google Calendar")).ToBeVisible(), "Connect offered again")
		revoked := f.Revoked()
		if len(revoked) != 1 || !strings.HasPrefix(revoked[0], "1//") {
			t.Errorf("Disconnect revoked %d token(s) at Google, want one: the refresh token (1//…)", len(revoked))
		}
		fits(t, page, vp)

		// Cancel at Google.
		clickIn(t, card, "button", "Connect Google Calendar")
		consent(t, page, "Cancel")
		expectAt(t, page, c, "/integrations")
		check(t, expect.Locator(toasts(page)).ToContainText("Google Calendar was not connected: access was not allowed at the provider."), "toast after Cancel")
		check(t, expect.Locator(toasts(page)).Not().ToContainText("Google Calendar connected"), "no success toast")
		check(t, expect.Locator(cardBadge(card)).ToHaveText(exactly("Not connected")), "card still Not connected")
		check(t, expect.Locator(card.GetByTestId("credential-source")).ToHaveText(exactly("None")), "nothing stored after Cancel")
		fits(t, page, vp)
		if n := f.Exchanges(); n != 1 {
			t.Errorf("%d code exchange(s) after Cancel, want still 1", n)
		}
		if n := len(authorizations(f)); n != 2 {
			t.Errorf("the fake got %d authorization request(s), want 2", n)
		}
		check(t, expect.Locator(homeCalendarStateAt(t, page, c)).ToHaveText(regexp.MustCompile(`^\s*State:\s*Not connected\s*$`)), "home: not connected after Cancel")
	})
}

// /calendar while Google answers slowly shows the skeleton, then the week by day; Refresh
// over an empty week shows the empty state; a Google refusal (404) shows its reason, a
// reference (the fragment's correlation id) and Try again, which fails again while Google
// does, and lists the week once Google recovers.
func TestCalendarSkeletonListEmptyThenErrorAndTryAgain(t *testing.T) {
	t.Parallel()
	eachWidth(t, func(t *testing.T, vp emailViewport) {
		c, f, page, week := calendarOwner(t, vp)
		connectCalendar(t, page, c)
		expectCalendarWeek(t, page, week)

		// Slow: the skeleton first.
		f.CalendarFaults.SetDelay(2500 * time.Millisecond)
		open(t, page, c, "/calendar")
		region := calendarRegion(page)
		skeleton := region.Locator(`.skeleton[aria-busy="true"]`)
		check(t, expect.Locator(skeleton).ToBeVisible(), "skeleton while Google answers")
		check(t, expect.Locator(skeleton).ToContainText("Loading calendar events…"), "what is loading, for screen readers")
		check(t, expect.Locator(skeleton.Locator(".skeleton-row")).ToHaveCount(4), "skeleton rows")
		check(t, expect.Locator(calendarItems(page)).ToHaveCount(0), "no event yet")
		check(t, expect.Locator(region.Locator(".fallback-link")).ToBeHidden(), "no-script link hidden")
		fits(t, page, vp)
		expectCalendarWeek(t, page, week)
		check(t, expect.Locator(skeleton).ToHaveCount(0), "skeleton gone")
		f.CalendarFaults.SetDelay(0)

		// Empty week.
		f.SetEvents()
		res := refreshCalendar(t, page)
		expectFragmentStatus(t, res, http.StatusOK, "Refresh over an empty week")
		empty := region.Locator(`[data-state="empty"]`)
		check(t, expect.Locator(empty.Locator(".empty-title")).ToHaveText(exactly(calendarEmptyTitle)), "empty state")
		check(t, expect.Locator(empty).ToContainText("Events you add to your primary Google calendar show here."), "what to do")
		check(t, expect.Locator(calendarItems(page)).ToHaveCount(0), "no event")
		expectReadAt(t, page)
		expectNoCalendarError(t, page)
		fits(t, page, vp)

		// Google refuses the listing.
		f.SetEvents(week.Events...)
		f.CalendarFaults.FailAlways(googletest.Failure{Status: http.StatusNotFound, Reason: "notFound", Message: "Not Found"})
		res = refreshCalendar(t, page)
		expectFragmentStatus(t, res, http.StatusBadGateway, "Google answers 404")
		first := correlationID(t, res)
		alert := regionAlert(region)
		check(t, expect.Locator(alert.Locator(".alert-title")).ToHaveText(exactly("The service did not answer as expected")), "alert title")
		message := alert.Locator(".alert-message")
		check(t, expect.Locator(message).ToContainText("Google Calendar refused the request"), "what was refused")
		check(t, expect.Locator(message).ToContainText("Not Found"), "Google's words")
		check(t, expect.Locator(message).ToContainText("notFound"), "Google's reason")
		check(t, expect.Locator(alert).ToContainText(regexp.MustCompile(`Reference:\s*[0-9a-f]{8}`)), "reference")
		if ref := alertReference(t, alert); len(ref) != 8 || !strings.HasPrefix(first, ref) {
			t.Errorf("alert reference %q is not the start of the correlation id %q", ref, first)
		}
		check(t, expect.Locator(getRoleIn(alert, "button", "Try again")).ToBeVisible(), "Try again")
		check(t, expect.Locator(alert).ToBeFocused(), "focus on the alert")
		check(t, expect.Locator(calendarItems(page)).ToHaveCount(0), "no stale events beside the error")
		if logLineWith(c, first, "request failed") == "" {
			t.Errorf("no server log line says the fragment failed under correlation id %s", first)
		}
		fits(t, page, vp)

		res = tryCalendarAgain(t, page)
		expectFragmentStatus(t, res, http.StatusBadGateway, "Try again while Google still refuses")
		if second := correlationID(t, res); second == first || !strings.HasPrefix(second, alertReference(t, alert)) {
			t.Errorf("after Try again the reference is %q for correlation id %q (first %q)", alertReference(t, alert), second, first)
		}

		f.CalendarFaults.Recover()
		res = tryCalendarAgain(t, page)
		expectFragmentStatus(t, res, http.StatusOK, "Try again once Google answers")
		expectCalendarWeek(t, page, week)
		fits(t, page, vp)
		expectNoTokensShown(t, page, c, f)
	})
}

// Google answers 503 three times in a row (BREAKER_FAILURE_THRESHOLD's default): each
// says Google Calendar is having trouble; the fourth try is refused by the console without
// reaching Google, saying when to try again; the card and the home page show it.
func TestCalendarBreakerOpensAfterThreeFailures(t *testing.T) {
	t.Parallel()
	eachWidth(t, func(t *testing.T, vp emailViewport) {
		c, f, page, week := calendarOwner(t, vp, withEnv("BREAKER_RECOVERY_TIMEOUT", "10m"))
		connectCalendar(t, page, c)
		expectCalendarWeek(t, page, week)

		f.CalendarFaults.FailAlways(googletest.Failure{Status: http.StatusServiceUnavailable})
		before := len(calendarListings(f))
		region := calendarRegion(page)
		alert := regionAlert(region)
		message := alert.Locator(".alert-message")
		res := refreshCalendar(t, page)
		for i := 1; i <= 3; i++ {
			expectFragmentStatus(t, res, http.StatusBadGateway, fmt.Sprintf("failure %d", i))
			check(t, expect.Locator(message).ToContainText("Google Calendar is having trouble"), fmt.Sprintf("failure %d", i))
			check(t, expect.Locator(message).ToContainText("The service is currently unavailable"), fmt.Sprintf("failure %d: Google's words", i))
			check(t, expect.Locator(message).ToContainText("Try again in a moment."), fmt.Sprintf("failure %d: what to do", i))
			if i < 3 {
				res = tryCalendarAgain(t, page)
			}
		}
		if n := len(calendarListings(f)) - before; n != 3 {
			t.Errorf("three failures made %d call(s) to Google Calendar, want 3", n)
		}

		res = tryCalendarAgain(t, page)
		expectFragmentStatus(t, res, http.StatusServiceUnavailable, "breaker open")
		check(t, expect.Locator(message).ToHaveText(regexp.MustCompile(
			`^\s*Google Calendar has been failing, so calls to it are paused\. Try again in (5\d\d|600) seconds\.\s*$`)), "breaker-open message")
		check(t, expect.Locator(alert.Locator(".alert-title")).ToHaveText(exactly("The service did not answer as expected")), "alert title")
		check(t, expect.Locator(getRoleIn(alert, "button", "Try again")).ToBeVisible(), "Try again still offered")
		check(t, expect.Locator(alert).ToContainText(regexp.MustCompile(`Reference:\s*[0-9a-f]{8}`)), "reference")
		check(t, expect.Locator(alert).ToBeFocused(), "focus on the alert")
		fits(t, page, vp)
		if n := len(calendarListings(f)) - before; n != 3 {
			t.Errorf("Google Calendar got %d call(s), want 3 (none while the breaker is open)", n)
		}

		open(t, page, c, "/integrations")
		card := calendarCard(page)
		check(t, expect.Locator(card.GetByTestId("breaker-state")).ToHaveText(exactly("Open: calls are paused after repeated failures")), "breaker open on the card")
		check(t, expect.Locator(card.GetByTestId("last-error")).ToContainText("Google Calendar"), "last error on the card")
		fits(t, page, vp)
		check(t, expect.Locator(homeCalendarStateAt(t, page, c)).ToContainText("Failing: calls paused"), "home: Calendar failing")
	})
}

// The owner removes the console's access in their Google Account (the fake revokes every
// grant): /calendar says Google Calendar needs to be reconnected and why, the card and the
// home page say "Needs reconnect", and "Reconnect Google Calendar" on the page walks the
// consent again, after which the week is back.
func TestCalendarNeedsReconnectThenReconnect(t *testing.T) {
	t.Parallel()
	eachWidth(t, func(t *testing.T, vp emailViewport) {
		c, f, page, week := calendarOwner(t, vp)
		failOnDialog(t, page)
		connectCalendar(t, page, c)
		expectCalendarWeek(t, page, week)

		f.RevokeGrants()
		_, err := page.Reload()
		check(t, err, "reload /calendar")
		region := calendarRegion(page)
		alert := regionAlert(region)
		check(t, expect.Locator(alert).ToHaveAttribute("data-state", "needs-reconnect"), "needs-reconnect state")
		check(t, expect.Locator(alert.Locator(".alert-title")).ToHaveText(exactly("Google Calendar needs to be reconnected")), "alert title")
		check(t, expect.Locator(alert.Locator(".alert-message")).ToContainText("Token has been expired or revoked"), "Google's reason")
		reconnect := getRoleIn(alert, "button", "Reconnect Google Calendar")
		check(t, expect.Locator(reconnect).ToBeVisible(), "Reconnect button")
		check(t, expect.Locator(alert).ToBeFocused(), "focus on the alert")
		check(t, expect.Locator(calendarItems(page)).ToHaveCount(0), "no events")
		check(t, expect.Locator(region.Locator(`[data-state="error"]`)).ToHaveCount(0), "not shown as a failure")
		fits(t, page, vp)

		check(t, expect.Locator(homeCalendarStateAt(t, page, c)).ToHaveText(regexp.MustCompile(`^\s*State:\s*Needs reconnect\s*$`)), "home: Needs reconnect")
		fits(t, page, vp)
		open(t, page, c, "/integrations")
		card := calendarCard(page)
		check(t, expect.Locator(cardBadge(card)).ToHaveText(exactly("Needs reconnect")), "card: Needs reconnect badge")
		cardAlert := regionAlert(card)
		check(t, expect.Locator(cardAlert.Locator(".alert-title")).ToHaveText(exactly("Reconnect Google Calendar")), "card: alert")
		check(t, expect.Locator(cardAlert).ToContainText("Token has been expired or revoked"), "card: Google's reason")
		check(t, expect.Locator(getRoleIn(card, "button", "Reconnect Google Calendar")).ToBeVisible(), "card: Reconnect button")
		check(t, expect.Locator(card.GetByTestId("breaker-state")).ToHaveText(exactly("Closed: calls go through")), "a revoked grant does not count against the breaker")
		fits(t, page, vp)

		// Reconnect from /calendar.
		open(t, page, c, "/calendar")
		check(t, reconnect.Click(), "click Reconnect Google Calendar")
		consent(t, page, "Allow")
		expectAt(t, page, c, "/calendar")
		check(t, expect.Locator(toasts(page)).ToContainText("Google Calendar connected"), "toast after reconnecting")
		expectCalendarWeek(t, page, week)
		fits(t, page, vp)
		if n := f.Exchanges(); n != 2 {
			t.Errorf("%d code exchange(s), want 2 (connect, reconnect)", n)
		}
		if auths := authorizations(f); len(auths) == 2 {
			expectAuthorization(t, auths[1], c, f)
		}
		check(t, expect.Locator(homeCalendarStateAt(t, page, c)).ToHaveText(regexp.MustCompile(`^\s*State:\s*Connected\s*$`)), "home: connected again")
		open(t, page, c, "/integrations")
		check(t, expect.Locator(cardBadge(card)).ToHaveText(exactly("Connected")), "card: connected again")
		check(t, expect.Locator(regionAlert(card)).ToHaveCount(0), "card: no alert")
	})
}

// Without a grant, /calendar (in the main navigation) says Google Calendar is not connected
// and links to Integrations; it offers neither Refresh nor Disconnect, and nothing reaches
// Google.
func TestCalendarNotConnected(t *testing.T) {
	t.Parallel()
	eachWidth(t, func(t *testing.T, vp emailViewport) {
		c, f, page, _ := calendarOwner(t, vp)
		check(t, expect.Locator(getRoleIn(page.Locator("li.section-card"), "link", "Calendar")).ToHaveAttribute("href", "/calendar"), "home: link to /calendar")
		link := getRoleIn(getRole(page, "navigation", "Main"), "link", "Calendar")
		check(t, expect.Locator(link).ToHaveAttribute("href", "/calendar"), "Calendar in the main navigation")
		check(t, link.Click(), "click Calendar in the navigation")
		expectAt(t, page, c, "/calendar")
		check(t, expect.Locator(page.GetByRole("heading", playwright.PageGetByRoleOptions{
			Name: "Calendar", Exact: playwright.Bool(true), Level: playwright.Int(1),
		})).ToBeVisible(), "h1 Calendar")
		region := calendarRegion(page)
		empty := region.Locator(`[data-state="empty"]`)
		check(t, expect.Locator(empty.Locator(".empty-title")).ToHaveText(exactly("Google Calendar is not connected")), "empty state")
		check(t, expect.Locator(empty).ToContainText("Connect your Google account to see your upcoming events here."), "what to do")
		connect := getRoleIn(region, "link", "Connect Google Calendar")
		check(t, expect.Locator(connect).ToHaveAttribute("href", "/integrations"), "Connect link")
		check(t, expect.Locator(getRole(page, "button", "Refresh")).ToHaveCount(0), "nothing to refresh")
		check(t, expect.Locator(getRole(page, "button", "Disconnect Google Calendar")).ToHaveCount(0), "nothing to disconnect")
		check(t, expect.Locator(page.Locator(".lead .badge")).ToHaveCount(0), "no Stub badge")
		check(t, expect.Locator(page.Locator("main").GetByRole("alert")).ToHaveCount(0), "no alert")
		fits(t, page, vp)

		check(t, connect.Click(), "click Connect Google Calendar")
		expectAt(t, page, c, "/integrations")
		check(t, expect.Locator(getRoleIn(calendarCard(page), "button", "Connect Google Calendar")).ToBeVisible(), "the card's Connect button")
		if n := len(f.Requests()); n != 0 {
			t.Errorf("the fake Google got %d request(s) with nothing connected, want 0", n)
		}
	})
}

// With INTEGRATIONS_STUB_MODE in development and nothing connected (no Google OAuth client
// either), /calendar lists the stub's events with a "Stub" badge; the card and the home page
// say it is the stub. Nothing reaches Google (the harness fails the test on any call).
func TestCalendarStub(t *testing.T) {
	t.Parallel()
	eachWidth(t, func(t *testing.T, vp emailViewport) {
		c := startConsole(t, withEnv("INTEGRATIONS_STUB_MODE", "true"))
		page := vp.Open(t)
		createOwner(t, page, c, ownerEmail, ownerPassword)
		check(t, expect.Locator(homeCalendarState(page)).ToContainText("Stub (development only)"), "home: stub")

		open(t, page, c, "/calendar")
		lead := page.Locator(".lead")
		check(t, expect.Locator(lead.Locator(".badge")).ToHaveText(exactly("Stub")), "Stub badge")
		check(t, expect.Locator(lead).ToContainText("The built-in stand-in (development only): nothing reaches Google."), "what the stub is")
		day := time.Now().UTC().AddDate(0, 0, 1)
		expectCalendarDays(t, page, false, []calendarDay{
			{Date: day.Format(time.DateOnly), Label: day.Format("Monday 2 January 2006"), Events: []calendarEvent{
				{Time: "09:00 – 09:15", Summary: "Team stand-up", Location: "Front office"},
				{Time: "14:00 – 15:00", Summary: "Dental check-up: Ms. Rivera"},
			}},
			{Date: day.AddDate(0, 0, 2).Format(time.DateOnly), Label: day.AddDate(0, 0, 2).Format("Monday 2 January 2006"), Events: []calendarEvent{
				{Time: "All day", Summary: "Clinic closed (holiday)"},
			}},
		})
		check(t, expect.Locator(getRole(page, "button", "Disconnect Google Calendar")).ToHaveCount(0), "nothing to disconnect")
		fits(t, page, vp)

		open(t, page, c, "/integrations")
		source := calendarCard(page).GetByTestId("credential-source")
		check(t, expect.Locator(source.Locator(".badge")).ToHaveText(exactly("Stub")), "card: stub")
		check(t, expect.Locator(source).ToContainText("nothing reaches Google Calendar"), "card: nothing reaches Google")
		fits(t, page, vp)
	})
}
